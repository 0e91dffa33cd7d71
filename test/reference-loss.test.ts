import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import type { Shape, Tensor } from '../src/tensor/tensor.js';
import { refused } from './helpers/errors.js';
import { assertClose, assertGradient, makeRng, randomArray } from './helpers/gradcheck.js';

const be = createReferenceBackend('float64');

function take(t: Tensor): Float64Array {
  const a = t.toArray() as Float64Array;
  t.dispose();
  return a;
}

test('softmax over channels: hand-computed, sums to one, stable for huge logits', () => {
  // [1, 3, 1, 2]: pixel 0 logits (0, ln 2, ln 5), pixel 1 (1000, 1000, -1000)
  const x = be.fromArray(Float64Array.of(0, 1000, Math.log(2), 1000, Math.log(5), -1000), [1, 3, 1, 2]);
  const p = take(be.softmax(x));
  assertClose(p, [1 / 8, 0.5, 2 / 8, 0.5, 5 / 8, 0], 1e-15, 1e-14, 'softmax');
  x.dispose();
  const y = randomArray(2 * 4 * 3 * 3, 1, -5, 5);
  const t = be.fromArray(y, [2, 4, 3, 3]);
  const s = take(be.softmax(t));
  t.dispose();
  for (let n = 0; n < 2; n++) {
    for (let q = 0; q < 9; q++) {
      let sum = 0;
      for (let c = 0; c < 4; c++) sum += s[(n * 4 + c) * 9 + q]!;
      assert.ok(Math.abs(sum - 1) < 1e-14);
    }
  }
});

test('softmaxCrossEntropy: hand-computed with ignore (-1) and weights', () => {
  // [1, 2, 1, 3], logits per pixel: (0, 0), (ln 3, 0), (5, 7)
  const logits = be.fromArray(Float64Array.of(0, Math.log(3), 5, 0, 0, 7), [1, 2, 1, 3]);
  const labels = Int32Array.of(1, 0, -1);
  // unweighted: ce0 = ln 2, ce1 = -ln(3/4) = ln(4/3); mean over the 2 non-ignored pixels
  const u = be.softmaxCrossEntropy(logits, { labels });
  assert.equal(u.weightSum, 2);
  assert.ok(Math.abs(u.loss - (Math.log(2) + Math.log(4 / 3)) / 2) < 1e-15);
  assertClose(take(u.dlogits), [0.5 / 2, (0.75 - 1) / 2, 0, (0.5 - 1) / 2, 0.25 / 2, 0], 1e-15, 1e-14, 'unweighted dlogits');
  // weights (3, 1, 100): the ignored pixel's weight does not count
  const w = be.softmaxCrossEntropy(logits, { labels, weights: Float32Array.of(3, 1, 100) });
  assert.equal(w.weightSum, 4);
  assert.ok(Math.abs(w.loss - (3 * Math.log(2) + Math.log(4 / 3)) / 4) < 1e-15);
  assertClose(take(w.dlogits), [3 * 0.5 / 4, (0.75 - 1) / 4, 0, 3 * (0.5 - 1) / 4, 0.25 / 4, 0], 1e-15, 1e-14, 'weighted dlogits');
  // everything ignored or zero-weighted: loss 0, zero gradient
  const none = be.softmaxCrossEntropy(logits, { labels: Int32Array.of(-1, -1, -1) });
  assert.equal(none.loss, 0);
  assert.equal(none.weightSum, 0);
  assert.ok(take(none.dlogits).every((v) => v === 0));
  const zero = be.softmaxCrossEntropy(logits, { labels, weights: Float32Array.of(0, 0, 5) });
  assert.equal(zero.loss, 0);
  assert.ok(take(zero.dlogits).every((v) => v === 0));
  // huge logits stay finite
  const big = be.fromArray(Float64Array.of(1000, -1000), [1, 2, 1, 1]);
  const b = be.softmaxCrossEntropy(big, { labels: Int32Array.of(1) });
  assert.ok(Math.abs(b.loss - 2000) < 1e-9);
  b.dlogits.dispose();
  big.dispose();
  logits.dispose();
});

test('softmaxCrossEntropy gradient vs finite differences (weights and ignored pixels)', () => {
  const shape: Shape = [2, 3, 4, 5];
  const pixels = 2 * 4 * 5;
  const rng = makeRng(9);
  const labels = Int32Array.from({ length: pixels }, () => Math.floor(rng() * 4) - 1); // -1..2
  const weights = Float32Array.from({ length: pixels }, () => 0.1 + rng());
  const z = randomArray(2 * 3 * 4 * 5, 10, -3, 3);
  for (const target of [{ labels }, { labels, weights }]) {
    const t = be.fromArray(z, shape);
    const res = be.softmaxCrossEntropy(t, target);
    t.dispose();
    const dz = take(res.dlogits);
    assertGradient('softmaxCrossEntropy dlogits', (za) => {
      const tt = be.fromArray(za, shape);
      const r = be.softmaxCrossEntropy(tt, target);
      tt.dispose();
      r.dlogits.dispose();
      return r.loss;
    }, z, dz);
  }
});

test('softmaxCrossEntropy: clear errors', () => {
  const logits = be.fromArray(new Float64Array(2 * 3 * 2 * 2), [2, 3, 2, 2]);
  assert.throws(() => be.softmaxCrossEntropy(logits, { labels: new Int32Array(7) }),
    refused('invalid-option', 'softmaxCrossEntropy', /softmaxCrossEntropy: 7 labels for logits \[2x3x2x2\] \(expected N\*H\*W = 8\)/));
  assert.throws(() => be.softmaxCrossEntropy(logits, { labels: new Int32Array(8), weights: new Float32Array(4) }),
    refused('invalid-option', 'softmaxCrossEntropy', /softmaxCrossEntropy: 4 weights/));
  assert.throws(() => be.softmaxCrossEntropy(logits, { labels: Int32Array.of(0, 1, 2, 3, 0, 0, 0, 0) }),
    refused('invalid-option', 'softmaxCrossEntropy', /softmaxCrossEntropy: label 3 at pixel 3 is outside \[-1, 2\]/));
  assert.throws(() => be.softmaxCrossEntropy(logits, { labels: new Int32Array(8), weights: new Float32Array(8).fill(-1) }),
    refused('invalid-option', 'softmaxCrossEntropy', /weight -1 at pixel 0 must be finite and >= 0/));
  logits.dispose();
});

test('sigmoidCrossEntropy: hand-computed, and its gradient vs finite differences (5-d, weights, masked elements)', () => {
  const one = be.fromArray(Float64Array.of(0, 2), [1, 2, 1, 1, 1]);
  const r0 = be.sigmoidCrossEntropy(one, { targets: Float32Array.of(1, 0) });
  // bce(0, 1) = log 2, bce(2, 0) = 2 + log(1 + e^-2)
  assertClose([r0.loss], [(Math.log(2) + 2 + Math.log1p(Math.exp(-2))) / 2], 1e-12, 1e-12, 'loss');
  assertClose(take(r0.dlogits), [(0.5 - 1) / 2, 1 / (1 + Math.exp(-2)) / 2], 1e-12, 1e-12, 'dlogits');
  assertClose(take(be.sigmoid(one)), [0.5, 1 / (1 + Math.exp(-2))], 1e-12, 1e-12, 'sigmoid');
  one.dispose();

  const shape: Shape = [2, 3, 2, 2, 3];
  const n = 2 * 3 * 2 * 2 * 3;
  const rng = makeRng(19);
  const targets = Float32Array.from({ length: n }, (_, i) => (i % 2 ? Math.round(rng()) : rng()));
  const weights = Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 0.1 + rng()));
  const z = randomArray(n, 20, -3, 3);
  for (const target of [{ targets }, { targets, weights }]) {
    const t = be.fromArray(z, shape);
    const res = be.sigmoidCrossEntropy(t, target);
    t.dispose();
    const dz = take(res.dlogits);
    assertGradient('sigmoidCrossEntropy dlogits', (za) => {
      const tt = be.fromArray(za, shape);
      const r = be.sigmoidCrossEntropy(tt, target);
      tt.dispose();
      r.dlogits.dispose();
      return r.loss;
    }, z, dz);
  }
  const none = be.fromArray(z, shape);
  const r3 = be.sigmoidCrossEntropy(none, { targets, weights: new Float32Array(n) });
  assert.equal(r3.loss, 0);
  assert.equal(r3.weightSum, 0);
  assert.ok(take(r3.dlogits).every((v) => v === 0));
  assert.throws(() => be.sigmoidCrossEntropy(none, { targets: targets.map(() => -0.5) }), refused('invalid-option', 'sigmoidCrossEntropy'));
  none.dispose();
});
