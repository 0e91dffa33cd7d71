import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pool3dParams, PoolParams } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { type Shape, numel } from '../src/tensor/tensor.js';
import { assertGradient, dot, randomArray } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

const be = createReferenceBackend('float64');

function pool(x: Float64Array, xShape: Shape, p: PoolParams): { y: Float64Array; yShape: Shape; dxOf: (dy: Float64Array) => Float64Array } {
  const xt = be.fromArray(x, xShape);
  const { y, workspace } = be.maxPool2d(xt, p, true);
  xt.dispose();
  assert.ok(workspace);
  const yShape = [...y.shape];
  const yArr = y.toArray() as Float64Array;
  y.dispose();
  return {
    y: yArr,
    yShape,
    dxOf: (dy) => {
      const dyt = be.fromArray(dy, yShape);
      const dx = be.maxPool2dBackward(dyt, workspace, xShape, p);
      dyt.dispose();
      const a = dx.toArray() as Float64Array;
      dx.dispose();
      return a;
    },
  };
}

const P = (kernel: [number, number], stride: [number, number], padding: [number, number, number, number],
  dilation: [number, number] = [1, 1]): PoolParams => ({ kernel, stride, padding, dilation });

test('maxPool2d: 2x2/2 and 3x3/2 with padding, hand-computed; padded cells never win', () => {
  const x = Float64Array.from({ length: 16 }, (_, i) => i);
  assert.deepEqual([...pool(x, [1, 1, 4, 4], P([2, 2], [2, 2], [0, 0, 0, 0])).y], [5, 7, 13, 15]);
  const r = pool(x, [1, 1, 4, 4], P([3, 3], [2, 2], [1, 1, 1, 1]));
  assert.deepEqual([...r.yShape], [1, 1, 2, 2]);
  assert.deepEqual([...r.y], [5, 7, 13, 15]);
  // all-negative input: a zero-padded implementation would output 0 at the border windows
  const neg = x.map((v) => -v - 1);
  assert.deepEqual([...pool(neg, [1, 1, 4, 4], P([3, 3], [2, 2], [1, 1, 1, 1])).y], [-1, -2, -5, -6]);
  // asymmetric padding (top/left only), even kernel: windows start at -1
  const a = pool(neg, [1, 1, 4, 4], P([2, 2], [2, 2], [1, 1, 0, 0]));
  assert.deepEqual([...a.yShape], [1, 1, 2, 2]);
  assert.deepEqual([...a.y], [-1, -2, -5, -6]);
});

test('maxPool2d: dilation (ours = oneDNN + 1) and a rectangular kernel', () => {
  const x = Float64Array.from({ length: 25 }, (_, i) => i);
  const r = pool(x, [1, 1, 5, 5], P([2, 2], [1, 1], [0, 0, 0, 0], [2, 2]));
  assert.deepEqual([...r.yShape], [1, 1, 3, 3]);
  assert.deepEqual([...r.y], [12, 13, 14, 17, 18, 19, 22, 23, 24]);
  const rect = pool(x, [1, 1, 5, 5], P([1, 3], [1, 2], [0, 0, 0, 0]));
  assert.deepEqual([...rect.yShape], [1, 1, 5, 2]);
  assert.deepEqual([...rect.y], [2, 4, 7, 9, 12, 14, 17, 19, 22, 24]);
});

test('maxPool2d: ties go to the first maximal element in scan order, and so does the gradient', () => {
  const x = Float64Array.of(7, 7, 7, 7);
  const r = pool(x, [1, 1, 2, 2], P([2, 2], [1, 1], [1, 1, 1, 1]));
  assert.deepEqual([...r.yShape], [1, 1, 3, 3]);
  assert.deepEqual([...r.y], new Array(9).fill(7));
  assert.deepEqual([...r.dxOf(new Float64Array(9).fill(1))], [4, 2, 2, 1]);
  // a later equal value does not steal the argmax from an earlier one
  const y2 = pool(Float64Array.of(1, 3, 3, 2), [1, 1, 2, 2], P([2, 2], [1, 1], [0, 0, 0, 0]));
  assert.deepEqual([...y2.dxOf(Float64Array.of(5))], [0, 5, 0, 0]);
});

test('maxPool2d: a window entirely in the padding outputs the lowest finite value and gets no gradient', () => {
  const x = Float64Array.of(1, 2, 3, 4);
  const r = pool(x, [1, 1, 2, 2], P([1, 1], [1, 1], [1, 1, 1, 1]));
  assert.deepEqual([...r.yShape], [1, 1, 4, 4]);
  const L = -Number.MAX_VALUE;
  assert.deepEqual([...r.y], [L, L, L, L, L, 1, 2, L, L, 3, 4, L, L, L, L, L]);
  assert.deepEqual([...r.dxOf(new Float64Array(16).fill(1))], [1, 1, 1, 1]);
  const be32 = createReferenceBackend('float32');
  const t = be32.fromArray(Float32Array.from(x), [1, 1, 2, 2]);
  const y32 = be32.maxPool2d(t, P([1, 1], [1, 1], [1, 0, 0, 0]), false);
  assert.equal(y32.workspace, null);
  assert.deepEqual([...y32.y.toArray()], [-3.4028234663852886e38, -3.4028234663852886e38, 1, 2, 3, 4]);
});

const gradCases: { name: string; xShape: Shape; p: PoolParams }[] = [
  { name: 'k2 s2', xShape: [2, 3, 7, 7], p: P([2, 2], [2, 2], [0, 0, 0, 0]) },
  { name: 'k3 s2 pad1', xShape: [2, 3, 7, 7], p: P([3, 3], [2, 2], [1, 1, 1, 1]) },
  { name: 'k4 s1 asymmetric pad', xShape: [2, 3, 7, 7], p: P([4, 4], [1, 1], [1, 1, 2, 2]) },
  { name: 'k3 s1 dilation2 pad2', xShape: [2, 3, 7, 7], p: P([3, 3], [1, 1], [2, 2, 2, 2], [2, 2]) },
  { name: 'k3x2 s1x2 dilation2x1', xShape: [2, 2, 7, 8], p: P([3, 2], [1, 2], [0, 1, 1, 0], [2, 1]) },
];

for (const c of gradCases) {
  test(`maxPool2d gradient vs finite differences: ${c.name}`, () => {
    const x = randomArray(numel(c.xShape), 7);
    const base = pool(x, c.xShape, c.p);
    const r = randomArray(base.y.length, 8);
    const dx = base.dxOf(r);
    assertGradient('maxPool2d dx', (xa) => dot(r, pool(xa, c.xShape, c.p).y), x, dx);
  });
}

test('maxPool2d: inference returns no workspace; clear errors', () => {
  const x = be.fromArray(randomArray(2 * 3 * 5 * 5, 3), [2, 3, 5, 5]);
  const { y, workspace } = be.maxPool2d(x, P([2, 2], [2, 2], [0, 0, 0, 0]), false);
  assert.equal(workspace, null);
  assert.deepEqual([...y.shape], [2, 3, 2, 2]);
  assert.throws(() => be.maxPool2d(x, P([6, 2], [1, 1], [0, 0, 0, 0]), false), refused('invalid-option', 'maxPool2d (height)', /maxPool2d \(height\).*output size/));
  assert.throws(() => be.maxPool2d(x, P([3, 3], [1, 1], [0, 0, 0, 0], [3, 3]), false), refused('invalid-option', 'maxPool2d (height)', /maxPool2d \(height\)/));
  assert.throws(() => be.maxPool2d(x, P([0, 2], [1, 1], [0, 0, 0, 0]), false), refused('invalid-option', 'maxPool2d kernel'));
  assert.throws(() => be.maxPool2d(x, P([2, 2], [1, 0], [0, 0, 0, 0]), false), refused('invalid-option', 'maxPool2d stride'));
  assert.throws(() => be.maxPool2d(x, P([2, 2], [1, 1], [0, 0, 0, -1]), false), refused('invalid-option', 'maxPool2d'));
  const train = be.maxPool2d(x, P([2, 2], [2, 2], [0, 0, 0, 0]), true);
  assert.ok(train.workspace);
  assert.throws(() => be.maxPool2dBackward(x, train.workspace!, [2, 3, 5, 5], P([2, 2], [2, 2], [0, 0, 0, 0])),
    refused('invalid-option', 'maxPool2dBackward dy (for x [2x3x5x5])'));
  assert.throws(() => be.maxPool2dBackward(train.y, x, [2, 3, 5, 5], P([2, 2], [2, 2], [0, 0, 0, 0])),
    refused('invalid-option', 'maxPool2dBackward workspace'));
  for (const t of [x, y, train.y, train.workspace!]) t.dispose();
});

// ---------------------------------------------------------------- 3-d max pooling
function pool3(x: Float64Array, xShape: Shape, p: Pool3dParams): { y: Float64Array; yShape: Shape; dxOf: (dy: Float64Array) => Float64Array } {
  const xt = be.fromArray(x, xShape);
  const { y, workspace } = be.maxPool3d(xt, p, true);
  xt.dispose();
  assert.ok(workspace);
  const yShape = [...y.shape];
  const yArr = y.toArray() as Float64Array;
  y.dispose();
  return {
    y: yArr,
    yShape,
    dxOf: (dy) => {
      const dyt = be.fromArray(dy, yShape);
      const dx = be.maxPool3dBackward(dyt, workspace, xShape, p);
      dyt.dispose();
      const a = dx.toArray() as Float64Array;
      dx.dispose();
      return a;
    },
  };
}

const P3 = (kernel: [number, number, number], stride: [number, number, number] = kernel,
  padding: [number, number, number, number, number, number] = [0, 0, 0, 0, 0, 0],
  dilation: [number, number, number] = [1, 1, 1]): Pool3dParams => ({ kernel, stride, padding, dilation });

test('maxPool3d: 2x2x2/2 and 1x2x2/1x2x2, hand-computed; the gradient goes to the winner', () => {
  const x = Float64Array.from({ length: 2 * 4 * 4 }, (_, i) => i); // [1, 1, 2, 4, 4]: x = d*16 + h*4 + w
  const full = pool3(x, [1, 1, 2, 4, 4], P3([2, 2, 2]));
  assert.deepEqual([...full.yShape], [1, 1, 1, 2, 2]);
  assert.deepEqual([...full.y], [21, 23, 29, 31]);
  const dx = full.dxOf(Float64Array.of(1, 2, 3, 4));
  assert.deepEqual([21, 23, 29, 31].map((k) => dx[k]), [1, 2, 3, 4]);
  assert.equal(dx.reduce((a, v) => a + v, 0), 10);
  const flat = pool3(x, [1, 1, 2, 4, 4], P3([1, 2, 2]));
  assert.deepEqual([...flat.yShape], [1, 1, 2, 2, 2]);
  assert.deepEqual([...flat.y], [5, 7, 13, 15, 21, 23, 29, 31]);
  // ties: the first maximal voxel in scan order (depth outer) wins
  const tie = pool3(new Float64Array(8).fill(3), [1, 1, 2, 2, 2], P3([2, 2, 2]));
  assert.deepEqual([...tie.dxOf(Float64Array.of(5))], [5, 0, 0, 0, 0, 0, 0, 0]);
});

test('maxPool3d: padded voxels never win; a window entirely in the padding gets the lowest value and no gradient', () => {
  const neg = Float64Array.from({ length: 8 }, (_, i) => -i - 1); // [1, 1, 2, 2, 2]
  const r = pool3(neg, [1, 1, 2, 2, 2], P3([1, 1, 1], [1, 1, 1], [1, 0, 0, 0, 0, 0]));
  assert.deepEqual([...r.yShape], [1, 1, 3, 2, 2]);
  const L = -Number.MAX_VALUE;
  assert.deepEqual([...r.y], [L, L, L, L, -1, -2, -3, -4, -5, -6, -7, -8]);
  assert.deepEqual([...r.dxOf(new Float64Array(12).fill(1))], new Array(8).fill(1));
});

const gradCases3d: { name: string; xShape: Shape; p: Pool3dParams }[] = [
  { name: '2x2x2 s2', xShape: [2, 2, 4, 5, 5], p: P3([2, 2, 2]) },
  { name: '1x2x2 s1x2x2', xShape: [1, 3, 3, 6, 5], p: P3([1, 2, 2]) },
  { name: '3x3x2 s1 asymmetric pad, dilation [2,1,1]', xShape: [1, 2, 6, 5, 4], p: P3([3, 3, 2], [1, 1, 1], [2, 1, 0, 1, 1, 1], [2, 1, 1]) },
];

for (const c of gradCases3d) {
  test(`maxPool3d gradient vs finite differences: ${c.name}`, () => {
    const x = randomArray(numel(c.xShape), 17);
    const base = pool3(x, c.xShape, c.p);
    const r = randomArray(base.y.length, 18);
    const dx = base.dxOf(r);
    assertGradient('maxPool3d dx', (xa) => dot(r, pool3(xa, c.xShape, c.p).y), x, dx);
  });
}

test('maxPool3d: inference returns no workspace; clear errors', () => {
  const x = be.fromArray(randomArray(2 * 3 * 4 * 5 * 5, 3), [2, 3, 4, 5, 5]);
  const { y, workspace } = be.maxPool3d(x, P3([2, 2, 2]), false);
  assert.equal(workspace, null);
  assert.deepEqual([...y.shape], [2, 3, 2, 2, 2]);
  assert.throws(() => be.maxPool3d(x, P3([5, 2, 2]), false), refused('invalid-option', 'maxPool3d (depth)', /output size/));
  assert.throws(() => be.maxPool3d(x, P3([0, 2, 2]), false), refused('invalid-option', 'maxPool3d kernel'));
  assert.throws(() => be.maxPool3d(x, P3([2, 2, 2], [2, 2, 0]), false), refused('invalid-option', 'maxPool3d stride'));
  assert.throws(() => be.maxPool3d(x, P3([2, 2, 2], [2, 2, 2], [0, 0, 0, 0, 0, -1]), false), refused('invalid-option', 'maxPool3d'));
  assert.throws(() => be.maxPool3d(x, { ...P3([2, 2, 2]), kernel: [2, 2] as unknown as Pool3dParams['kernel'] }, false),
    refused('invalid-option', 'maxPool3d kernel'));
  const flat = be.fromArray(new Float64Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
  assert.throws(() => be.maxPool3d(flat, P3([1, 2, 2]), false), refused('invalid-option', 'maxPool3d input', /5-d/));
  const train = be.maxPool3d(x, P3([2, 2, 2]), true);
  assert.ok(train.workspace);
  assert.throws(() => be.maxPool3dBackward(x, train.workspace!, [2, 3, 4, 5, 5], P3([2, 2, 2])),
    refused('invalid-option', 'maxPool3dBackward dy (for x [2x3x4x5x5])'));
  assert.throws(() => be.maxPool3dBackward(train.y, x, [2, 3, 4, 5, 5], P3([2, 2, 2])),
    refused('invalid-option', 'maxPool3dBackward workspace'));
  for (const t of [x, y, flat, train.y, train.workspace!]) t.dispose();
});
