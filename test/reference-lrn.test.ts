import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LrnParams } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { type Shape, numel } from '../src/tensor/tensor.js';
import { assertClose, assertGradient, dot, randomArray } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

const be = createReferenceBackend('float64');

function lrnFwd(x: Float64Array, shape: Shape, p: LrnParams): Float64Array {
  const t = be.fromArray(x, shape);
  const { y, workspace } = be.lrn(t, p, true);
  t.dispose();
  workspace?.dispose();
  const a = y.toArray() as Float64Array;
  y.dispose();
  return a;
}

function lrnBackward(x: Float64Array, dy: Float64Array, shape: Shape, p: LrnParams): Float64Array {
  const xt = be.fromArray(x, shape);
  const { y, workspace } = be.lrn(xt, p, true);
  y.dispose();
  const dyt = be.fromArray(dy, shape);
  const dx = be.lrnBackward(xt, dyt, workspace, p);
  const a = dx.toArray() as Float64Array;
  for (const t of [xt, dyt, dx]) t.dispose();
  workspace?.dispose();
  return a;
}

const across = (size: number, alpha = 1, beta = 0.5, k = 1): LrnParams => ({ region: 'across', size, alpha, beta, k });
const within = (size: number, alpha = 1, beta = 0.5, k = 1): LrnParams => ({ region: 'within', size, alpha, beta, k });

test('lrn across channels, hand-computed: odd size, even size (window c-1..c+1, divisor 4), size > C', () => {
  const x = Float64Array.of(1, 2, 3); // [1, 3, 1, 1]
  const s = [1, 3, 1, 1];
  // size 3: windows {0,1}, {0,1,2}, {1,2}, alpha/3
  assertClose(lrnFwd(x, s, across(3)), [1 / Math.sqrt(1 + 5 / 3), 2 / Math.sqrt(1 + 14 / 3), 3 / Math.sqrt(1 + 13 / 3)], 1e-15, 1e-14, 'size 3');
  // size 4: oneDNN's half = (4-1)/2 = 1, so the same windows as size 3, but alpha/4
  assertClose(lrnFwd(x, s, across(4)), [1 / Math.sqrt(1 + 5 / 4), 2 / Math.sqrt(1 + 14 / 4), 3 / Math.sqrt(1 + 13 / 4)], 1e-15, 1e-14, 'size 4');
  // size 5 covers all three channels everywhere, alpha/5
  assertClose(lrnFwd(x, s, across(5)), [1, 2, 3].map((v) => v / Math.sqrt(1 + 14 / 5)), 1e-15, 1e-14, 'size 5');
  // size 2: half = 0, only the channel itself, alpha/2; k and beta as given
  assertClose(lrnFwd(x, s, across(2, 0.5, 0.75, 2)), [1, 2, 3].map((v) => v * Math.pow(2 + (0.5 / 2) * v * v, -0.75)), 1e-15, 1e-14, 'size 2');
  // the window only spans channels, never space: a [1,1,1,2] input with size 3 normalises each pixel alone
  assertClose(lrnFwd(Float64Array.of(1, 2), [1, 1, 1, 2], across(3)), [1 / Math.sqrt(1 + 1 / 3), 2 / Math.sqrt(1 + 4 / 3)], 1e-15, 1e-14, 'space');
});

test('lrn within channel, hand-computed: size x size window clipped at borders, divisor size^2', () => {
  const x = Float64Array.from({ length: 9 }, (_, i) => i + 1); // 3x3: 1..9
  const sq = (...v: number[]) => v.reduce((a, b) => a + b * b, 0);
  const y = lrnFwd(x, [1, 1, 3, 3], within(3, 9, 1, 1)); // alpha/size^2 = 1
  assertClose(y, [
    1 / (1 + sq(1, 2, 4, 5)), 2 / (1 + sq(1, 2, 3, 4, 5, 6)), 3 / (1 + sq(2, 3, 5, 6)),
    4 / (1 + sq(1, 2, 4, 5, 7, 8)), 5 / (1 + sq(1, 2, 3, 4, 5, 6, 7, 8, 9)), 6 / (1 + sq(2, 3, 5, 6, 8, 9)),
    7 / (1 + sq(4, 5, 7, 8)), 8 / (1 + sq(4, 5, 6, 7, 8, 9)), 9 / (1 + sq(5, 6, 8, 9)),
  ], 1e-15, 1e-14, 'within 3');
  // size 2: half = 0, the pixel alone, divisor 4
  assertClose(lrnFwd(x, [1, 1, 3, 3], within(2, 1, 1, 1)), [...x].map((v) => v / (1 + v * v / 4)), 1e-15, 1e-14, 'within 2');
  // channels do not mix
  const two = Float64Array.of(1, 0, 0, 0, 5, 0, 0, 0);
  assertClose(lrnFwd(two, [1, 2, 2, 2], within(3, 9, 1, 1)), [1 / 2, 0, 0, 0, 5 / 26, 0, 0, 0], 1e-15, 1e-14, 'within channels');
});

const gradCases: { name: string; shape: Shape; p: LrnParams }[] = [
  { name: 'across size 1', shape: [2, 3, 4, 4], p: across(1, 0.7, 0.75, 1.5) },
  { name: 'across size 3', shape: [2, 5, 3, 3], p: across(3, 0.7, 0.75, 1.5) },
  { name: 'across size 4 (even)', shape: [2, 6, 3, 3], p: across(4, 0.9, 0.75, 1) },
  { name: 'across size 5, C=3 (window wider than C)', shape: [2, 3, 4, 4], p: across(5, 1.3, 0.6, 2) },
  { name: 'across size 5, C=7', shape: [1, 7, 3, 3], p: across(5, 1e-1, 0.75, 1) },
  { name: 'within size 3', shape: [2, 3, 5, 5], p: within(3, 2, 0.75, 1) },
  { name: 'within size 4 (even)', shape: [2, 2, 6, 5], p: within(4, 3, 0.75, 1) },
  { name: 'within size 5 on 4x4 (window wider than the image)', shape: [1, 2, 4, 4], p: within(5, 5, 0.9, 1.2) },
];

for (const c of gradCases) {
  test(`lrn gradient vs finite differences: ${c.name}`, () => {
    const x = randomArray(numel(c.shape), 5, -2, 2);
    const r = randomArray(numel(c.shape), 6);
    const dx = lrnBackward(x, r, c.shape, c.p);
    assertGradient('lrn dx', (xa) => dot(r, lrnFwd(xa, c.shape, c.p)), x, dx);
  });
}

test('lrn: float32 close to float64; clear errors', () => {
  const be32 = createReferenceBackend('float32');
  const x = randomArray(2 * 4 * 3 * 3, 9, -2, 2);
  const p = across(5, 1e-4 * 5, 0.75, 1);
  const t = be32.fromArray(Float32Array.from(x), [2, 4, 3, 3]);
  const { y } = be32.lrn(t, p, false);
  assertClose(y.toArray(), lrnFwd(x, [2, 4, 3, 3], p), 1e-6, 1e-6, 'float32 lrn');

  const xt = be.fromArray(x, [2, 4, 3, 3]);
  assert.throws(() => be.lrn(xt, across(0), false), refused('invalid-option', 'lrn', /lrn: size must be a positive integer, got 0/));
  assert.throws(() => be.lrn(xt, { ...across(3), region: 'diagonal' as 'across' }, false), refused('invalid-option', 'lrn', /lrn: region/));
  assert.throws(() => be.lrn(xt, across(3, Number.NaN), false), refused('invalid-option', 'lrn', /lrn: alpha must be finite/));
  const dy = be.fromArray(new Float64Array(2 * 4 * 3 * 2), [2, 4, 3, 2]);
  assert.throws(() => be.lrnBackward(xt, dy, null, across(3)), refused('invalid-option', 'lrnBackward (x vs dy)'));
  assert.throws(() => be.lrnBackward(xt, t, null, across(3)), refused('invalid-option', 'lrnBackward dy'));
});
