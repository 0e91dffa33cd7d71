import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The documentation's own references: the README lists every doc, and every pointer of the form
// `docs/NAME.md, "Section"` (in docs, source comments, help texts, model records, scripts) names a file that exists
// and a heading in it that starts with the quoted text. Sections move between docs; a stale pointer fails here.
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Files under `dir` (relative to the repository) whose names end with one of `endings`, recursively. */
function filesUnder(dir: string, endings: readonly string[]): string[] {
  const full = join(root, dir);
  if (!existsSync(full)) return [];
  return readdirSync(full).flatMap((name) => {
    const path = join(full, name);
    if (statSync(path).isDirectory()) return filesUnder(relative(root, path), endings);
    return endings.some((e) => name.endsWith(e)) ? [relative(root, path)] : [];
  });
}

/** A file's text with line breaks, comment prefixes (` * `, `// `) and runs of spaces folded to one space. */
function flatText(path: string): string {
  return readFileSync(join(root, path), 'utf8').replace(/\s*\n\s*(?:\*(?!\/)|\/\/)?\s*/g, ' ').replace(/ {2,}/g, ' ');
}

function headings(doc: string): string[] {
  return readFileSync(join(root, doc), 'utf8').split('\n').filter((l) => /^#{1,6} /.test(l))
    .map((l) => l.replace(/^#+ /, '').trim());
}

test('the README\'s Documentation section lists every doc in docs/ and docs/experiments/', () => {
  const section = readFileSync(join(root, 'README.md'), 'utf8').split(/^## /m).find((p) => p.startsWith('Documentation\n'));
  assert.ok(section, 'README.md has a "Documentation" section');
  const mdIn = (dir: string) => readdirSync(join(root, dir)).filter((n) => n.endsWith('.md')).map((n) => `${dir}/${n}`);
  const docs = mdIn('docs');
  assert.ok(docs.length > 5, 'found the docs');
  for (const doc of docs) assert.ok(section.includes(doc), `README.md does not list ${doc}`);
  // The experiment log is listed by its folder and file names (docs/experiments/README.md is its index).
  for (const doc of mdIn('docs/experiments')) {
    const name = doc.slice('docs/experiments/'.length);
    assert.ok(section.includes(doc) || section.includes(`\`${name}\``), `README.md does not list ${doc}`);
  }
});

test('every `docs/NAME.md, "Section"` pointer names an existing doc and one of its headings', () => {
  const sources = ['README.md', ...filesUnder('docs', ['.md', '.mjs']), ...filesUnder('src', ['.ts']),
    ...filesUnder('models', ['.json', '.md']), ...filesUnder('scripts', ['.mjs', '.py', '.sh']),
    ...filesUnder('examples', ['.json', '.md']), ...filesUnder('bench', ['.mjs', '.json']), ...filesUnder('test', ['.ts'])];
  const pointer = /\b(docs\/[\w./-]+\.md),? "([^"]+)"/g;
  let checked = 0;
  for (const source of sources) {
    if (source === join('test', 'docs.test.ts')) continue;
    for (const [, doc, section] of flatText(source).matchAll(pointer)) {
      assert.ok(existsSync(join(root, doc!)), `${source}: ${doc} does not exist`);
      const found = headings(doc!).some((h) => h.startsWith(section!));
      assert.ok(found, `${source}: ${doc} has no section "${section}"`);
      checked++;
    }
  }
  assert.ok(checked >= 10, `found ${checked} pointers`);
});

// docs/YOUR-DATA.md is run as written by scripts/test-walkthrough.sh (from the installed tarball, called by
// scripts/test-pack.sh in `make test`): its runnable blocks are marked, and the script extracts exactly those.
test('docs/YOUR-DATA.md: scripts/test-walkthrough.sh runs every sh block of the doc, as written', () => {
  const doc = readFileSync(join(root, 'docs/YOUR-DATA.md'), 'utf8').split('\n');
  const blocks: Record<string, string[]> = { walkthrough: [], 'walkthrough-view': [] };
  let kind: string | undefined;
  for (const line of doc) {
    if (kind === undefined && line.startsWith('```sh')) {
      kind = line.slice('```sh'.length).trim();
      assert.ok(kind in blocks, `docs/YOUR-DATA.md: a \`\`\`sh block marked "${kind}" would not be run by the walkthrough test`);
    } else if (kind !== undefined && line.startsWith('```')) kind = undefined;
    else if (kind !== undefined) blocks[kind]!.push(line);
  }
  const commands = [...blocks.walkthrough!, ...blocks['walkthrough-view']!].filter((l) => /(^|\s)(npx )?emseg\s/.test(l));
  assert.ok(commands.length >= 9, `found ${commands.length} emseg commands in the walkthrough`);
  for (const c of commands) assert.match(c, /^npx emseg [a-z-]+ /, `not an installed emseg command: ${c}`);
  for (const c of ['labels', 'train', 'predict', 'segment', 'eval', 'view']) {
    assert.ok(commands.some((l) => l.startsWith(`npx emseg ${c} `)), `the walkthrough has no emseg ${c}`);
  }
  assert.ok(commands.some((l) => / --init emseg-isbi\//.test(l)), 'the walkthrough fine-tunes the shipped model');
  assert.ok(commands.some((l) => / eval --seg /.test(l)), 'the walkthrough scores instance labels in 3-D');
  const printed = execFileSync('bash', [join(root, 'scripts/test-walkthrough.sh'), '--print'], { encoding: 'utf8' });
  const expected = [...blocks.walkthrough!, '# walkthrough-view', ...blocks['walkthrough-view']!, ''].join('\n');
  assert.equal(printed, expected, 'test-walkthrough.sh extracts the doc\'s blocks unchanged');
  const pack = readFileSync(join(root, 'scripts/test-pack.sh'), 'utf8');
  assert.match(pack, /^bash "\$root\/scripts\/test-walkthrough\.sh" "\$app"$/m, 'scripts/test-pack.sh runs the walkthrough in its install folder');
});
