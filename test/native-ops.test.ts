/**
 * oneDNN backend (float32) vs the reference backend (float64 ground truth), op by op: forward, input gradients,
 * weight and bias gradients, on small odd shapes (even kernels with asymmetric padding, stride 2, dilation 2,
 * batch 2, channel counts that trigger oneDNN's blocked layouts), plus a chained mini-network whose activations
 * stay in oneDNN's layouts between layers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, Conv3dParams, ConvParams, LrnParams, Pool3dParams, PoolParams } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { loadOneDnnBackend } from '../src/backend/onednn/index.js';
import { type Shape, numel } from '../src/tensor/tensor.js';
import { randomFloat32 } from './helpers/gradcheck.js';
import { compareBackends, host, relErr, type Outputs } from './helpers/backend-compare.js';

const ref = createReferenceBackend('float64');
// The set-up (make test) always builds the addon: a missing addon fails these tests instead of skipping them.
const nat: Backend | null = loadOneDnnBackend({ precision: 'float32' });
const TOL = 1e-4;

// ---------------------------------------------------------------- helpers
const rnd = randomFloat32;
const compare = (name: string, fn: (be: Backend) => Outputs, tol = TOL): void => compareBackends(name, ref, nat!, fn, tol);

// ---------------------------------------------------------------- convolution
interface ConvCase { name: string; x: Shape; w: Shape; p: ConvParams; bias: boolean }
const convCases: ConvCase[] = [
  { name: '3x3 same, bias, batch 2', x: [2, 3, 9, 11], w: [5, 3, 3, 3], p: { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] }, bias: true },
  { name: 'even 4x4 kernel, asymmetric pad', x: [1, 3, 8, 7], w: [4, 3, 4, 4], p: { stride: [1, 1], padding: [1, 1, 2, 2], dilation: [1, 1] }, bias: false },
  { name: 'stride 2, odd sizes', x: [2, 4, 11, 9], w: [6, 4, 3, 3], p: { stride: [2, 2], padding: [1, 0, 1, 2], dilation: [1, 1] }, bias: true },
  { name: 'dilation 2', x: [2, 2, 9, 8], w: [3, 2, 3, 3], p: { stride: [1, 1], padding: [2, 2, 2, 2], dilation: [2, 2] }, bias: true },
  { name: 'blocked channels 20 -> 17', x: [1, 20, 7, 6], w: [17, 20, 3, 3], p: { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] }, bias: true },
  { name: '1 -> 16, 5x5 (first layer)', x: [2, 1, 12, 10], w: [16, 1, 5, 5], p: { stride: [1, 1], padding: [2, 2, 2, 2], dilation: [1, 1] }, bias: true },
  { name: '1x1, 32 -> 2', x: [1, 32, 5, 7], w: [2, 32, 1, 1], p: { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] }, bias: true },
  { name: 'stride 2 + dilation 2, 2x3 kernel', x: [1, 16, 13, 12], w: [16, 16, 2, 3], p: { stride: [2, 1], padding: [0, 2, 1, 1], dilation: [2, 2] }, bias: false },
];

for (const c of convCases) {
  test(`conv2d: ${c.name}`, () => {
    const wN = numel(c.w);
    const xd = rnd(numel(c.x), 1);
    const w = rnd(wN, 2, -0.5, 0.5);
    const b = c.bias ? rnd(c.w[0]!, 3) : null;
    for (const relu of [false, true]) {
      compare(`conv2d ${c.name} relu=${relu}`, (be) => {
        const x = be.fromArray(xd, c.x);
        const y = be.conv2d(x, w, c.w, b, { ...c.p, relu });
        x.dispose();
        return { y: host(y) };
      });
    }
    compare(`conv2d backward ${c.name}`, (be) => {
      const x = be.fromArray(xd, c.x);
      const y = be.conv2d(x, w, c.w, b, c.p);
      const dy = be.fromArray(rnd(y.size, 4), y.shape);
      const dx = be.conv2dBackwardData(dy, w, c.w, c.x, c.p);
      const { dw, db } = be.conv2dBackwardWeights(x, dy, c.w, c.p, c.bias);
      const out = { y: host(y), dx: host(dx), dw, db };
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

test('conv2d + fused ReLU backward through reluBackward(y)', () => {
  const c = convCases[4]!;
  const w = rnd(numel(c.w), 5, -0.3, 0.3);
  const b = rnd(c.w[0]!, 6);
  compare('conv relu chain', (be) => {
    const x = be.fromArray(rnd(numel(c.x), 7), c.x);
    const y = be.conv2d(x, w, c.w, b, { ...c.p, relu: true });
    const dy = be.fromArray(rnd(y.size, 8), y.shape);
    const dz = be.reluBackward(y, dy);
    const dx = be.conv2dBackwardData(dz, w, c.w, c.x, c.p);
    const { dw, db } = be.conv2dBackwardWeights(x, dz, c.w, c.p, true);
    const out = { y: host(y), dz: host(dz), dx: host(dx), dw, db };
    x.dispose();
    dy.dispose();
    return out;
  });
});

// ---------------------------------------------------------------- 3-d convolution
interface Conv3dCase { name: string; x: Shape; w: Shape; p: Conv3dParams; bias: boolean }
const conv3dCases: Conv3dCase[] = [
  { name: '1x3x3, pad 0/1/1, bias, batch 2', x: [2, 3, 4, 9, 7], w: [5, 3, 1, 3, 3], p: { stride: [1, 1, 1], padding: [0, 1, 1, 0, 1, 1], dilation: [1, 1, 1] }, bias: true },
  { name: '3x3x3 same, blocked channels 16 -> 20', x: [1, 16, 5, 6, 7], w: [20, 16, 3, 3, 3], p: { stride: [1, 1, 1], padding: [1, 1, 1, 1, 1, 1], dilation: [1, 1, 1] }, bias: true },
  { name: '3x3x3 valid, 1 -> 8 (first layer)', x: [2, 1, 6, 8, 8], w: [8, 1, 3, 3, 3], p: { stride: [1, 1, 1], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] }, bias: false },
  { name: '2x3x3 even depth, asymmetric pad, dilation [1,2,2]', x: [1, 4, 5, 9, 8], w: [6, 4, 2, 3, 3], p: { stride: [1, 1, 1], padding: [1, 2, 2, 0, 2, 1], dilation: [1, 2, 2] }, bias: true },
];

for (const c of conv3dCases) {
  test(`conv3d: ${c.name}`, () => {
    const xd = rnd(numel(c.x), 31);
    const w = rnd(numel(c.w), 32, -0.5, 0.5);
    const b = c.bias ? rnd(c.w[0]!, 33) : null;
    for (const relu of [false, true]) {
      compare(`conv3d ${c.name} relu=${relu}`, (be) => {
        const x = be.fromArray(xd, c.x);
        const y = be.conv3d(x, w, c.w, b, { ...c.p, relu });
        x.dispose();
        return { y: host(y) };
      });
    }
    compare(`conv3d backward ${c.name}`, (be) => {
      const x = be.fromArray(xd, c.x);
      const y = be.conv3d(x, w, c.w, b, { ...c.p, training: true });
      const dy = be.fromArray(rnd(y.size, 34), y.shape);
      const dx = be.conv3dBackwardData(dy, w, c.w, c.x, c.p);
      const { dw, db } = be.conv3dBackwardWeights(x, dy, c.w, c.p, c.bias);
      const out = { y: host(y), dx: host(dx), dw, db };
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

test('conv3d + fused ReLU backward through reluBackward(y), then 3-d max pooling', () => {
  const c = conv3dCases[1]!;
  const w = rnd(numel(c.w), 35, -0.3, 0.3);
  const b = rnd(c.w[0]!, 36);
  const pool: Pool3dParams = { kernel: [1, 2, 2], stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
  compare('conv3d relu pool chain', (be) => {
    const x = be.fromArray(rnd(numel(c.x), 37), c.x);
    const y = be.conv3d(x, w, c.w, b, { ...c.p, relu: true, training: true });
    const p = be.maxPool3d(y, pool, true);
    const dp = be.fromArray(rnd(p.y.size, 38), p.y.shape);
    const dy = be.maxPool3dBackward(dp, p.workspace!, y.shape, pool);
    const dz = be.reluBackward(y, dy);
    const dx = be.conv3dBackwardData(dz, w, c.w, c.x, c.p);
    const { dw, db } = be.conv3dBackwardWeights(x, dz, c.w, c.p, true);
    const out = { y: host(y), p: host(p.y), dz: host(dz), dx: host(dx), dw, db };
    for (const t of [x, p.workspace!, dp, dy]) t.dispose();
    return out;
  });
});

// ---------------------------------------------------------------- transposed convolution
const deconvCases: ConvCase[] = [
  { name: 'stride 2, 4x4, pad 1', x: [2, 3, 5, 6], w: [4, 3, 4, 4], p: { stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] }, bias: true },
  { name: 'stride 1, 3x3, asymmetric pad', x: [1, 5, 6, 5], w: [2, 5, 3, 3], p: { stride: [1, 1], padding: [0, 1, 2, 1], dilation: [1, 1] }, bias: false },
  { name: 'dilation 2, stride [2,1], 17 -> 18 channels', x: [1, 17, 5, 4], w: [18, 17, 3, 2], p: { stride: [2, 1], padding: [1, 0, 0, 1], dilation: [2, 2] }, bias: true },
  // Kernel = stride, no padding: oneDNN runs these outside training as a 1x1 convolution and a shuffle (native/conv.cc).
  { name: 'kernel = stride 2x2 (U-Net up-convolution), 24 -> 16 channels', x: [2, 24, 5, 7], w: [16, 24, 2, 2], p: { stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] }, bias: true },
  { name: 'kernel = stride 2x3, 5 -> 3 channels, no bias', x: [1, 5, 4, 3], w: [3, 5, 2, 3], p: { stride: [2, 3], padding: [0, 0, 0, 0], dilation: [1, 1] }, bias: false },
];
for (const c of deconvCases) {
  test(`deconv2d: ${c.name}`, () => {
    const w = rnd(numel(c.w), 11, -0.5, 0.5);
    const b = c.bias ? rnd(c.w[0]!, 12) : null;
    compare(`deconv2d ${c.name}`, (be) => {
      const x = be.fromArray(rnd(numel(c.x), 13), c.x);
      const y = be.deconv2d(x, w, c.w, b, c.p);
      const dy = be.fromArray(rnd(y.size, 14), y.shape);
      const dx = be.deconv2dBackwardData(dy, w, c.w, c.x, c.p);
      const { dw, db } = be.deconv2dBackwardWeights(x, dy, c.w, c.p, c.bias);
      const out = { y: host(y), dx: host(dx), dw, db };
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

for (const c of [deconvCases[2]!, deconvCases[3]!]) test(`deconv2d + fused ReLU backward through reluBackward(y): ${c.name}`, () => {
  const w = rnd(numel(c.w), 15, -0.5, 0.5);
  const b = rnd(c.w[0]!, 16);
  compare('deconv relu chain', (be) => {
    const x = be.fromArray(rnd(numel(c.x), 17, -1, 1), c.x);
    const y = be.deconv2d(x, w, c.w, b, { ...c.p, relu: true });
    const plain = be.deconv2d(x, w, c.w, b, c.p);
    const dy = be.fromArray(rnd(y.size, 18), y.shape);
    const dz = be.reluBackward(y, dy);
    const dx = be.deconv2dBackwardData(dz, w, c.w, c.x, c.p);
    const { dw, db } = be.deconv2dBackwardWeights(x, dz, c.w, c.p, true);
    const yv = host(y);
    const out = { y: yv, dz: host(dz), dx: host(dx), dw, db };
    // The fused ReLU is max(0, .) of the unfused output, and it does clip: some outputs are negative before it.
    const before = host(plain);
    assert.ok(before.some((v) => v < 0), 'the case has negative pre-activations');
    assert.deepEqual(Array.from(yv), Array.from(before, (v) => Math.max(0, v)));
    for (const t of [x, dy, plain]) t.dispose();
    return out;
  });
});

test('an up-convolution computes the same outside training (1x1 convolution + shuffle) as in a training step (transposed convolution)', () => {
  const c = deconvCases[3]!;
  const w = rnd(numel(c.w), 21, -0.5, 0.5);
  const b = rnd(c.w[0]!, 22);
  const be = nat!;
  const x = be.fromArray(rnd(numel(c.x), 23, -1, 1), c.x);
  for (const relu of [false, true]) {
    const inference = be.deconv2d(x, w, c.w, b, { ...c.p, relu });
    const training = be.deconv2d(x, w, c.w, b, { ...c.p, relu, training: true });
    const d = relErr(host(inference), host(training));
    assert.ok(d <= 1e-6, `relu ${relu}: relative difference ${d}`);
    inference.dispose();
    training.dispose();
  }
  x.dispose();
});

interface Deconv3dCase { name: string; x: Shape; w: Shape; p: Conv3dParams; bias: boolean }
const deconv3dCases: Deconv3dCase[] = [
  { name: '1x2x2 stride 1x2x2 (anisotropic up-sampling), bias, batch 2', x: [2, 3, 3, 4, 5], w: [4, 3, 1, 2, 2], p: { stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] }, bias: true },
  { name: '2x2x2 stride 2, blocked channels 16 -> 8', x: [1, 16, 3, 3, 4], w: [8, 16, 2, 2, 2], p: { stride: [2, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] }, bias: true },
  { name: '3x3x3 stride 2, asymmetric pad', x: [1, 5, 3, 4, 3], w: [6, 5, 3, 3, 3], p: { stride: [2, 2, 2], padding: [1, 0, 1, 0, 1, 1], dilation: [1, 1, 1] }, bias: false },
];
for (const c of deconv3dCases) {
  test(`deconv3d: ${c.name}`, () => {
    const w = rnd(numel(c.w), 15, -0.5, 0.5);
    const b = c.bias ? rnd(c.w[0]!, 16) : null;
    compare(`deconv3d ${c.name}`, (be) => {
      const x = be.fromArray(rnd(numel(c.x), 17), c.x);
      const y = be.deconv3d(x, w, c.w, b, { ...c.p, training: true });
      const dy = be.fromArray(rnd(y.size, 18), y.shape);
      const dx = be.deconv3dBackwardData(dy, w, c.w, c.x, c.p);
      const { dw, db } = be.deconv3dBackwardWeights(x, dy, c.w, c.p, c.bias);
      const out = { y: host(y), dx: host(dx), dw, db };
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

// ---------------------------------------------------------------- pooling
const poolCases: { name: string; x: Shape; p: PoolParams }[] = [
  { name: '2x2 stride 2, odd size', x: [2, 3, 9, 8], p: { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] } },
  { name: '3x3 stride 2 pad 1, 16 channels', x: [1, 16, 11, 10], p: { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] } },
  { name: 'asymmetric, dilation [2,1]', x: [2, 5, 10, 9], p: { kernel: [2, 3], stride: [1, 2], padding: [0, 1, 1, 0], dilation: [2, 1] } },
];
for (const c of poolCases) {
  test(`maxPool2d: ${c.name}`, () => {
    compare(`maxPool2d ${c.name}`, (be) => {
      const x = be.fromArray(rnd(numel(c.x), 21), c.x);
      const inf = be.maxPool2d(x, c.p, false);
      assert.equal(inf.workspace, null);
      const { y, workspace } = be.maxPool2d(x, c.p, true);
      assert.ok(workspace);
      const dy = be.fromArray(rnd(y.size, 22), y.shape);
      const dx = be.maxPool2dBackward(dy, workspace, c.x, c.p);
      const out = { yInf: host(inf.y), y: host(y), dx: host(dx) };
      workspace.dispose();
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

// ---------------------------------------------------------------- 3-d pooling
const pool3dCases: { name: string; x: Shape; p: Pool3dParams }[] = [
  { name: '2x2x2 stride 2, odd sizes', x: [2, 3, 5, 9, 8], p: { kernel: [2, 2, 2], stride: [2, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] } },
  { name: '1x2x2 stride 1x2x2, 16 channels', x: [1, 16, 3, 10, 7], p: { kernel: [1, 2, 2], stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] } },
  { name: '3x3x3 stride 2 pad 1', x: [1, 5, 6, 7, 6], p: { kernel: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1, 1, 1, 1], dilation: [1, 1, 1] } },
];
for (const c of pool3dCases) {
  test(`maxPool3d: ${c.name}`, () => {
    compare(`maxPool3d ${c.name}`, (be) => {
      const x = be.fromArray(rnd(numel(c.x), 41), c.x);
      const inf = be.maxPool3d(x, c.p, false);
      assert.equal(inf.workspace, null);
      const { y, workspace } = be.maxPool3d(x, c.p, true);
      assert.ok(workspace);
      const dy = be.fromArray(rnd(y.size, 42), y.shape);
      const dx = be.maxPool3dBackward(dy, workspace, c.x, c.p);
      const out = { yInf: host(inf.y), y: host(y), dx: host(dx) };
      for (const t of [x, workspace, dy]) t.dispose();
      return out;
    });
  });
}

// ---------------------------------------------------------------- LRN
const lrnCases: { name: string; x: Shape; p: LrnParams }[] = [
  { name: 'across 5', x: [2, 7, 5, 4], p: { region: 'across', size: 5, alpha: 0.8, beta: 0.75, k: 1.5 } },
  { name: 'across 3, 16 channels', x: [1, 16, 6, 5], p: { region: 'across', size: 3, alpha: 0.5, beta: 0.6, k: 2 } },
  { name: 'within 3', x: [2, 3, 7, 6], p: { region: 'within', size: 3, alpha: 0.9, beta: 0.75, k: 1 } },
  { name: 'within 5, 16 channels', x: [1, 16, 8, 7], p: { region: 'within', size: 5, alpha: 2, beta: 0.5, k: 1 } },
];
for (const c of lrnCases) {
  test(`lrn: ${c.name}`, () => {
    compare(`lrn ${c.name}`, (be) => {
      const x = be.fromArray(rnd(numel(c.x), 31, -2, 2), c.x);
      const { y, workspace } = be.lrn(x, c.p, true);
      const dy = be.fromArray(rnd(y.size, 32), y.shape);
      const dx = be.lrnBackward(x, dy, workspace, c.p);
      const dx2 = be.lrnBackward(x, dy, null, c.p);
      const out = { y: host(y), dx: host(dx), dxNoWorkspace: host(dx2) };
      workspace?.dispose();
      x.dispose();
      dy.dispose();
      return out;
    });
  });
}

// ---------------------------------------------------------------- elementwise
test('relu, reluBackward, add (mixed layouts)', () => {
  compare('eltwise', (be) => {
    const shape = [2, 17, 5, 6];
    const x = be.fromArray(rnd(numel(shape), 41), shape);
    const y = be.relu(x);
    const dy = be.fromArray(rnd(y.size, 42), shape);
    const dx = be.reluBackward(y, dy);
    // a blocked-layout operand (a conv output) plus a plain one
    const w = rnd(17 * 17, 43);
    const z = be.conv2d(x, w, [17, 17, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
    const s1 = be.add(z, dy);
    const s2 = be.add(dy, z);
    const out = { y: host(y), dx: host(dx), s1: host(s1), s2: host(s2) };
    for (const t of [x, dy, z]) t.dispose();
    return out;
  });
});

test('dropout masks equal the reference bit for bit', () => {
  for (const [shape, rate, seed] of [[[2, 3, 7, 5], 0.3, 123], [[1, 20, 6, 6], 0.5, 0xdeadbeef], [[1, 2, 3, 3], 0, 7]] as const) {
    const xd = rnd(numel(shape), 51);
    const dyd = rnd(numel(shape), 52);
    const run = (be: Backend) => {
      // route x through a conv so the native side works on a blocked layout
      const x0 = be.fromArray(xd, shape);
      const C = shape[1];
      const eye = new Float32Array(C * C);
      for (let i = 0; i < C; i++) eye[i * C + i] = 1;
      const x = be.conv2d(x0, eye, [C, C, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
      const { y, mask } = be.dropout(x, rate, seed);
      const dy = be.fromArray(dyd, shape);
      const dx = be.dropoutBackward(dy, mask);
      const out = { y: host(y), mask: host(mask), dx: host(dx) };
      for (const t of [x0, x, dy]) t.dispose();
      return out;
    };
    const want = run(ref);
    const got = run(nat!);
    assert.deepEqual(Array.from(got.mask), Array.from(Float32Array.from(want.mask)), `mask rate=${rate}`);
    assert.ok(relErr(got.y, want.y) <= 1e-6);
    assert.ok(relErr(got.dx, want.dx) <= 1e-6);
  }
});

// ---------------------------------------------------------------- shape ops
test('crop and cropBackward (plain and blocked inputs)', () => {
  for (const shape of [[2, 3, 9, 8], [1, 18, 7, 9]] as const) {
    compare(`crop ${shape}`, (be) => {
      const x = be.fromArray(rnd(numel(shape), 61), shape);
      const C = shape[1];
      const z = be.conv2d(x, rnd(C * C, 62), [C, C, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
      const y1 = be.crop(x, 1, 2, 5, 4);
      const y2 = be.crop(z, 2, 0, 4, 9 - 1);
      const dy = be.fromArray(rnd(y2.size, 63), y2.shape);
      const dx = be.cropBackward(dy, shape, 2, 0);
      const out = { y1: host(y1), y2: host(y2), dx: host(dx) };
      for (const t of [x, z, dy]) t.dispose();
      return out;
    });
  }
});

test('concat and concatBackward (mixed layouts, channel counts off the block size)', () => {
  compare('concat', (be) => {
    const a = be.fromArray(rnd(2 * 5 * 6 * 7, 71), [2, 5, 6, 7]);
    const b0 = be.fromArray(rnd(2 * 16 * 6 * 7, 72), [2, 16, 6, 7]);
    const b = be.conv2d(b0, rnd(17 * 16, 73), [17, 16, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
    const c = be.conv2d(b0, rnd(16 * 16, 74), [16, 16, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
    const y = be.concat([a, b, c]);
    const y2 = be.concat([c, c]);
    const dy = be.fromArray(rnd(y.size, 75), y.shape);
    const parts = be.concatBackward(y, [5, 17, 16]);
    const dparts = be.concatBackward(dy, [5, 20, 13]);
    const out: Outputs = { y: host(y), y2: host(y2) };
    parts.forEach((p, i) => { out[`part${i}`] = host(p); });
    dparts.forEach((p, i) => { out[`dpart${i}`] = host(p); });
    for (const t of [a, b0, b, c, dy]) t.dispose();
    return out;
  });
});

test('crop3d, 5-d concat and their gradients (plain and blocked inputs)', () => {
  const conv1: Conv3dParams = { stride: [1, 1, 1], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
  for (const shape of [[2, 3, 5, 9, 8], [1, 18, 4, 7, 9]] as const) {
    compare(`crop3d/concat ${shape}`, (be) => {
      const x = be.fromArray(rnd(numel(shape), 64), shape);
      const C = shape[1];
      const z = be.conv3d(x, rnd(C * C, 65), [C, C, 1, 1, 1], null, conv1);
      const y1 = be.crop3d(x, 1, 1, 2, 3, 5, 4);
      const y2 = be.crop3d(z, 2, 2, 0, 2, 4, 7);
      const dy = be.fromArray(rnd(y2.size, 66), y2.shape);
      const dx = be.crop3dBackward(dy, shape, 2, 2, 0);
      const cat = be.concat([x, z, x]);
      const dcat = be.fromArray(rnd(cat.size, 67), cat.shape);
      const parts = be.concatBackward(dcat, [C, 2 * C]);
      const out: Outputs = { y1: host(y1), y2: host(y2), dx: host(dx), cat: host(cat) };
      parts.forEach((p, i) => { out[`part${i}`] = host(p); });
      for (const t of [x, z, dy, dcat]) t.dispose();
      return out;
    });
  }
});

test('upsampleNearest and its backward (factors 2, 3, 4; plain and blocked)', () => {
  for (const f of [2, 3, 4]) {
    for (const shape of [[2, 3, 5, 4], [1, 16, 3, 5], [1, 2, 4, 4]] as const) {
      compare(`upsample x${f} ${shape}`, (be) => {
        const x0 = be.fromArray(rnd(numel(shape), 81), shape);
        const C = shape[1];
        const x = be.conv2d(x0, rnd(C * C, 82), [C, C, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
        const y = be.upsampleNearest(x, f);
        const dy = be.fromArray(rnd(y.size, 83), y.shape);
        const dx = be.upsampleNearestBackward(dy, f);
        const dx2 = be.upsampleNearestBackward(y, f);
        const out = { y: host(y), dx: host(dx), dx2: host(dx2) };
        for (const t of [x0, x, dy]) t.dispose();
        return out;
      });
    }
  }
});

// ---------------------------------------------------------------- softmax and cross-entropy
test('softmax and softmaxCrossEntropy (ignored pixels, weights, all-ignored)', () => {
  for (const shape of [[2, 2, 7, 5], [1, 5, 4, 6], [2, 18, 3, 3]] as const) {
    const [N, C, H, W] = shape;
    const P = N * H * W;
    const labels = new Int32Array(P);
    const u = rnd(P, 91, 0, 1);
    for (let i = 0; i < P; i++) labels[i] = i % 7 === 3 ? -1 : Math.floor(u[i]! * C);
    const weights = rnd(P, 92, 0, 2);
    compare(`softmax/CE ${shape}`, (be) => {
      const x0 = be.fromArray(rnd(numel(shape), 93, -3, 3), shape);
      const x = be.conv2d(x0, rnd(C * C, 94), [C, C, 1, 1], null, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
      const sm = be.softmax(x);
      const r1 = be.softmaxCrossEntropy(x, { labels });
      const r2 = be.softmaxCrossEntropy(x, { labels, weights });
      const r3 = be.softmaxCrossEntropy(x0, { labels: new Int32Array(P).fill(-1) });
      const out = {
        sm: host(sm), loss1: r1.loss, ws1: r1.weightSum, d1: host(r1.dlogits),
        loss2: r2.loss, ws2: r2.weightSum, d2: host(r2.dlogits),
        loss3: r3.loss, ws3: r3.weightSum, d3: host(r3.dlogits),
      };
      x0.dispose();
      x.dispose();
      return out;
    });
  }
});

test('5-d softmax / softmaxCrossEntropy, sigmoid and sigmoidCrossEntropy (weights, masked elements, all masked)', () => {
  for (const shape of [[2, 2, 3, 5, 4], [1, 3, 2, 4, 6], [1, 18, 2, 3, 3]] as const) {
    const [N, C, D, H, W] = shape;
    const P = N * D * H * W;
    const E = numel(shape);
    const labels = new Int32Array(P);
    const u = rnd(P, 95, 0, 1);
    for (let i = 0; i < P; i++) labels[i] = i % 5 === 2 ? -1 : Math.floor(u[i]! * C);
    const targets = rnd(E, 96, 0, 1).map((v, i) => (i % 3 === 0 ? Math.round(v) : v));
    const weights = rnd(E, 97, 0, 2).map((v, i) => (i % 4 === 1 ? 0 : v));
    compare(`5-d output layers ${shape}`, (be) => {
      const x0 = be.fromArray(rnd(E, 98, -4, 4), shape);
      const x = be.conv3d(x0, rnd(C * C, 99), [C, C, 1, 1, 1], null,
        { stride: [1, 1, 1], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] });
      const sm = be.softmax(x);
      const ce = be.softmaxCrossEntropy(x, { labels });
      const sg = be.sigmoid(x);
      const r1 = be.sigmoidCrossEntropy(x, { targets });
      const r2 = be.sigmoidCrossEntropy(x, { targets, weights });
      const r3 = be.sigmoidCrossEntropy(x0, { targets, weights: new Float32Array(E) });
      const out = {
        sm: host(sm), ce: ce.loss, dce: host(ce.dlogits), sg: host(sg),
        loss1: r1.loss, ws1: r1.weightSum, d1: host(r1.dlogits),
        loss2: r2.loss, ws2: r2.weightSum, d2: host(r2.dlogits),
        loss3: r3.loss, ws3: r3.weightSum, d3: host(r3.dlogits),
      };
      x0.dispose();
      x.dispose();
      return out;
    });
  }
});

// ---------------------------------------------------------------- a chained mini-network
test('chained network: forward and all gradients match, activations stay in native layouts', () => {
  const same3: ConvParams = { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] };
  const same4: ConvParams = { stride: [1, 1], padding: [1, 1, 2, 2], dilation: [1, 1] };
  const pool: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
  const lrnP: LrnParams = { region: 'across', size: 5, alpha: 1e-2, beta: 0.75, k: 1 };
  const w1 = rnd(16 * 1 * 4 * 4, 101, -0.4, 0.4);
  const b1 = rnd(16, 102, -0.1, 0.1);
  const w2 = rnd(24 * 16 * 3 * 3, 103, -0.15, 0.15);
  const b2 = rnd(24, 104, -0.1, 0.1);
  const w3 = rnd(3 * 24, 105, -0.3, 0.3);
  const b3 = rnd(3, 106, -0.1, 0.1);
  const N = 2, H = 12, W = 12;
  const xd = rnd(N * H * W, 107, 0, 1);
  const labels = new Int32Array(N * H * W);
  const u = rnd(labels.length, 108, 0, 1);
  for (let i = 0; i < labels.length; i++) labels[i] = i % 11 === 0 ? -1 : Math.floor(u[i]! * 3);
  compare('mini-network', (be) => {
    const x = be.fromArray(xd, [N, 1, H, W]);
    const a1 = be.conv2d(x, w1, [16, 1, 4, 4], b1, { ...same4, relu: true });
    const a2 = be.conv2d(a1, w2, [24, 16, 3, 3], b2, { ...same3, relu: true });
    const p = be.maxPool2d(a2, pool, true);
    const l = be.lrn(p.y, lrnP, true);
    const d = be.dropout(l.y, 0.25, 99);
    const z = be.conv2d(d.y, w3, [3, 24, 1, 1], b3, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
    const up = be.upsampleNearest(z, 2);
    const ce = be.softmaxCrossEntropy(up, { labels });
    // backward
    const dz = be.upsampleNearestBackward(ce.dlogits, 2);
    const g3 = be.conv2dBackwardWeights(d.y, dz, [3, 24, 1, 1], { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] }, true);
    const dd = be.conv2dBackwardData(dz, w3, [3, 24, 1, 1], d.y.shape, { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] });
    const dl = be.dropoutBackward(dd, d.mask);
    const dp = be.lrnBackward(p.y, dl, l.workspace, lrnP);
    const da2 = be.maxPool2dBackward(dp, p.workspace!, a2.shape, pool);
    const dr2 = be.reluBackward(a2, da2);
    const g2 = be.conv2dBackwardWeights(a1, dr2, [24, 16, 3, 3], same3, true);
    const da1 = be.conv2dBackwardData(dr2, w2, [24, 16, 3, 3], a1.shape, same3);
    const dr1 = be.reluBackward(a1, da1);
    const g1 = be.conv2dBackwardWeights(x, dr1, [16, 1, 4, 4], same4, true);
    const out = {
      loss: ce.loss, up: host(up), dw3: g3.dw, db3: g3.db, dw2: g2.dw, db2: g2.db, dw1: g1.dw, db1: g1.db,
    };
    for (const t of [x, a1, a2, p.y, p.workspace!, l.y, d.y, d.mask, z, ce.dlogits, dz, dd, dl, dp, da2, dr2, da1, dr1]) {
      t.dispose();
    }
    l.workspace?.dispose();
    return out;
  }, 2e-4);
});

test('toArray into a given array: the values of a plain copy, on both backends, from any layout', () => {
  for (const be of [ref, nat!]) {
    const x = be.fromArray(rnd(2 * 20 * 7 * 6, 11), [2, 20, 7, 6]);
    // A convolution's output is in the backend's own layout (blocked or channels-last on oneDNN).
    const y = be.conv2d(x, rnd(17 * 20 * 9, 12), [17, 20, 3, 3], null, { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] });
    const out = new Float32Array(y.size).fill(Number.NaN);
    const back = be.toArray(y, out);
    assert.equal(back, out, `${be.name}: the array given is the array returned`);
    assert.deepEqual(out, Float32Array.from(be.toArray(y)), be.name); // the float64 reference rounds as any copy to float32
    x.dispose();
    y.dispose();
  }
});
