import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Conv3dParams, ConvParams } from '../src/backend/backend.js';
import { createReferenceBackend, transposeOI } from '../src/backend/reference/index.js';
import { type Shape, type Tensor, numel } from '../src/tensor/tensor.js';
import { assertClose, assertGradient, dot, randomArray, randomAwayFromZero } from './helpers/gradcheck.js';
import { refused } from './helpers/errors.js';

const be = createReferenceBackend('float64');

/** Run a tensor-producing op on host arrays and return the result as a host array (disposing everything). */
function host(t: Tensor): Float64Array {
  const a = t.toArray();
  t.dispose();
  assert.ok(a instanceof Float64Array);
  return a;
}
function withTensor<R>(data: Float64Array, shape: Shape, f: (t: Tensor) => R): R {
  const t = be.fromArray(data, shape);
  try {
    return f(t);
  } finally {
    t.dispose();
  }
}

interface Case {
  name: string;
  xShape: Shape;
  wShape: Shape;
  p: ConvParams;
}

const cases: Case[] = [
  { name: 'k3 pad1', xShape: [2, 3, 7, 7], wShape: [2, 3, 3, 3], p: { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] } },
  { name: 'k4 even, asymmetric pad', xShape: [2, 3, 7, 7], wShape: [2, 3, 4, 4], p: { stride: [1, 1], padding: [1, 1, 2, 2], dilation: [1, 1] } },
  { name: 'k3 stride2', xShape: [2, 3, 7, 7], wShape: [4, 3, 3, 3], p: { stride: [2, 2], padding: [1, 0, 0, 1], dilation: [1, 1] } },
  { name: 'k3 dilation2', xShape: [2, 3, 7, 7], wShape: [2, 3, 3, 3], p: { stride: [1, 1], padding: [2, 2, 2, 2], dilation: [2, 2] } },
  { name: 'k4x3 stride2x1 dilation1x2 no pad', xShape: [2, 3, 7, 8], wShape: [3, 3, 4, 3], p: { stride: [2, 1], padding: [0, 0, 0, 0], dilation: [1, 2] } },
  { name: 'k4 stride2 dilation2 pad', xShape: [1, 2, 9, 9], wShape: [2, 2, 4, 4], p: { stride: [2, 2], padding: [3, 2, 2, 3], dilation: [2, 2] } },
];

function convOutShape(xShape: Shape, wShape: Shape, p: ConvParams): number[] {
  const o = (size: number, k: number, s: number, d: number, a: number, b: number) =>
    Math.floor((size + a + b - d * (k - 1) - 1) / s) + 1;
  return [xShape[0]!, wShape[0]!,
    o(xShape[2]!, wShape[2]!, p.stride[0], p.dilation[0], p.padding[0], p.padding[2]),
    o(xShape[3]!, wShape[3]!, p.stride[1], p.dilation[1], p.padding[1], p.padding[3])];
}

function deconvOutShape(xShape: Shape, wShape: Shape, p: ConvParams): number[] {
  const o = (size: number, k: number, s: number, d: number, a: number, b: number) => (size - 1) * s - a - b + d * (k - 1) + 1;
  return [xShape[0]!, wShape[0]!,
    o(xShape[2]!, wShape[2]!, p.stride[0], p.dilation[0], p.padding[0], p.padding[2]),
    o(xShape[3]!, wShape[3]!, p.stride[1], p.dilation[1], p.padding[1], p.padding[3])];
}

test('conv2d: 3x3 on a 4x4 input, hand-computed (valid, padded, strided, with bias)', () => {
  const x = Float64Array.from({ length: 16 }, (_, i) => i); // rows 0..3 / 4..7 / 8..11 / 12..15
  const ones = new Float64Array(9).fill(1);
  const valid = withTensor(x, [1, 1, 4, 4], (t) =>
    host(be.conv2d(t, ones, [1, 1, 3, 3], Float64Array.of(0.5), { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] })));
  assert.deepEqual([...valid], [45.5, 54.5, 81.5, 90.5]);

  // a non-symmetric kernel checks that it is cross-correlation (no flip): only the top-left tap is 1
  const tl = Float64Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0);
  const shifted = withTensor(x, [1, 1, 4, 4], (t) =>
    host(be.conv2d(t, tl, [1, 1, 3, 3], null, { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] })));
  assert.deepEqual([...shifted], [0, 0, 0, 0, 0, 0, 1, 2, 0, 4, 5, 6, 0, 8, 9, 10]);

  // stride 2, padding 1: windows centred on (0,0), (0,2), (2,0), (2,2)
  const strided = withTensor(x, [1, 1, 4, 4], (t) => {
    const y = be.conv2d(t, ones, [1, 1, 3, 3], null, { stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] });
    assert.deepEqual([...y.shape], [1, 1, 2, 2]);
    return host(y);
  });
  assert.deepEqual([...strided], [0 + 1 + 4 + 5, 1 + 2 + 3 + 5 + 6 + 7, 4 + 5 + 8 + 9 + 12 + 13, 5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15]);

  // dilation 2 on a 4x4 with padding [0,0,1,1]: taps rows 0,2,4(pad) x cols 0,2,4(pad) -> x[0]+x[2]+x[8]+x[10] at (0,0)
  const dil = withTensor(x, [1, 1, 4, 4], (t) => {
    const y = be.conv2d(t, ones, [1, 1, 3, 3], null, { stride: [1, 1], padding: [0, 0, 1, 1], dilation: [2, 2] });
    assert.deepEqual([...y.shape], [1, 1, 1, 1]);
    return host(y);
  });
  assert.deepEqual([...dil], [0 + 2 + 8 + 10]);
});

test('conv2d: two input channels and two output channels with bias and fused relu', () => {
  // x: channel 0 all 1, channel 1 all 2 (2x2); 1x1 kernels
  const x = Float64Array.of(1, 1, 1, 1, 2, 2, 2, 2);
  const w = Float64Array.of(1, 1, /* co=1: */ -1, 0.25); // [2,2,1,1]
  const b = Float64Array.of(0, 0.25);
  const p = { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] } as const;
  const y = withTensor(x, [1, 2, 2, 2], (t) => host(be.conv2d(t, w, [2, 2, 1, 1], b, p)));
  assert.deepEqual([...y], [3, 3, 3, 3, -0.25, -0.25, -0.25, -0.25]);
  const yr = withTensor(x, [1, 2, 2, 2], (t) => host(be.conv2d(t, w, [2, 2, 1, 1], b, { ...p, relu: true })));
  assert.deepEqual([...yr], [3, 3, 3, 3, 0, 0, 0, 0]);
});

for (const c of cases) {
  test(`conv2d gradients vs finite differences: ${c.name}`, () => {
    const x = randomArray(numel(c.xShape), 1);
    const w = randomArray(numel(c.wShape), 2);
    const b = randomArray(c.wShape[0]!, 3);
    const yShape = convOutShape(c.xShape, c.wShape, c.p);
    const r = randomArray(numel(yShape), 4);
    const fwd = (xa: Float64Array, wa: Float64Array, ba: Float64Array | null) =>
      withTensor(xa, c.xShape, (t) => {
        const y = be.conv2d(t, wa, c.wShape, ba, c.p);
        assert.deepEqual([...y.shape], yShape);
        return host(y);
      });
    const dy = be.fromArray(r, yShape);
    const dx = host(be.conv2dBackwardData(dy, w, c.wShape, c.xShape, c.p));
    const { dw, db } = withTensor(x, c.xShape, (t) => be.conv2dBackwardWeights(t, dy, c.wShape, c.p, true));
    const noBias = withTensor(x, c.xShape, (t) => be.conv2dBackwardWeights(t, dy, c.wShape, c.p, false));
    dy.dispose();
    assert.equal(noBias.db, null);
    assertClose(noBias.dw, dw, 0, 0, 'dw without bias');

    assertGradient('dx', (xa) => dot(r, fwd(xa, w, b)), x, dx);
    assertGradient('dw', (wa) => dot(r, fwd(x, wa, b)), w, dw);
    assert.ok(db instanceof Float64Array);
    assertGradient('db', (ba) => dot(r, fwd(x, w, ba)), b, db);
  });
}

test('conv2d with fused relu: reluBackward on y then the conv gradients match finite differences', () => {
  const c = cases[1]!;
  const x = randomArray(numel(c.xShape), 11);
  const w = randomArray(numel(c.wShape), 12);
  const b = randomArray(c.wShape[0]!, 13);
  const yShape = convOutShape(c.xShape, c.wShape, c.p);
  const r = randomArray(numel(yShape), 14);
  const p = { ...c.p, relu: true };
  const fwd = (xa: Float64Array, wa: Float64Array) => withTensor(xa, c.xShape, (t) => host(be.conv2d(t, wa, c.wShape, b, p)));
  const yArr = fwd(x, w);
  assert.ok(yArr.some((v) => v === 0) && yArr.some((v) => v > 0), 'the relu must be active somewhere and clip somewhere');
  const y = be.fromArray(yArr, yShape);
  const rT = be.fromArray(r, yShape);
  const dz = be.reluBackward(y, rT);
  const dx = host(be.conv2dBackwardData(dz, w, c.wShape, c.xShape, c.p));
  const { dw } = withTensor(x, c.xShape, (t) => be.conv2dBackwardWeights(t, dz, c.wShape, c.p, false));
  for (const t of [y, rT, dz]) t.dispose();
  assertGradient('dx (fused relu)', (xa) => dot(r, fwd(xa, w)), x, dx);
  assertGradient('dw (fused relu)', (wa) => dot(r, fwd(x, wa)), w, dw);
});

for (const c of cases) {
  // the deconv of these cases maps the conv's output back to its input: x [N, wShape[1]...] -> [N, wShape[0]...]
  test(`deconv2d gradients vs finite differences: ${c.name}`, () => {
    // use the conv's output extent as the deconv's input so the sizes are those of a real decoder
    const convOut = convOutShape(c.xShape, c.wShape, c.p);
    const xShape = [convOut[0]!, c.wShape[1]!, convOut[2]!, convOut[3]!];
    const wShape = c.wShape; // deconv: [Cout, Cin, kh, kw] = deconv maps wShape[1] -> wShape[0] channels
    const yShape = deconvOutShape(xShape, wShape, c.p);
    const x = randomArray(numel(xShape), 21);
    const w = randomArray(numel(wShape), 22);
    const b = randomArray(wShape[0]!, 23);
    const r = randomArray(numel(yShape), 24);
    const fwd = (xa: Float64Array, wa: Float64Array, ba: Float64Array | null) =>
      withTensor(xa, xShape, (t) => {
        const y = be.deconv2d(t, wa, wShape, ba, c.p);
        assert.deepEqual([...y.shape], yShape);
        return host(y);
      });
    const dy = be.fromArray(r, yShape);
    const dx = host(be.deconv2dBackwardData(dy, w, wShape, xShape, c.p));
    const { dw, db } = withTensor(x, xShape, (t) => be.deconv2dBackwardWeights(t, dy, wShape, c.p, true));
    dy.dispose();
    assertGradient('dx', (xa) => dot(r, fwd(xa, w, b)), x, dx);
    assertGradient('dw', (wa) => dot(r, fwd(x, wa, b)), w, dw);
    assert.ok(db);
    assertGradient('db', (ba) => dot(r, fwd(x, w, ba)), b, db);
  });

  test(`deconv2d is the adjoint of conv2d: ${c.name}`, () => {
    // conv2d: u [N, Cin, H, W] -> [N, Cout, OH, OW] with w [Cout, Cin]; its adjoint is the deconv from Cout back to
    // Cin channels, whose (oneDNN-convention) weights are transposeOI(w) [Cin, Cout]. With a stride the conv drops
    // the remainder rows, so take u with the size the deconv produces (the smallest input giving this conv output).
    const w = randomArray(numel(c.wShape), 32);
    const wT = transposeOI(w, c.wShape);
    const wTShape = [c.wShape[1]!, c.wShape[0]!, c.wShape[2]!, c.wShape[3]!];
    const yShape = convOutShape(c.xShape, c.wShape, c.p);
    const uShape = deconvOutShape(yShape, wTShape, c.p);
    assert.deepEqual(convOutShape(uShape, c.wShape, c.p), yShape);
    const u = randomArray(numel(uShape), 31);
    const v = randomArray(numel(yShape), 33);
    const convU = withTensor(u, uShape, (t) => host(be.conv2d(t, w, c.wShape, null, c.p)));
    const deconvV = withTensor(v, yShape, (t) => {
      const y = be.deconv2d(t, wT, wTShape, null, c.p);
      assert.deepEqual([...y.shape], uShape);
      return host(y);
    });
    const lhs = dot(convU, v);
    const rhs = dot(u, deconvV);
    assert.ok(Math.abs(lhs - rhs) <= 1e-12 * Math.max(1, Math.abs(lhs)), `<conv(u), v> = ${lhs} but <u, deconv(v)> = ${rhs}`);
    // and both are literally the conv's data gradient / the conv itself
    const bwd = withTensor(v, yShape, (t) => host(be.conv2dBackwardData(t, w, c.wShape, uShape, c.p)));
    assertClose(deconvV, bwd, 1e-13, 1e-12, 'deconv2d(v, wT) vs conv2dBackwardData(v, w)');
    const dd = withTensor(u, uShape, (t) => host(be.deconv2dBackwardData(t, wT, wTShape, yShape, c.p)));
    assertClose(dd, convU, 1e-13, 1e-12, 'deconv2dBackwardData(u, wT) vs conv2d(u, w)');
  });
}

test('deconv2d: hand-computed stride-2 2x2 upsampling kernel with bias and cropping', () => {
  // x [1,1,2,2] = [[1,2],[3,4]], w [1,1,2,2] = [[1,10],[100,1000]], stride 2: each pixel stamps x*w into its 2x2 block
  const x = Float64Array.of(1, 2, 3, 4);
  const w = Float64Array.of(1, 10, 100, 1000);
  const y = withTensor(x, [1, 1, 2, 2], (t) =>
    host(be.deconv2d(t, w, [1, 1, 2, 2], Float64Array.of(0.5), { stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] })));
  assert.deepEqual([...y], [
    1.5, 10.5, 2.5, 20.5,
    100.5, 1000.5, 200.5, 2000.5,
    3.5, 30.5, 4.5, 40.5,
    300.5, 3000.5, 400.5, 4000.5,
  ]);
  // padding [1,1,0,0] crops the first row and column: output (2-1)*2 - 1 + 1 + 1 = 3
  const yc = withTensor(x, [1, 1, 2, 2], (t) => {
    const r = be.deconv2d(t, w, [1, 1, 2, 2], null, { stride: [2, 2], padding: [1, 1, 0, 0], dilation: [1, 1] });
    assert.deepEqual([...r.shape], [1, 1, 3, 3]);
    return host(r);
  });
  assert.deepEqual([...yc], [1000, 200, 2000, 30, 4, 40, 3000, 400, 4000]);
});

test('conv2d / deconv2d: clear errors on bad shapes and parameters', () => {
  const p: ConvParams = { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] };
  const x = be.fromArray(new Float64Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
  const w = new Float64Array(2 * 3 * 3 * 3);
  assert.throws(() => be.conv2d(x, w, [2, 4, 3, 3], null, p), refused('invalid-option', 'conv2d', /conv2d.*3 channels.*\[2x4x3x3\]/));
  assert.throws(() => be.conv2d(x, w.subarray(1), [2, 3, 3, 3], null, p), refused('invalid-option', 'conv2d weights'));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], new Float64Array(3), p), refused('invalid-option', 'conv2d bias'));
  assert.throws(() => be.conv2d(x, new Float64Array(2 * 3 * 6 * 6), [2, 3, 6, 6], null, p), refused('invalid-option', 'conv2d (height)', /conv2d \(height\).*output size/));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, { ...p, dilation: [3, 3] }), refused('invalid-option', 'conv2d (height)', /conv2d \(height\)/));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, { ...p, stride: [0, 1] }), refused('invalid-option', 'conv2d stride'));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, { ...p, padding: [-1, 0, 0, 0] }), refused('invalid-option', 'conv2d', /conv2d: padding/));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, { ...p, padding: [1, 1] as unknown as ConvParams['padding'] }), refused('invalid-option', 'conv2d', /padding/));
  const bad = be.fromArray(new Float64Array(2 * 2 * 3 * 3), [2, 2, 3, 3]);
  assert.throws(() => be.conv2dBackwardData(bad, w, [2, 3, 3, 3], [2, 3, 5, 6], p), refused('invalid-option', 'conv2dBackwardData dy (for x [2x3x5x6])'));
  const wrong = be.fromArray(new Float64Array(2 * 2 * 4 * 3), [2, 2, 4, 3]);
  assert.throws(() => be.conv2dBackwardData(wrong, w, [2, 3, 3, 3], [2, 3, 5, 5], p), refused('invalid-option', 'conv2dBackwardData dy (for x [2x3x5x5])'));
  assert.throws(() => be.conv2dBackwardWeights(x, wrong, [2, 3, 3, 3], p, true), refused('invalid-option', 'conv2dBackwardWeights dy (for x [2x3x5x5])'));
  const flat = be.fromArray(new Float64Array(6), [2, 3]);
  assert.throws(() => be.conv2d(flat, w, [2, 3, 3, 3], null, p), refused('invalid-option', 'conv2d input'));
  assert.throws(() => be.deconv2d(x, w, [3, 2, 3, 3], null, p), refused('invalid-option', 'deconv2d'));
  assert.throws(() => be.deconv2d(x, new Float64Array(3 * 3), [1, 3, 1, 1], null, { ...p, padding: [3, 0, 3, 0] }), refused('invalid-option', 'deconv2d (height)'));
  assert.throws(() => be.deconv2dBackwardData(wrong, w, [2, 3, 3, 3], [2, 3, 5, 5], p), refused('invalid-option', 'deconv2dBackwardData dy (for x [2x3x5x5])'));
  for (const t of [x, bad, wrong, flat]) t.dispose();
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, p), refused('invalid-option', 'tensor [2x3x5x5]'));
});

test('conv2d in float32 matches float64 to float32 rounding', () => {
  const be32 = createReferenceBackend('float32');
  const c = cases[3]!;
  const x = randomAwayFromZero(numel(c.xShape), 41);
  const w = randomArray(numel(c.wShape), 42);
  const y64 = withTensor(x, c.xShape, (t) => host(be.conv2d(t, w, c.wShape, null, c.p)));
  const t32 = be32.fromArray(Float32Array.from(x), c.xShape);
  const y32 = be32.conv2d(t32, Float32Array.from(w), c.wShape, null, c.p);
  const a32 = y32.toArray();
  assert.ok(a32 instanceof Float32Array);
  assertClose(a32, y64, 1e-5, 1e-5, 'float32 vs float64 conv');
  const { dw } = be32.conv2dBackwardWeights(t32, y32, c.wShape, c.p, false);
  assert.ok(dw instanceof Float32Array);
});

// ---------------------------------------------------------------- 3-d convolution
interface Case3d {
  name: string;
  xShape: Shape;
  wShape: Shape;
  p: Conv3dParams;
}

const cases3d: Case3d[] = [
  { name: '1x3x3 (anisotropic), pad 0/1/1', xShape: [2, 2, 3, 5, 4], wShape: [3, 2, 1, 3, 3],
    p: { stride: [1, 1, 1], padding: [0, 1, 1, 0, 1, 1], dilation: [1, 1, 1] } },
  { name: '3x3x3 same', xShape: [1, 2, 4, 4, 5], wShape: [2, 2, 3, 3, 3],
    p: { stride: [1, 1, 1], padding: [1, 1, 1, 1, 1, 1], dilation: [1, 1, 1] } },
  { name: '2x3x2 even, asymmetric pad, depth dilation 2, stride [1,2,1]', xShape: [1, 2, 5, 6, 4], wShape: [2, 2, 2, 3, 2],
    p: { stride: [1, 2, 1], padding: [2, 0, 1, 0, 1, 0], dilation: [2, 1, 1] } },
];

function conv3dOutShape(xShape: Shape, wShape: Shape, p: Conv3dParams): number[] {
  const o = (a: number) => Math.floor((xShape[2 + a]! + p.padding[a]! + p.padding[3 + a]! -
    p.dilation[a]! * (wShape[2 + a]! - 1) - 1) / p.stride[a]!) + 1;
  return [xShape[0]!, wShape[0]!, o(0), o(1), o(2)];
}

for (const c of cases3d) {
  test(`conv3d gradients vs finite differences: ${c.name}`, () => {
    const x = randomArray(numel(c.xShape), 11);
    const w = randomArray(numel(c.wShape), 12);
    const b = randomArray(c.wShape[0]!, 13);
    const yShape = conv3dOutShape(c.xShape, c.wShape, c.p);
    const r = randomArray(numel(yShape), 14);
    const fwd = (xa: Float64Array, wa: Float64Array, ba: Float64Array | null) =>
      withTensor(xa, c.xShape, (t) => {
        const y = be.conv3d(t, wa, c.wShape, ba, c.p);
        assert.deepEqual([...y.shape], yShape);
        return host(y);
      });
    const dy = be.fromArray(r, yShape);
    const dx = host(be.conv3dBackwardData(dy, w, c.wShape, c.xShape, c.p));
    const { dw, db } = withTensor(x, c.xShape, (t) => be.conv3dBackwardWeights(t, dy, c.wShape, c.p, true));
    const noBias = withTensor(x, c.xShape, (t) => be.conv3dBackwardWeights(t, dy, c.wShape, c.p, false));
    dy.dispose();
    assert.equal(noBias.db, null);
    assertClose(noBias.dw, dw, 0, 0, 'dw without bias');

    assertGradient('dx', (xa) => dot(r, fwd(xa, w, b)), x, dx);
    assertGradient('dw', (wa) => dot(r, fwd(x, wa, b)), w, dw);
    assert.ok(db instanceof Float64Array);
    assertGradient('db', (ba) => dot(r, fwd(x, w, ba)), b, db);
  });
}

test('conv3d with a 1 x kh x kw kernel is conv2d on every depth slice (bias and fused relu included)', () => {
  const [N, C, D, H, W] = [2, 3, 4, 5, 6];
  const x = randomArray(N * C * D * H * W, 21);
  const w = randomArray(2 * C * 3 * 3, 22);
  const b = randomArray(2, 23);
  const y3 = withTensor(x, [N, C, D, H, W], (t) => host(be.conv3d(t, w, [2, C, 1, 3, 3], b,
    { stride: [1, 1, 1], padding: [0, 1, 0, 0, 1, 1], dilation: [1, 1, 1], relu: true })));
  const [OH, OW] = [H, W - 1]; // pad top 1 + bottom 1, left 0 + right 1, 3x3 taps
  for (let n = 0; n < N; n++) {
    for (let d = 0; d < D; d++) {
      const slice = new Float64Array(C * H * W);
      for (let c = 0; c < C; c++) slice.set(x.subarray(((n * C + c) * D + d) * H * W, ((n * C + c) * D + d + 1) * H * W), c * H * W);
      const y2 = withTensor(slice, [1, C, H, W], (t) => host(be.conv2d(t, w, [2, C, 3, 3], b,
        { stride: [1, 1], padding: [1, 0, 1, 1], dilation: [1, 1], relu: true })));
      for (let co = 0; co < 2; co++) {
        const got = y3.subarray(((n * 2 + co) * D + d) * OH * OW, ((n * 2 + co) * D + d + 1) * OH * OW);
        assertClose(got, y2.subarray(co * OH * OW, (co + 1) * OH * OW), 1e-12, 1e-12, `n ${n} d ${d} co ${co}`);
      }
    }
  }
});

test('conv3d: one tap at the front-top-left of a 2x2x2 kernel shifts the volume (cross-correlation, no flip)', () => {
  const x = Float64Array.from({ length: 8 }, (_, i) => i + 1); // [1, 1, 2, 2, 2]
  const w = Float64Array.of(1, 0, 0, 0, 0, 0, 0, 0);
  const y = withTensor(x, [1, 1, 2, 2, 2], (t) => host(be.conv3d(t, w, [1, 1, 2, 2, 2], null,
    { stride: [1, 1, 1], padding: [1, 1, 1, 0, 0, 0], dilation: [1, 1, 1] })));
  // y[d, h, w] = x[d - 1, h - 1, w - 1]: only the last voxel of the 2x2x2 output sees x[0, 0, 0]
  assert.deepEqual([...y], [0, 0, 0, 0, 0, 0, 0, 1]);
});

test('conv3d: clear errors on bad shapes and parameters', () => {
  const p: Conv3dParams = { stride: [1, 1, 1], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
  const x = be.fromArray(new Float64Array(2 * 3 * 4 * 5 * 5), [2, 3, 4, 5, 5]);
  const w = new Float64Array(2 * 3 * 27);
  assert.throws(() => be.conv3d(x, w, [2, 4, 3, 3, 3], null, p), refused('invalid-option', 'conv3d', /3 channels.*\[2x4x3x3x3\]/));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3], null, p), refused('invalid-option', 'conv3d weights', /5-d/));
  assert.throws(() => be.conv3d(x, w.subarray(1), [2, 3, 3, 3, 3], null, p), refused('invalid-option', 'conv3d weights'));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3, 3], new Float64Array(3), p), refused('invalid-option', 'conv3d bias'));
  assert.throws(() => be.conv3d(x, new Float64Array(2 * 3 * 75), [2, 3, 3, 5, 5], null, { ...p, dilation: [2, 1, 1] }),
    refused('invalid-option', 'conv3d (depth)', /output size/));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3, 3], null, { ...p, stride: [1, 0, 1] }), refused('invalid-option', 'conv3d stride'));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3, 3], null, { ...p, stride: [1, 1] as unknown as Conv3dParams['stride'] }),
    refused('invalid-option', 'conv3d stride'));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3, 3], null, { ...p, padding: [0, 0, 0, 0] as unknown as Conv3dParams['padding'] }),
    refused('invalid-option', 'conv3d', /front, top, left, back, bottom, right/));
  assert.throws(() => be.conv3d(x, w, [2, 3, 3, 3, 3], null, { ...p, dilation: [1, 1, 0] }), refused('invalid-option', 'conv3d dilation'));
  const flat = be.fromArray(new Float64Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
  assert.throws(() => be.conv3d(flat, w, [2, 3, 3, 3, 3], null, p), refused('invalid-option', 'conv3d input', /5-d/));
  assert.throws(() => be.conv2d(x, w, [2, 3, 3, 3], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] }),
    refused('invalid-option', 'conv2d input', /4-d/));
  const wrong = be.fromArray(new Float64Array(2 * 2 * 2 * 3 * 2), [2, 2, 2, 3, 2]);
  assert.throws(() => be.conv3dBackwardData(wrong, w, [2, 3, 3, 3, 3], [2, 3, 4, 5, 5], p),
    refused('invalid-option', 'conv3dBackwardData dy (for x [2x3x4x5x5])'));
  assert.throws(() => be.conv3dBackwardWeights(x, wrong, [2, 3, 3, 3, 3], p, true),
    refused('invalid-option', 'conv3dBackwardWeights dy (for x [2x3x4x5x5])'));
  for (const t of [x, flat, wrong]) t.dispose();
});

const deconvCases3d: Case3d[] = [
  { name: '1x2x2 stride 1x2x2 (in-plane up-sampling)', xShape: [2, 2, 2, 3, 3], wShape: [3, 2, 1, 2, 2],
    p: { stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] } },
  { name: '3x3x2 stride 2, asymmetric pad, dilation [1,1,2]', xShape: [1, 2, 3, 3, 2], wShape: [2, 2, 3, 3, 2],
    p: { stride: [2, 2, 2], padding: [1, 0, 1, 0, 1, 0], dilation: [1, 1, 2] } },
];

for (const c of deconvCases3d) {
  test(`deconv3d gradients vs finite differences, and the adjoint of conv3d: ${c.name}`, () => {
    const x = randomArray(numel(c.xShape), 21);
    const w = randomArray(numel(c.wShape), 22);
    const b = randomArray(c.wShape[0]!, 23);
    const fwd = (xa: Float64Array, wa: Float64Array, ba: Float64Array | null) =>
      withTensor(xa, c.xShape, (t) => host(be.deconv3d(t, wa, c.wShape, ba, c.p)));
    const y0 = withTensor(x, c.xShape, (t) => be.deconv3d(t, w, c.wShape, b, c.p));
    const yShape = [...y0.shape];
    y0.dispose();
    const r = randomArray(numel(yShape), 24);
    const dy = be.fromArray(r, yShape);
    const dx = host(be.deconv3dBackwardData(dy, w, c.wShape, c.xShape, c.p));
    const { dw, db } = withTensor(x, c.xShape, (t) => be.deconv3dBackwardWeights(t, dy, c.wShape, c.p, true));
    dy.dispose();
    assertGradient('dx', (xa) => dot(r, fwd(xa, w, b)), x, dx);
    assertGradient('dw', (wa) => dot(r, fwd(x, wa, b)), w, dw);
    assert.ok(db instanceof Float64Array);
    assertGradient('db', (ba) => dot(r, fwd(x, w, ba)), b, db);
    // <conv3d(u, wT), x> == <u, deconv3d(x, w)>: the transposed convolution is conv3d's adjoint.
    const wT = Float64Array.from(w);
    const [co, ci, ...k] = c.wShape as number[];
    for (let a = 0; a < co!; a++) for (let i = 0; i < ci!; i++) for (let q = 0; q < numel(k); q++) {
      wT[(i * co! + a) * numel(k) + q] = w[(a * ci! + i) * numel(k) + q]!;
    }
    const cu = withTensor(r, yShape, (t) => host(be.conv3d(t, wT, [ci!, co!, ...k], null, c.p)));
    assertClose([dot(cu, x)], [dot(r, fwd(x, w, null))], 1e-9, 1e-9, 'adjoint');
  });
}
