import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend, mulberry32 } from '../src/backend/reference/index.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { assertGradient, dot, randomArray, randomAwayFromZero } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

const be = createReferenceBackend('float64');
const shape = [2, 3, 7, 7];
const n = 2 * 3 * 7 * 7;

function take(t: Tensor): Float64Array {
  const a = t.toArray() as Float64Array;
  t.dispose();
  return a;
}

test('relu forward and reluBackward (from y), hand-computed', () => {
  const x = be.fromArray(Float64Array.of(-2, -0, 0, 0.5, 3, -1e-300), [1, 1, 2, 3]);
  const y = be.relu(x);
  assert.deepEqual([...y.toArray()], [0, 0, 0, 0.5, 3, 0]);
  const dy = be.fromArray(Float64Array.of(1, 2, 3, 4, 5, 6), [1, 1, 2, 3]);
  assert.deepEqual([...take(be.reluBackward(y, dy))], [0, 0, 0, 4, 5, 0]);
  for (const t of [x, y, dy]) t.dispose();
});

test('relu gradient vs finite differences', () => {
  const x = randomAwayFromZero(n, 1, 0.01, 2);
  const r = randomArray(n, 2);
  const fwd = (xa: Float64Array) => {
    const t = be.fromArray(xa, shape);
    const y = take(be.relu(t));
    t.dispose();
    return y;
  };
  const y = be.fromArray(fwd(x), shape);
  const dy = be.fromArray(r, shape);
  const dx = take(be.reluBackward(y, dy));
  assertGradient('relu dx', (xa) => dot(r, fwd(xa)), x, dx);
});

test('add, and its clear shape error', () => {
  const a = be.fromArray(Float64Array.of(1, 2, 3, 4), [1, 1, 2, 2]);
  const b = be.fromArray(Float64Array.of(10, 20, 30, 40), [1, 1, 2, 2]);
  assert.deepEqual([...take(be.add(a, b))], [11, 22, 33, 44]);
  const c = be.fromArray(Float64Array.of(1, 2, 3, 4), [1, 1, 1, 4]);
  assert.throws(() => be.add(a, c), refused('invalid-option', 'add'));
  for (const t of [a, b, c]) t.dispose();
});

test('dropout: deterministic in the seed, mask of 0 and 1/(1-rate), keep rate close to 1-rate', () => {
  const x = randomArray(n, 3);
  const xt = be.fromArray(x, shape);
  const rate = 0.3;
  const a = be.dropout(xt, rate, 42);
  const b = be.dropout(xt, rate, 42);
  const c = be.dropout(xt, rate, 43);
  const ma = take(a.mask);
  assert.deepEqual([...ma], [...take(b.mask)], 'same seed, same mask');
  assert.notDeepEqual([...ma], [...take(c.mask)], 'different seed, different mask');
  const scale = 1 / (1 - rate);
  assert.ok(ma.every((m) => m === 0 || m === scale));
  const kept = ma.filter((m) => m !== 0).length / n;
  assert.ok(Math.abs(kept - (1 - rate)) < 0.06, `kept fraction ${kept}`);
  const ya = take(a.y);
  for (let i = 0; i < n; i++) assert.equal(ya[i], x[i]! * ma[i]!);
  // the documented mask rule: element i is kept iff the i-th draw of mulberry32(seed) is >= rate
  const rng = mulberry32(42);
  for (let i = 0; i < n; i++) assert.equal(ma[i], rng() >= rate ? scale : 0);
  for (const t of [b.y, c.y]) t.dispose();

  const id = be.dropout(xt, 0, 1);
  assert.deepEqual([...take(id.y)], [...x]);
  assert.ok(take(id.mask).every((m) => m === 1));
  assert.throws(() => be.dropout(xt, 1, 1), refused('invalid-option', 'dropout', /dropout: rate must be in \[0, 1\), got 1/));
  assert.throws(() => be.dropout(xt, -0.1, 1), refused('invalid-option', 'dropout', /dropout: rate/));
  xt.dispose();
});

test('dropoutBackward = dy * mask, which is the exact gradient of the masked forward', () => {
  const x = randomArray(n, 4);
  const r = randomArray(n, 5);
  const xt = be.fromArray(x, shape);
  const { y, mask } = be.dropout(xt, 0.5, 7);
  const maskArr = mask.toArray();
  const dyt = be.fromArray(r, shape);
  const dx = take(be.dropoutBackward(dyt, mask));
  for (let i = 0; i < n; i++) assert.equal(dx[i], r[i]! * maskArr[i]!);
  assertGradient('dropout dx', (xa) => {
    const t = be.fromArray(xa, shape);
    const out = be.dropout(t, 0.5, 7);
    t.dispose();
    out.mask.dispose();
    return dot(r, take(out.y));
  }, x, dx);
  const bad = be.fromArray(new Float64Array(4), [1, 1, 2, 2]);
  assert.throws(() => be.dropoutBackward(bad, mask), refused('invalid-option', 'dropoutBackward (dy vs mask)'));
  assert.throws(() => be.reluBackward(bad, dyt), refused('invalid-option', 'reluBackward (y vs dy)'));
  for (const t of [xt, y, mask, dyt, bad]) t.dispose();
});
