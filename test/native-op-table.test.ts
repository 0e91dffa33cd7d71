import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ADDON_OPS } from '../src/backend/onednn/addon-api.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { nativeAvailable } from '../src/backend/onednn/index.js';
import { REPO_ROOT } from './helpers/data.js';

// native/ops.json is the one list of addon functions; scripts/gen-native-ops.mjs generates the C++ registration and
// the TypeScript addon type from it. These tests keep the generated files from drifting from the table.

const SCRIPT = join('scripts', 'gen-native-ops.mjs');
const TABLE = join('native', 'ops.json');
const GENERATED = [join('native', 'ops.generated.h'), join('src', 'backend', 'onednn', 'addon-api.ts')];

function generator(root: string, ...args: string[]) {
  return spawnSync(process.execPath, [join(root, SCRIPT), ...args], { cwd: root, encoding: 'utf8' });
}

/** The generator, its table, the native sources and the generated files, copied to a scratch root. */
function scratchCopy(): string {
  const root = mkdtempSync(join(tmpdir(), 'emseg-ops-'));
  for (const dir of ['scripts', 'native', join('src', 'backend', 'onednn')]) mkdirSync(join(root, dir), { recursive: true });
  cpSync(join(REPO_ROOT, SCRIPT), join(root, SCRIPT));
  cpSync(join(REPO_ROOT, 'native'), join(root, 'native'), { recursive: true, filter: (src) => !src.includes(join('native', 'build')) });
  cpSync(join(REPO_ROOT, GENERATED[1]!), join(root, GENERATED[1]!));
  return root;
}

test('the generated native registration and TypeScript addon type are up to date with native/ops.json', () => {
  const r = generator(REPO_ROOT, '--check');
  assert.equal(r.status, 0, r.stderr);
});

test('--check refuses a table the generated files and native sources do not match, naming both', () => {
  const root = scratchCopy();
  try {
    const table = JSON.parse(readFileSync(join(root, TABLE), 'utf8')) as { files: { file: string; ops: unknown[] }[] };
    table.files[0]!.ops.push({ name: 'newOp', args: 'x: Handle', returns: 'Handle' });
    writeFileSync(join(root, TABLE), JSON.stringify(table));
    const r = generator(root, '--check');
    assert.equal(r.status, 1);
    for (const file of GENERATED) assert.match(r.stderr, new RegExp(`${file.replace(/[./\\]/g, '\\$&')} is out of date`));
    assert.match(r.stderr, /"newOp" is not defined with EMSEG_FN\(newOp\) in native\/system\.cc/);
    // Defined in its file and regenerated, the table checks clean again.
    writeFileSync(join(root, 'native', 'system.cc'), `${readFileSync(join(root, 'native', 'system.cc'), 'utf8')}\nEMSEG_FN(newOp) {}\n`);
    assert.equal(generator(root).status, 0);
    assert.equal(generator(root, '--check').status, 0);
    assert.match(readFileSync(join(root, GENERATED[0]!), 'utf8'), /X\(newOp\)/);
    assert.match(readFileSync(join(root, GENERATED[1]!), 'utf8'), /newOp\(x: Handle\): Handle;/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--check refuses an EMSEG_FN the table does not list', () => {
  const root = scratchCopy();
  try {
    writeFileSync(join(root, 'native', 'lrn.cc'), `${readFileSync(join(root, 'native', 'lrn.cc'), 'utf8')}\nEMSEG_FN(stray) {}\n`);
    const r = generator(root, '--check');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /native\/lrn\.cc defines EMSEG_FN\(stray\), which native\/ops\.json does not list/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("binding.gyp's sources are the table's files, all present", () => {
  const r = generator(REPO_ROOT, '--sources');
  assert.equal(r.status, 0, r.stderr);
  const sources = r.stdout.trim().split(/\s+/);
  assert.ok(sources.includes('addon.cc') && sources.includes('conv.cc'), r.stdout);
  assert.match(readFileSync(join(REPO_ROOT, 'native', 'binding.gyp'), 'utf8'), /gen-native-ops\.mjs --sources/);
});

test('the built addon exports exactly the functions of the table', (t) => {
  if (!nativeAvailable()) {
    t.skip('oneDNN addon not built');
    return;
  }
  const exported = Object.keys(loadAddon()).sort();
  assert.deepEqual(exported, [...ADDON_OPS].sort());
});
