#!/usr/bin/env node
// Generates, from native/ops.json (the one list of functions the native addon exports):
//   native/ops.generated.h           - EMSEG_OPS(X), the X-macro ops.h declares and addon.cc registers with;
//   src/backend/onednn/addon-api.ts  - the TypeScript type of the loaded addon, and the list of its functions.
// Usage:
//   node scripts/gen-native-ops.mjs            write the generated files (only those whose content changed)
//   node scripts/gen-native-ops.mjs --check    exit 1, naming what is wrong, when a generated file is stale or an op
//                                              is not defined with EMSEG_FN(name) in its file (or the reverse)
//   node scripts/gen-native-ops.mjs --sources  print binding.gyp's source files (binding.gyp runs this)
// Plain JavaScript with no dependencies: it runs before anything is compiled.
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NATIVE = join(ROOT, 'native');
const TABLE = join(NATIVE, 'ops.json');
const HEADER = join(NATIVE, 'ops.generated.h');
const TS_API = join(ROOT, 'src', 'backend', 'onednn', 'addon-api.ts');
/** Hand-written sources every build compiles besides the op files. */
const REGISTRATION = 'addon.cc';
const MAX_LINE = 120;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BANNER = 'GENERATED from native/ops.json by scripts/gen-native-ops.mjs (npm run gen:native-ops): do not edit.';

function fail(message) {
  process.stderr.write(`gen-native-ops: ${message}\n`);
  process.exit(1);
}

/** The table, checked: identifiers, no op twice, every file present. */
function loadTable() {
  const table = JSON.parse(readFileSync(TABLE, 'utf8'));
  const seen = new Set();
  for (const group of table.files) {
    if (!existsSync(join(NATIVE, group.file))) fail(`native/ops.json: native/${group.file} does not exist`);
    for (const op of group.ops) {
      if (!IDENTIFIER.test(op.name)) fail(`native/ops.json: "${op.name}" is not a C++ identifier`);
      if (seen.has(op.name)) fail(`native/ops.json: "${op.name}" is listed twice`);
      seen.add(op.name);
    }
  }
  for (const file of table.support) if (!existsSync(join(NATIVE, file))) fail(`native/ops.json: native/${file} does not exist`);
  return table;
}

function renderHeader(table) {
  const lines = [`// ${BANNER}`, '#pragma once', '',
    '// X(name) for every function the addon exports; each is defined with EMSEG_FN(name) in the file named above it.',
    '#define EMSEG_OPS(X) \\'];
  for (const group of table.files) {
    lines.push(`  /* ${group.file} */ \\`);
    for (const op of group.ops) lines.push(`  X(${op.name}) \\`);
  }
  lines.push('  /* end */', '');
  return lines.join('\n');
}

/** `  name(args): returns;`, its arguments wrapped onto 4-space continuation lines past MAX_LINE. */
function signature(op) {
  const one = `  ${op.name}(${op.args}): ${op.returns};`;
  if (one.length <= MAX_LINE) return [one];
  const args = op.args.split(', ');
  const lines = [];
  let line = `  ${op.name}(`;
  args.forEach((arg, i) => {
    const piece = i < args.length - 1 ? `${arg},` : `${arg}): ${op.returns};`;
    const sep = line.endsWith('(') ? '' : ' ';
    if ((line + sep + piece).length > MAX_LINE && !line.endsWith('(')) {
      lines.push(line);
      line = `    ${piece}`;
    } else {
      line += sep + piece;
    }
  });
  lines.push(line);
  return lines;
}

function renderTs(table) {
  const lines = [`// ${BANNER}`, "import type { Handle, I2, I3, I4, I5, I6, NativeInfo, NativeStats } from './native-types.js';", '',
    '/** The raw addon API (all argument checking is repeated in C++; errors are JS exceptions). */',
    'export interface Addon {'];
  table.files.forEach((group, k) => {
    if (k > 0) lines.push('');
    lines.push(`  // native/${group.file}`);
    for (const op of group.ops) {
      if (op.doc) lines.push(`  /** ${op.doc} */`);
      lines.push(...signature(op));
    }
  });
  lines.push('}', '', '/** Every function the addon exports: a loaded module missing one is a stale build. */',
    'export const ADDON_OPS = [');
  const names = table.files.flatMap((g) => g.ops.map((op) => `'${op.name}'`));
  let line = ' ';
  for (const name of names) {
    if ((`${line} ${name},`).length > MAX_LINE) {
      lines.push(line);
      line = ' ';
    }
    line += ` ${name},`;
  }
  lines.push(line, '] as const satisfies readonly (keyof Addon)[];', '');
  return lines.join('\n');
}

function sources(table) {
  return [REGISTRATION, ...table.support, ...new Set(table.files.map((g) => g.file))];
}

/** Ops in the table without EMSEG_FN(name) in their file, and EMSEG_FN definitions the table does not list. */
function definitionProblems(table) {
  const problems = [];
  const listed = new Set();
  for (const group of table.files) {
    const text = readFileSync(join(NATIVE, group.file), 'utf8');
    for (const op of group.ops) {
      listed.add(op.name);
      if (!text.includes(`EMSEG_FN(${op.name})`)) problems.push(`"${op.name}" is not defined with EMSEG_FN(${op.name}) in native/${group.file}`);
    }
  }
  for (const file of readdirSync(NATIVE).filter((f) => f.endsWith('.cc')).sort()) {
    for (const m of readFileSync(join(NATIVE, file), 'utf8').matchAll(/^EMSEG_FN\((\w+)\)/gm)) {
      if (!listed.has(m[1])) problems.push(`native/${file} defines EMSEG_FN(${m[1]}), which native/ops.json does not list`);
    }
  }
  return problems;
}

function outputs(table) {
  return [[HEADER, renderHeader(table)], [TS_API, renderTs(table)]];
}

const table = loadTable();
const mode = process.argv[2];
if (mode === '--sources') {
  process.stdout.write(`${sources(table).join(' ')}\n`);
} else if (mode === '--check') {
  const problems = definitionProblems(table);
  for (const [file, text] of outputs(table)) {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
      problems.push(`${relative(ROOT, file)} is out of date with native/ops.json (run \`npm run gen:native-ops\`)`);
    }
  }
  if (problems.length) fail(problems.join('\n'));
} else if (mode === undefined) {
  const problems = definitionProblems(table);
  if (problems.length) fail(problems.join('\n'));
  for (const [file, text] of outputs(table)) {
    if (existsSync(file) && readFileSync(file, 'utf8') === text) continue;
    // Written whole, then renamed: a build never reads half a file.
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    process.stdout.write(`gen-native-ops: wrote ${relative(ROOT, file)}\n`);
  }
} else {
  fail(`unknown option ${mode} (use --check or --sources, or nothing to write the files)`);
}
