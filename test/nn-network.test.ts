import assert from 'node:assert/strict';
import { test } from 'node:test';
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
