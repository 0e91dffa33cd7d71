import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Adam, Sgd } from '../src/nn/optim.js';
import type { ParamSet } from '../src/nn/params.js';
import { learningRate } from '../src/nn/schedule.js';

function oneParam(data: number[], grad: number[], name = 'l.weight'): ParamSet {
  return new Map([[name, { name, shape: [data.length], data: Float32Array.from(data), grad: Float32Array.from(grad) }]]);
}

test('SGD with momentum and weight decay follows v = m v + g + wd w; w -= lr v', () => {
  const params = oneParam([1, -2], [0.5, 0.25]);
  const sgd = new Sgd({ momentum: 0.9, weightDecay: 0.1 });
  sgd.step(params, 0.1);
  const p = params.get('l.weight')!;
  assert.ok(Math.abs(p.data[0]! - (1 - 0.1 * (0.5 + 0.1))) < 1e-6);
  sgd.step(params, 0.1);
  const v0 = 0.5 + 0.1;
  const w1 = 1 - 0.1 * v0;
  const v1 = 0.9 * v0 + 0.5 + 0.1 * w1;
  assert.ok(Math.abs(p.data[0]! - (w1 - 0.1 * v1)) < 1e-6);
});

test('weight decay skips biases', () => {
  const params = oneParam([1], [0], 'l.bias');
  new Sgd({ momentum: 0, weightDecay: 0.5 }).step(params, 1);
  assert.equal(params.get('l.bias')!.data[0], 1);
});

test('Adam moves each weight by about lr * sign(g) on its first step', () => {
  const params = oneParam([0, 0], [3, -0.001]);
  new Adam().step(params, 0.01);
  const d = params.get('l.weight')!.data;
  assert.ok(Math.abs(d[0]! + 0.01) < 1e-6 && Math.abs(d[1]! - 0.01) < 1e-5);
});

test('optimiser state round-trips for exact resumption', () => {
  const a = oneParam([1, 2], [0.3, -0.1]);
  const b = oneParam([1, 2], [0.3, -0.1]);
  const first = new Adam();
  first.step(a, 0.01);
  const second = new Adam();
  second.step(b, 0.01);
  const resumed = new Adam();
  resumed.loadState(second.state());
  resumed.stepCount = second.stepCount;
  first.step(a, 0.01);
  resumed.step(b, 0.01);
  assert.deepEqual(a.get('l.weight')!.data, b.get('l.weight')!.data);
});

test('schedules: warm-up, step decay, cosine', () => {
  assert.equal(learningRate({ kind: 'constant', lr: 1, warmupSteps: 4 }, 0), 0.25);
  assert.equal(learningRate({ kind: 'constant', lr: 1, warmupSteps: 4 }, 4), 1);
  assert.ok(Math.abs(learningRate({ kind: 'step', lr: 1, stepSize: 10, gamma: 0.5 }, 25) - 0.25) < 1e-12);
  const cos = { kind: 'cosine' as const, lr: 1, totalSteps: 100, minLr: 0.1 };
  assert.equal(learningRate(cos, 0), 1);
  assert.ok(Math.abs(learningRate(cos, 50) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(cos, 100) - 0.1) < 1e-12);
});
