import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { type Shape, type Tensor, numel } from '../src/tensor/tensor.js';
import { assertGradient, dot, randomArray } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

const be = createReferenceBackend('float64');

function take(t: Tensor): Float64Array {
  const a = t.toArray() as Float64Array;
  t.dispose();
  return a;
}
function apply(x: Float64Array, shape: Shape, f: (t: Tensor) => Tensor): Float64Array {
  const t = be.fromArray(x, shape);
  const y = take(f(t));
  t.dispose();
  return y;
}
const iota = (n: number, from = 0) => Float64Array.from({ length: n }, (_, i) => from + i);

test('crop, hand-computed, and its gradient', () => {
  // [1, 2, 3, 4]: channel 0 = 0..11, channel 1 = 12..23
  const x = iota(24);
  const y = apply(x, [1, 2, 3, 4], (t) => be.crop(t, 1, 1, 2, 2));
  assert.deepEqual([...y], [5, 6, 9, 10, 17, 18, 21, 22]);
  const dy = be.fromArray(Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8), [1, 2, 2, 2]);
  const dx = take(be.cropBackward(dy, [1, 2, 3, 4], 1, 1));
  assert.deepEqual([...dx], [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0]);
  dy.dispose();

  const shape = [2, 3, 7, 7];
  const xs = randomArray(numel(shape), 1);
  const r = randomArray(2 * 3 * 4 * 5, 2);
  const rt = be.fromArray(r, [2, 3, 4, 5]);
  const g = take(be.cropBackward(rt, shape, 2, 1));
  assertGradient('crop dx', (xa) => dot(r, apply(xa, shape, (t) => be.crop(t, 2, 1, 4, 5))), xs, g);
  const xt = be.fromArray(xs, shape);
  assert.throws(() => be.crop(xt, 4, 0, 4, 5), refused('invalid-option', 'crop', /crop: window \[4, 0\] \+ 4x5 does not fit in input \[2x3x7x7\]/));
  assert.throws(() => be.crop(xt, -1, 0, 4, 5), refused('invalid-option', 'crop', /crop: top must be a non-negative integer/));
  assert.throws(() => be.crop(xt, 0, 0, 0, 5), refused('invalid-option', 'crop', /crop: crop size/));
  assert.throws(() => be.cropBackward(rt, [2, 2, 7, 7], 0, 0), refused('invalid-option', 'cropBackward', /cropBackward: dy \[2x3x4x5\] and x \[2x2x7x7\]/));
  assert.throws(() => be.cropBackward(rt, shape, 4, 0), refused('invalid-option', 'cropBackward', /cropBackward: window/));
  xt.dispose();
  rt.dispose();
});

test('concat along channels, hand-computed, and concatBackward as its gradient', () => {
  const a = be.fromArray(iota(4), [2, 1, 1, 2]);        // n0: [0,1]     n1: [2,3]
  const b = be.fromArray(iota(8, 10), [2, 2, 1, 2]);    // n0: [10..13]  n1: [14..17]
  const y = be.concat([a, b]);
  assert.deepEqual([...y.shape], [2, 3, 1, 2]);
  assert.deepEqual([...take(y)], [0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17]);
  const dy = be.fromArray(iota(12), [2, 3, 1, 2]);
  const [da, db] = be.concatBackward(dy, [1, 2]);
  assert.deepEqual([...da!.shape], [2, 1, 1, 2]);
  assert.deepEqual([...take(da!)], [0, 1, 6, 7]);
  assert.deepEqual([...take(db!)], [2, 3, 4, 5, 8, 9, 10, 11]);

  // finite differences through a three-way concat
  const shapes: Shape[] = [[2, 1, 3, 3], [2, 3, 3, 3], [2, 2, 3, 3]];
  const parts = shapes.map((s, k) => randomArray(numel(s), 20 + k));
  const r = randomArray(2 * 6 * 3 * 3, 30);
  const rt = be.fromArray(r, [2, 6, 3, 3]);
  const grads = be.concatBackward(rt, [1, 3, 2]).map(take);
  const fwd = (k: number) => (xa: Float64Array) => {
    const ts = shapes.map((s, j) => be.fromArray(j === k ? xa : parts[j]!, s));
    const out = take(be.concat(ts));
    ts.forEach((t) => t.dispose());
    return dot(r, out);
  };
  for (let k = 0; k < 3; k++) assertGradient(`concat d(input ${k})`, fwd(k), parts[k]!, grads[k]!);

  const c = be.fromArray(iota(6), [2, 1, 1, 3]);
  assert.throws(() => be.concat([a, c]), refused('invalid-option', 'concat', /concat: input 1 \[2x1x1x3\] differs from input 0 \[2x1x1x2\]/));
  assert.throws(() => be.concat([]), refused('invalid-option', 'concat', /concat: needs at least one tensor/));
  assert.throws(() => be.concatBackward(dy, [1, 1]), refused('invalid-option', 'concatBackward', /concatBackward: channel counts \[1, 1\] sum to 2 but dy \[2x3x1x2\] has 3/));
  assert.throws(() => be.concatBackward(dy, [0, 3]), refused('invalid-option', 'concatBackward', /concatBackward: channel counts must be positive/));
  for (const t of [a, b, c, dy, rt]) t.dispose();
});

test('upsampleNearest, hand-computed, and its backward (block sums) as its gradient', () => {
  const y = apply(Float64Array.of(1, 2, 3, 4), [1, 1, 2, 2], (t) => be.upsampleNearest(t, 2));
  assert.deepEqual([...y], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const one = apply(Float64Array.of(1, 2, 3, 4), [1, 1, 2, 2], (t) => be.upsampleNearest(t, 1));
  assert.deepEqual([...one], [1, 2, 3, 4]);
  const dy = be.fromArray(iota(16), [1, 1, 4, 4]);
  assert.deepEqual([...take(be.upsampleNearestBackward(dy, 2))], [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15]);

  const shape = [2, 3, 3, 4];
  const x = randomArray(numel(shape), 3);
  const r = randomArray(2 * 3 * 9 * 12, 4);
  const rt = be.fromArray(r, [2, 3, 9, 12]);
  const dx = take(be.upsampleNearestBackward(rt, 3));
  assertGradient('upsample dx', (xa) => dot(r, apply(xa, shape, (t) => be.upsampleNearest(t, 3))), x, dx);
  assert.throws(() => be.upsampleNearestBackward(rt, 2), refused('invalid-option', 'upsampleNearestBackward', /upsampleNearestBackward: dy \[2x3x9x12\] is not a multiple of the factor 2/));
  assert.throws(() => be.upsampleNearestBackward(rt, 1.5), refused('invalid-option', 'upsampleNearestBackward', /factor must be a positive integer/));
  assert.throws(() => be.upsampleNearest(dy, 0), refused('invalid-option', 'upsampleNearest'));
  dy.dispose();
  rt.dispose();
});

test('crop3d and 5-d concat, hand-computed, and their gradients', () => {
  const shape: Shape = [1, 2, 3, 4, 5];
  const x = iota(numel(shape));
  const y = apply(x, shape, (t) => be.crop3d(t, 1, 2, 1, 2, 2, 3));
  // channel 0, depth 1..2, rows 2..3, columns 1..3
  assert.deepEqual([...y.subarray(0, 6)], [31, 32, 33, 36, 37, 38]);
  assert.deepEqual([...y.subarray(6, 12)], [51, 52, 53, 56, 57, 58]);
  const r = randomArray(y.length, 5);
  const dy = be.fromArray(r, [1, 2, 2, 2, 3]);
  const dx = take(be.crop3dBackward(dy, shape, 1, 2, 1));
  dy.dispose();
  assertGradient('crop3d dx', (xa) => dot(r, apply(xa, shape, (t) => be.crop3d(t, 1, 2, 1, 2, 2, 3))), x, dx);

  const a = be.fromArray(iota(2 * 2 * 3, 0), [1, 2, 2, 1, 3]);
  const b = be.fromArray(iota(1 * 2 * 3, 100), [1, 1, 2, 1, 3]);
  const cat = be.concat([a, b]);
  assert.deepEqual([...cat.shape], [1, 3, 2, 1, 3]);
  assert.deepEqual([...take(cat)], [...iota(12), ...iota(6, 100)]);
  const g = be.fromArray(iota(18), [1, 3, 2, 1, 3]);
  const [ga, gb] = be.concatBackward(g, [2, 1]);
  assert.deepEqual([...ga!.shape], [1, 2, 2, 1, 3]);
  assert.deepEqual([...take(ga!)], [...iota(12)]);
  assert.deepEqual([...take(gb!)], [...iota(6, 12)]);
  for (const t of [a, b, g]) t.dispose();
});
