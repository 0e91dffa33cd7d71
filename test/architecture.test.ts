import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The layering of docs/ARCHITECTURE.md, as data, checked against the imports of every src/**/*.ts (static imports,
// `export ... from` and dynamic `import()`, type-only ones included: a type import is still knowledge of a layer).
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Layers bottom up: a module may import its own folder, a folder of the same tier if `together`, and lower tiers. */
const TIERS: readonly { folders: readonly string[]; together?: true }[] = [
  { folders: ['errors.ts', 'util'], together: true },
  { folders: ['image'] },
  { folders: ['io'] },
  { folders: ['tensor', 'backend'], together: true },
  { folders: ['nn'] },
  { folders: ['models'] },
  { folders: ['metrics'] },
  { folders: ['segment'] },
  { folders: ['report'] },
  { folders: ['infer'] },
  { folders: ['train'] },
  { folders: ['pipeline'] },
  { folders: ['bench', 'study', 'queue', 'viewer', 'export'] },
  { folders: ['cli'] },
  { folders: ['index.ts'] },
];

const NETWORKS = ['tensor', 'backend', 'nn', 'models', 'train', 'infer'];
const BELOW_PIPELINE = ['errors.ts', 'util', 'image', 'io', 'tensor', 'backend', 'nn', 'models', 'metrics', 'segment', 'report', 'infer', 'train'];
const EVERYTHING = TIERS.flatMap((t) => t.folders);

/** The imports that must never happen (docs/ARCHITECTURE.md, "Imports that must never happen"), with the reason. */
const FORBIDDEN: readonly { from: readonly string[]; to: readonly string[]; why: string }[] = [
  { from: ['metrics', 'io'], to: NETWORKS, why: 'metrics and io know nothing of networks' },
  { from: ['metrics', 'segment'], to: ['io'], why: 'metrics and segment compute on arrays (image/); file formats stay in io' },
  { from: ['infer'], to: ['train'], why: 'inference never needs the trainer' },
  { from: EVERYTHING.filter((f) => f !== 'cli'), to: ['cli'], why: 'only bin/ imports cli/ (flags and progress only)' },
  { from: BELOW_PIPELINE, to: ['pipeline'], why: 'nothing below pipeline imports pipeline' },
  { from: ['errors.ts', 'util', 'image'], to: EVERYTHING.filter((f) => !['errors.ts', 'util', 'image'].includes(f)),
    why: 'errors.ts, util/ and image/ are shared leaves' },
];

/** Cycles allowed, each with its reason; every import inside one must be type-only (erased at run time). */
const ALLOWED_CYCLES: readonly { files: readonly string[]; why: string }[] = [
  { files: ['src/backend/backend.ts', 'src/tensor/tensor.ts'], why: 'the Tensor class and the Backend interface name each other\'s types' },
];

interface Edge { from: string; to: string; typeOnly: boolean }

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of one file, resolved to repository paths of .ts files. */
function importsOf(file: string): Edge[] {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const edges: Edge[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    if (!specifier.startsWith('.')) return;
    const to = relative(root, resolve(dirname(join(root, file)), specifier)).split('\\').join('/').replace(/\.js$/, '.ts');
    edges.push({ from: file, to, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allNamedTypes = named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier.text, clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && allNamedTypes)));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) add(arg.text, false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** The layer folder of a src/ file: its first folder under src/, or the file name for files directly in src/. */
function layerOf(file: string): string {
  return file.split('/')[1]!;
}

const files = sourceFiles('src');
const edges = files.flatMap(importsOf);

test('the import graph is read: known imports are found, every import resolves to a source file', () => {
  assert.ok(files.length > 100, `found ${files.length} source files`);
  const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
  assert.ok(has('src/cli/main.ts', 'src/cli/predict.ts'), 'static import');
  assert.ok(has('src/index.ts', 'src/io/index.ts'), 'export ... from');
  assert.ok(edges.some((e) => e.from === 'src/tensor/tensor.ts' && e.to === 'src/backend/backend.ts' && e.typeOnly), 'type-only import');
  const known = new Set(files);
  const dangling = edges.filter((e) => !known.has(e.to) && !e.to.endsWith('.json'));
  assert.deepEqual(dangling, [], 'imports that resolve to no .ts file in src/');
});

test('every folder in src/ has a place in the layers', () => {
  const layers = new Set(files.map(layerOf));
  const placed = new Set(EVERYTHING);
  for (const layer of layers) assert.ok(placed.has(layer), `src/${layer} is in no tier: add it to TIERS here and to docs/ARCHITECTURE.md`);
});

test('docs/ARCHITECTURE.md names every layer in its "Layers" section', () => {
  const doc = readFileSync(join(root, 'docs/ARCHITECTURE.md'), 'utf8');
  const layers = doc.split(/^## /m).find((s) => s.startsWith('Layers'));
  assert.ok(layers, 'docs/ARCHITECTURE.md has a "Layers" section');
  for (const folder of EVERYTHING) assert.ok(layers.includes(folder), `the "Layers" section does not name ${folder}`);
  assert.ok(doc.includes('## Imports that must never happen'), 'docs/ARCHITECTURE.md has an "Imports that must never happen" section');
});

for (const rule of FORBIDDEN) {
  test(`forbidden: ${rule.why}`, () => {
    const bad = edges.filter((e) => layerOf(e.from) !== layerOf(e.to) && rule.from.includes(layerOf(e.from)) && rule.to.includes(layerOf(e.to)));
    assert.deepEqual(bad.map((e) => `${e.from} -> ${e.to}`), [], rule.why);
  });
}

test('imports go down the layers only (or within one folder, or within a tier that is one layer)', () => {
  const tier = new Map(TIERS.flatMap((t, i) => t.folders.map((f) => [f, i] as const)));
  const upward = edges.filter((e) => {
    const a = layerOf(e.from);
    const b = layerOf(e.to);
    if (a === b) return false;
    const ta = tier.get(a)!;
    const tb = tier.get(b)!;
    return tb > ta || (tb === ta && !TIERS[ta]!.together);
  });
  assert.deepEqual(upward.map((e) => `${e.from} -> ${e.to}`), [], 'imports of a higher or sibling layer');
});

/** Strongly connected components of more than one file (Tarjan). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

test('the cycle finder finds a cycle', () => {
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']]);
});

test('no import cycles in src/ (apart from the allowed, type-only ones)', () => {
  const graph = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) graph.get(e.from)!.push(e.to);
  const allowed = (c: readonly string[]) => ALLOWED_CYCLES.some((a) => a.files.length === c.length && a.files.every((f) => c.includes(f)));
  assert.deepEqual(cycles(graph).filter((c) => !allowed(c)), [], 'import cycles');
  for (const a of ALLOWED_CYCLES) {
    const runtime = edges.filter((e) => a.files.includes(e.from) && a.files.includes(e.to) && !e.typeOnly);
    assert.deepEqual(runtime.map((e) => `${e.from} -> ${e.to}`), [], `allowed cycle (${a.why}) must stay type-only`);
  }
});
