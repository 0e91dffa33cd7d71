import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { loadOneDnnBackend, nativeAvailable } from '../src/backend/onednn/index.js';
import { LAYERS, layerDef, type LayerType as RegistryType } from '../src/nn/layers/index.js';
import { planModel, type PlanNode } from '../src/nn/plan.js';
import { modelSpecSchema, parseModelSpec, type LayerType, type ModelSpecInput } from '../src/nn/spec.js';

// The registry (src/nn/layers/index.ts) is the one list of layer types: the spec's union is made from it, and every
// def must carry every part (memory costs included). These tests hold that at run time too.

/** Compile-time: the spec's layer types and the registry's are the same set (either difference must be empty). */
type Same<A, B> = [Exclude<A, B> | Exclude<B, A>] extends [never] ? true : false;
const specAndRegistryAgree: Same<LayerType, RegistryType> = true;

type Layer = ModelSpecInput['layers'][number];

/**
 * One small spec per layer type with that layer at index `at`, planned strided at 12x12 (patch classifiers at their
 * window). A Record over LayerType: a new layer type without an example here does not compile.
 */
const EXAMPLES: Record<LayerType, { layers: Layer[]; at: number; window?: number; depth?: number }> = {
  conv: { at: 0, layers: [{ type: 'conv', out: 2, kernel: 3 }, { type: 'softmax' }] },
  dense: { at: 1, window: 8, layers: [{ type: 'conv', out: 3, kernel: 3 }, { type: 'dense', out: 2 }, { type: 'softmax' }] },
  upconv: { at: 0, layers: [{ type: 'upconv', out: 2 }, { type: 'softmax' }] },
  pool: { at: 1, layers: [{ type: 'conv', out: 2, kernel: 1 }, { type: 'pool' }, { type: 'softmax' }] },
  lrn: { at: 1, layers: [{ type: 'conv', out: 2, kernel: 1 }, { type: 'lrn', size: 3 }, { type: 'softmax' }] },
  relu: { at: 1, layers: [{ type: 'upconv', out: 2 }, { type: 'relu' }, { type: 'softmax' }] },
  dropout: { at: 1, layers: [{ type: 'conv', out: 2, kernel: 1 }, { type: 'dropout' }, { type: 'softmax' }] },
  crop: { at: 2, layers: [{ type: 'conv', name: 'a', out: 2, kernel: 1 }, { type: 'conv', name: 'b', out: 2, kernel: 3 },
    { type: 'crop', inputs: ['a'], to: 'b' }, { type: 'softmax' }] },
  concat: { at: 2, layers: [{ type: 'conv', name: 'a', out: 1, kernel: 1 }, { type: 'conv', name: 'b', out: 1, kernel: 1, inputs: ['input'] },
    { type: 'concat', inputs: ['a', 'b'] }, { type: 'softmax' }] },
  add: { at: 2, layers: [{ type: 'conv', name: 'a', out: 2, kernel: 1 }, { type: 'conv', name: 'b', out: 2, kernel: 1, inputs: ['input'] },
    { type: 'add', inputs: ['a', 'b'] }, { type: 'softmax' }] },
  upsample: { at: 1, layers: [{ type: 'conv', out: 2, kernel: 1 }, { type: 'upsample', factor: 2 }, { type: 'softmax' }] },
  softmax: { at: 1, layers: [{ type: 'conv', out: 2, kernel: 1 }, { type: 'softmax' }] },
  // 3-d layers: planned at depth 6 (a spec whose input has dims 3).
  conv3d: { at: 0, depth: 6, layers: [{ type: 'conv3d', out: 2, kernel: [1, 3, 3] }, { type: 'softmax' }] },
  pool3d: { at: 1, depth: 6, layers: [{ type: 'conv3d', out: 2, kernel: 1 }, { type: 'pool3d', kernel: [1, 2, 2] },
    { type: 'softmax' }] },
  upconv3d: { at: 0, depth: 6, layers: [{ type: 'upconv3d', out: 2 }, { type: 'softmax' }] },
  sigmoid: { at: 1, depth: 6, layers: [{ type: 'conv3d', out: 3, kernel: 1 }, { type: 'sigmoid' }] },
};

function examplePlan(type: LayerType): { node: PlanNode; input: number } {
  const e = EXAMPLES[type];
  const input = e.depth === undefined ? undefined : { dims: 3 as const };
  const spec = parseModelSpec({ name: `one-${type}`, window: e.window, input, layers: e.layers }, `example ${type}`);
  const size = e.window ?? 12;
  const plan = planModel(spec, size, size, { depth: e.depth });
  const node = plan.nodes[e.at]!;
  assert.equal(node.type, type, `example ${type}: layer ${e.at} is the layer under test`);
  const src = node.inputs[0]!;
  const [c, h, w] = src < 0 ? plan.input : plan.nodes[src]!.out;
  return { node, input: c * h * w };
}

test('the registry has a def for every layer type of the spec union, and the union has no type without one', () => {
  assert.equal(specAndRegistryAgree, true);
  const union = modelSpecSchema.shape.layers.element;
  const specTypes = [...union.optionsMap.keys()].map(String).sort();
  assert.deepEqual(specTypes, Object.keys(LAYERS).sort());
  for (const [key, def] of Object.entries(LAYERS)) {
    assert.equal(def.type, key, `LAYERS.${key} is the def of "${def.type}"`);
    assert.equal(def.schema.shape.type.value, key, `LAYERS.${key}'s schema accepts type "${key}"`);
  }
});

test('every layer type has non-zero training and inference memory costs', () => {
  for (const type of Object.keys(LAYERS) as LayerType[]) {
    const { node, input } = examplePlan(type);
    const [c, h, w] = node.out;
    const def = layerDef(type);
    const training = def.memory.training(node, { out: c * h * w, input, fused: false });
    const inference = def.memory.inference(node);
    assert.ok(training > 0, `${type}: training memory cost ${training}`);
    assert.ok(inference > 0, `${type}: inference memory cost ${inference}`);
    assert.ok(Number.isFinite(def.flops(node, [[1, 12, 12]])), `${type}: FLOPs`);
  }
});

test('every backend op a layer names is implemented by the reference and oneDNN backends', (t) => {
  const backends = [createBackend({ kind: 'reference' })];
  if (nativeAvailable()) backends.push(loadOneDnnBackend());
  else t.diagnostic('oneDNN addon not built: checked the reference backend only');
  for (const def of Object.values(LAYERS)) {
    assert.ok(def.ops.length > 0, `${def.type} names its ops`);
    for (const backend of backends) {
      for (const op of def.ops) assert.equal(typeof backend[op], 'function', `${backend.name} implements ${op} (${def.type})`);
    }
  }
});
