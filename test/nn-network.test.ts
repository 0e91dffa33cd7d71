import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadOneDnnBackend, nativeAvailable } from '../src/backend/onednn/index.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { Network } from '../src/nn/network.js';
import { initParams, zeroGrads } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';
import { isEmsegError } from '../src/errors.js';

// A small DAG touching every trainable path: fused conv+ReLU, skip crop, add, LRN, pooling, up-convolution,
// concat (a tensor with two consumers gets the sum of both gradients).
const dagSpec = parseModelSpec({
  name: 'dag',
  layers: [
    { type: 'conv', name: 'c1', out: 3, kernel: 3, padding: 'same' }, { type: 'relu', name: 'r1' },
    { type: 'conv', name: 'c2', out: 3, kernel: 3 }, { type: 'relu', name: 'r2' },
    { type: 'crop', name: 'skip', inputs: ['r1'], to: 'r2' },
    { type: 'add', name: 'sum', inputs: ['skip', 'r2'] },
    { type: 'lrn', region: 'within', size: 3, alpha: 0.3, beta: 0.75, k: 1 },
    { type: 'pool', kernel: 2 },
    { type: 'upconv', name: 'up', out: 2, kernel: 2, stride: 2 },
    { type: 'concat', name: 'cat', inputs: ['up', 'sum'] },
    { type: 'conv', name: 'head', out: 2, kernel: 1 },
    { type: 'softmax' },
  ],
});

function setup(seed: number) {
  const backend = createReferenceBackend('float64');
  const plan = planModel(dagSpec, 10, 10);
  const params = initParams(plan, seed, 'float64');
  const rng = new Rng(seed);
  const x = backend.fromArray(Float64Array.from({ length: 2 * 100 }, () => rng.next()), [2, 1, 10, 10]);
  const labels = Int32Array.from({ length: 2 * 64 }, (_, i) => (i % 7 === 0 ? -1 : rng.int(2)));
  const weights = Float32Array.from({ length: 2 * 64 }, () => 0.5 + rng.next());
  return { backend, plan, params, x, target: { labels, weights } };
}

test('DAG autograd: every parameter gradient matches central finite differences (float64)', () => {
  const { backend, plan, params, x, target } = setup(11);
  const net = new Network(plan, params, backend);
  zeroGrads(params);
  net.trainStep(x, target);
  // Snapshot first: each trainStep below accumulates into p.grad again.
  const analyticOf = new Map([...params.values()].map((p) => [p.name, Float64Array.from(p.grad)]));
  const rng = new Rng(5);
  const h = 1e-6;
  for (const p of params.values()) {
    const analytic = analyticOf.get(p.name)!;
    for (let k = 0; k < 6; k++) {
      const i = rng.int(p.data.length);
      const w0 = p.data[i]!;
      p.data[i] = w0 + h;
      const up = net.trainStep(x, target).loss;
      p.data[i] = w0 - h;
      const down = net.trainStep(x, target).loss;
      p.data[i] = w0;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - analytic[i]!) / Math.max(1e-8, Math.abs(numeric) + Math.abs(analytic[i]!));
      assert.ok(err < 1e-5, `${p.name}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`);
    }
  }
});

test('gradients accumulate across steps until zeroed', () => {
  const { backend, plan, params, x, target } = setup(3);
  const net = new Network(plan, params, backend);
  zeroGrads(params);
  net.trainStep(x, target);
  const once = Float64Array.from(params.get('c1.weight')!.grad);
  net.trainStep(x, target);
  const twice = params.get('c1.weight')!.grad;
  once.forEach((g, i) => assert.ok(Math.abs(twice[i]! - 2 * g) < 1e-12));
});

test('predict returns per-pixel class probabilities and training lowers the loss', () => {
  const { backend, plan, params, x, target } = setup(7);
  const net = new Network(plan, params, backend);
  const probs = net.predict(x).toArray();
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(probs[i]! + probs[64 + i]! - 1) < 1e-12);
  const first = net.trainStep(x, target).loss;
  for (let s = 0; s < 30; s++) {
    zeroGrads(params);
    net.trainStep(x, target);
    for (const p of params.values()) for (let i = 0; i < p.data.length; i++) p.data[i] -= 0.5 * p.grad[i]!;
  }
  assert.ok(net.trainStep(x, target).loss < first * 0.9);
});

test('the network input shape is checked', () => {
  const { backend, plan, params } = setup(1);
  const net = new Network(plan, params, backend);
  const wrong = backend.fromArray(new Float64Array(81), [1, 1, 9, 9]);
  assert.throws(() => net.predict(wrong), (e: unknown) => isEmsegError(e, 'invalid-option') && e.path === 'network input');
});

// The 3-d twin: anisotropic in-plane conv, a 3x3x3 valid conv, a 3-d crop skip, add, in-plane pooling, a 1x2x2
// up-convolution, 5-d concat, and a sigmoid head of 3 channels (affinities) trained per element with a mask.
const dag3dLayers = (head: 'sigmoid' | 'softmax') => [
  { type: 'conv3d' as const, name: 'c1', out: 3, kernel: [1, 3, 3] as [number, number, number], padding: 'same' as const },
  { type: 'relu' as const, name: 'r1' },
  { type: 'conv3d' as const, name: 'c2', out: 3, kernel: 3 }, { type: 'relu' as const, name: 'r2' },
  { type: 'crop' as const, name: 'skip', inputs: ['r1'], to: 'r2' },
  { type: 'add' as const, name: 'sum', inputs: ['skip', 'r2'] },
  { type: 'pool3d' as const, kernel: [1, 2, 2] as [number, number, number] },
  { type: 'upconv3d' as const, name: 'up', out: 2, kernel: [1, 2, 2] as [number, number, number], stride: [1, 2, 2] as [number, number, number] },
  { type: 'concat' as const, name: 'cat', inputs: ['up', 'sum'] },
  { type: 'conv3d' as const, name: 'head', out: head === 'sigmoid' ? 3 : 2, kernel: 1 },
  { type: head },
];

function setup3d(seed: number, head: 'sigmoid' | 'softmax' = 'sigmoid') {
  const spec = parseModelSpec({ name: 'dag3d', input: { dims: 3 }, layers: dag3dLayers(head) });
  const backend = createReferenceBackend('float64');
  const plan = planModel(spec, 10, 10, { depth: 6 });
  const params = initParams(plan, seed, 'float64');
  const rng = new Rng(seed);
  const x = backend.fromArray(Float64Array.from({ length: 2 * 6 * 100 }, () => rng.next()), [2, 1, 6, 10, 10]);
  const out = 2 * 3 * 4 * 8 * 8; // N x channels x 4 x 8 x 8
  const targets = Float32Array.from({ length: out }, () => rng.int(2));
  const weights = Float32Array.from({ length: out }, (_, i) => (i % 9 === 0 ? 0 : 0.5 + rng.next()));
  return { spec, backend, plan, params, x, target: { targets, weights } };
}

test('3-d DAG: plan shapes, per-axis receptive field, and every gradient vs finite differences (sigmoid head)', () => {
  const { backend, plan, params, x, target } = setup3d(13);
  assert.deepEqual(plan.output, [3, 8, 8]);
  assert.equal(plan.inputDepth, 6);
  assert.deepEqual(plan.z, { size: 4, field: 3, jump: 1 });
  assert.equal(plan.field, 6); // in-plane: 1x3x3 same, 3x3x3, 1x2x2 pooling, 1x2x2 up-convolution
  const net = new Network(plan, params, backend);
  zeroGrads(params);
  net.trainStep(x, target);
  const analyticOf = new Map([...params.values()].map((p) => [p.name, Float64Array.from(p.grad)]));
  const rng = new Rng(6);
  const h = 1e-6;
  for (const p of params.values()) {
    const analytic = analyticOf.get(p.name)!;
    for (let k = 0; k < 5; k++) {
      const i = rng.int(p.data.length);
      const w0 = p.data[i]!;
      p.data[i] = w0 + h;
      const up = net.trainStep(x, target).loss;
      p.data[i] = w0 - h;
      const down = net.trainStep(x, target).loss;
      p.data[i] = w0;
      const numeric = (up - down) / (2 * h);
      const diff = Math.abs(numeric - analytic[i]!);
      const err = diff / Math.max(1e-8, Math.abs(numeric) + Math.abs(analytic[i]!));
      // Central differences of a loss near 0.7 with h = 1e-6 carry ~1e-9 of rounding: tiny gradients get that floor.
      assert.ok(err < 1e-5 || diff < 5e-9, `${p.name}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`);
    }
  }
  const probs = net.predict(x);
  assert.deepEqual([...probs.shape], [2, 3, 4, 8, 8]);
  assert.ok(probs.toArray().every((v) => v > 0 && v < 1));
  probs.dispose();
});

test('3-d DAG with a softmax head trains on per-voxel labels; targets of the other head are refused', () => {
  const { backend, plan, params, x, target } = setup3d(17, 'softmax');
  const net = new Network(plan, params, backend);
  const labels = Int32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => (i % 5 === 0 ? -1 : i % 2));
  const first = net.trainStep(x, { labels }).loss;
  for (let s = 0; s < 20; s++) {
    zeroGrads(params);
    net.trainStep(x, { labels });
    for (const p of params.values()) for (let i = 0; i < p.data.length; i++) p.data[i] -= 0.5 * p.grad[i]!;
  }
  assert.ok(net.trainStep(x, { labels }).loss < first * 0.9);
  assert.throws(() => net.trainStep(x, target), (e: unknown) => isEmsegError(e, 'invalid-option') && e.path === 'training target');
  const flat = backend.fromArray(new Float64Array(100), [1, 1, 10, 10]);
  assert.throws(() => net.predict(flat), (e: unknown) => isEmsegError(e, 'invalid-option') && e.path === 'network input');
});

test('3-d DAG: a oneDNN training step equals the reference (loss, every parameter gradient)', (t) => {
  if (!nativeAvailable()) return t.skip('oneDNN addon not built');
  const { backend, plan, params, x, target } = setup3d(19);
  const ref = new Network(plan, params, backend);
  zeroGrads(params);
  const want = ref.trainStep(x, target).loss;
  const wantGrads = new Map([...params.values()].map((p) => [p.name, Float64Array.from(p.grad)]));
  const nat = loadOneDnnBackend({ precision: 'float32' });
  const params32 = new Map([...params].map(([k, p]) => [k, { ...p, data: Float32Array.from(p.data), grad: new Float32Array(p.data.length) }]));
  const x32 = nat.fromArray(Float32Array.from(x.toArray()), x.shape);
  const got = new Network(plan, params32, nat).trainStep(x32, target).loss;
  x32.dispose();
  assert.ok(Math.abs(got - want) < 1e-4 * Math.abs(want), `loss ${got} vs ${want}`);
  for (const p of params32.values()) {
    const w = wantGrads.get(p.name)!;
    const scale = Math.max(...w.map(Math.abs));
    p.grad.forEach((g, i) => assert.ok(Math.abs(g - w[i]!) <= 1e-4 * scale, `${p.name}[${i}]: ${g} vs ${w[i]}`));
  }
});
