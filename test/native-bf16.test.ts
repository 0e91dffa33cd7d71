/**
 * bfloat16 oneDNN backend vs the reference backend (float64), with bf16-sized tolerances, where the CPU supports it
 * (avx512_core_bf16 / AMX); and the clear error on CPUs that do not (simulated with ONEDNN_MAX_CPU_ISA).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Backend, Conv3dParams, ConvParams, Pool3dParams, PoolParams } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { loadOneDnnBackend, nativeInfo } from '../src/backend/onednn/index.js';
import { type Shape, numel } from '../src/tensor/tensor.js';
import { randomFloat32 } from './helpers/gradcheck.js';
import { compareBackends, host, type Outputs } from './helpers/backend-compare.js';

const ref = createReferenceBackend('float64');
// The addon is always built by the set-up; only a CPU without bf16 skips the bf16 comparisons (and then checks
// that bf16 is refused with a clear message).
const hasBf16 = nativeInfo().bf16;
const nat: Backend | null = hasBf16 ? loadOneDnnBackend({ precision: 'bfloat16' }) : null;
const skipBf16: string | false = hasBf16 ? false : `no bf16 on this CPU (${nativeInfo().isa})`;
const TOL = 2e-2;

const rnd = randomFloat32;
/** Rounds to bfloat16 (nearest even), so both backends see the same inputs. */
function toBf16(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  const u = new Uint32Array(out.buffer);
  const src = new Uint32Array(Float32Array.from(a).buffer);
  for (let i = 0; i < a.length; i++) {
    const v = src[i]!;
    u[i] = ((v + 0x7fff + ((v >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return out;
}
const compare = (name: string, fn: (be: Backend) => Outputs, tol = TOL): void => compareBackends(name, ref, nat!, fn, tol);

const convCases: { name: string; x: Shape; w: Shape; p: ConvParams }[] = [
  { name: 'first layer 1 -> 16, 5x5', x: [2, 1, 12, 11], w: [16, 1, 5, 5], p: { stride: [1, 1], padding: [2, 2, 2, 2], dilation: [1, 1] } },
  { name: '32 -> 32, 3x3 same', x: [1, 32, 9, 10], w: [32, 32, 3, 3], p: { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] } },
  { name: 'even kernel, asymmetric pad, 20 -> 17', x: [2, 20, 8, 7], w: [17, 20, 4, 4], p: { stride: [1, 1], padding: [1, 1, 2, 2], dilation: [1, 1] } },
  { name: 'stride 2 + dilation 2', x: [1, 16, 13, 12], w: [16, 16, 3, 3], p: { stride: [2, 2], padding: [2, 1, 2, 2], dilation: [2, 2] } },
  { name: '1x1, 48 -> 2', x: [1, 48, 6, 5], w: [2, 48, 1, 1], p: { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] } },
];

for (const c of convCases) {
  test(`bf16 conv2d: ${c.name}`, { skip: skipBf16 }, () => {
    const xd = toBf16(rnd(numel(c.x), 1));
    const w = rnd(numel(c.w), 2, -0.5, 0.5);
    const wq = toBf16(w); // the reference gets the bf16-rounded weights the native side computes with
    const b = rnd(c.w[0]!, 3);
    compare(`bf16 conv2d ${c.name}`, (be) => {
      const ww = be === ref ? wq : w;
      const x = be.fromArray(xd, c.x);
      const y = be.conv2d(x, ww, c.w, b, { ...c.p, relu: true });
      const dy = be.fromArray(toBf16(rnd(y.size, 4)), y.shape);
      const dz = be.reluBackward(y, dy);
      const dx = be.conv2dBackwardData(dz, ww, c.w, c.x, c.p);
      const { dw, db } = be.conv2dBackwardWeights(x, dz, c.w, c.p, true);
      const out = { y: host(y), dx: host(dx), dw, db };
      if (be !== ref) assert.ok(dw instanceof Float32Array && db instanceof Float32Array, 'fp32 weight gradients');
      for (const t of [x, dy, dz]) t.dispose();
      return out;
    });
  });
}

test('bf16 conv3d (3x3x3 and 1x3x3) with fused ReLU, and bf16 3-d max pooling', { skip: skipBf16 }, () => {
  const cases: { x: Shape; w: Shape; p: Conv3dParams }[] = [
    { x: [1, 16, 4, 7, 6], w: [16, 16, 3, 3, 3], p: { stride: [1, 1, 1], padding: [1, 1, 1, 1, 1, 1], dilation: [1, 1, 1] } },
    { x: [2, 3, 3, 8, 8], w: [8, 3, 1, 3, 3], p: { stride: [1, 1, 1], padding: [0, 1, 1, 0, 1, 1], dilation: [1, 1, 1] } },
  ];
  const pool: Pool3dParams = { kernel: [1, 2, 2], stride: [1, 2, 2], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
  for (const [k, c] of cases.entries()) {
    const w = rnd(numel(c.w), 51 + k, -0.3, 0.3);
    const b = rnd(c.w[0]!, 53 + k);
    compare(`bf16 conv3d ${k}`, (be) => {
      const ww = be === ref ? toBf16(w) : w;
      const x = be.fromArray(toBf16(rnd(numel(c.x), 55 + k)), c.x);
      const y = be.conv3d(x, ww, c.w, b, { ...c.p, relu: true, training: true });
      const dy = be.fromArray(toBf16(rnd(y.size, 57 + k)), y.shape);
      const dz = be.reluBackward(y, dy);
      const dx = be.conv3dBackwardData(dz, ww, c.w, c.x, c.p);
      const { dw, db } = be.conv3dBackwardWeights(x, dz, c.w, c.p, true);
      const out = { y: host(y), dx: host(dx), dw, db };
      for (const t of [x, dy, dz]) t.dispose();
      return out;
    });
  }
  // pooled straight from bf16-exact inputs: pooling conv outputs would let bf16 rounding move an argmax
  compare('bf16 maxPool3d', (be) => {
    const shape = [1, 16, 4, 6, 6];
    const x = be.fromArray(toBf16(rnd(numel(shape), 59, -2, 2)), shape);
    const p = be.maxPool3d(x, pool, true);
    const dp = be.fromArray(toBf16(rnd(p.y.size, 60)), p.y.shape);
    const dx = be.maxPool3dBackward(dp, p.workspace!, shape, pool);
    const out = { y: host(p.y), dx: host(dx) };
    for (const t of [x, p.workspace!, dp]) t.dispose();
    return out;
  });
});

// The second case (kernel = stride, bias, fused ReLU) runs as a 1x1 convolution and a shuffle outside training.
for (const [name, ws, p, withBias] of [
  ['4x4 kernel, stride 2, pad 1', [16, 16, 4, 4], { stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] }, false],
  ['2x2 kernel = stride, bias, ReLU', [16, 32, 2, 2], { stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] }, true],
] as const) test(`bf16 deconv2d: ${name}`, { skip: skipBf16 }, () => {
  const xs = [1, ws[1], 5, 6];
  const w = rnd(numel(ws), 5, -0.3, 0.3);
  const b = withBias ? toBf16(rnd(ws[0], 8)) : null;
  compare(`bf16 deconv2d ${name}`, (be) => {
    const ww = be === ref ? toBf16(w) : w;
    const x = be.fromArray(toBf16(rnd(numel(xs), 6)), xs);
    const y = be.deconv2d(x, ww, ws, b, { ...p, relu: withBias });
    const dy = be.fromArray(toBf16(rnd(y.size, 7)), y.shape);
    const dx = be.deconv2dBackwardData(dy, ww, ws, xs, p);
    const { dw } = be.deconv2dBackwardWeights(x, dy, ws, p, false);
    const out = { y: host(y), dx: host(dx), dw };
    x.dispose();
    dy.dispose();
    return out;
  });
});

test('bf16 3-d U-Net ops: deconv3d (1x2x2 and 2x2x2), crop3d, 5-d concat, sigmoid cross-entropy', { skip: skipBf16 }, () => {
  for (const k of [[1, 2, 2], [2, 2, 2]]) {
    const xs = [1, 16, 3, 4, 5];
    const ws = [8, 16, ...k];
    const p: Conv3dParams = { stride: k as [number, number, number], padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] };
    const w = rnd(numel(ws), 8, -0.3, 0.3);
    const b = rnd(8, 9);
    compare(`bf16 deconv3d ${k}`, (be) => {
      const ww = be === ref ? toBf16(w) : w;
      const x = be.fromArray(toBf16(rnd(numel(xs), 10)), xs);
      const y = be.deconv3d(x, ww, ws, b, { ...p, training: true });
      const dy = be.fromArray(toBf16(rnd(y.size, 11)), y.shape);
      const dx = be.deconv3dBackwardData(dy, ww, ws, xs, p);
      const { dw, db } = be.deconv3dBackwardWeights(x, dy, ws, p, true);
      const crop = be.crop3d(y, 0, 1, 1, y.shape[2]!, 2, 3);
      const cat = be.concat([crop, crop]);
      const targets = rnd(cat.size, 12, 0, 1);
      const ce = be.sigmoidCrossEntropy(cat, { targets });
      const out = { y: host(y), dx: host(dx), dw, db, cat: host(cat), loss: ce.loss, dz: host(ce.dlogits) };
      for (const t of [x, dy, crop]) t.dispose();
      return out;
    });
  }
});

test('bf16 pooling, LRN, eltwise, shape ops, softmax cross-entropy', { skip: skipBf16 }, () => {
  const shape = [2, 16, 8, 6];
  const pool: PoolParams = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
  const labels = new Int32Array(2 * 8 * 6).map((_, i) => (i % 9 === 0 ? -1 : i % 16));
  compare('bf16 misc', (be) => {
    const x = be.fromArray(toBf16(rnd(numel(shape), 8, -2, 2)), shape);
    const p = be.maxPool2d(x, pool, true);
    const dp = be.fromArray(toBf16(rnd(p.y.size, 9)), p.y.shape);
    const dxp = be.maxPool2dBackward(dp, p.workspace!, shape, pool);
    const lp = { region: 'across', size: 5, alpha: 0.5, beta: 0.75, k: 2 } as const;
    const l = be.lrn(x, lp, true);
    const dl = be.fromArray(toBf16(rnd(x.size, 10)), shape);
    const dxl = be.lrnBackward(x, dl, l.workspace, lp);
    const r = be.relu(x);
    const s = be.add(x, r);
    const up = be.upsampleNearest(p.y, 2);
    const dup = be.upsampleNearestBackward(up, 2);
    const cat = be.concat([x, r]);
    const [c0] = be.concatBackward(cat, [16, 16]);
    const cr = be.crop(x, 1, 1, 5, 4);
    const sm = be.softmax(x);
    const ce = be.softmaxCrossEntropy(x, { labels });
    const out = {
      py: host(p.y), dxp: host(dxp), ly: host(l.y), dxl: host(dxl), s: host(s), up: host(up), dup: host(dup),
      c0: host(c0!), cr: host(cr), sm: host(sm), loss: ce.loss, dl: host(ce.dlogits),
    };
    for (const t of [x, dp, dl, r, cat]) t.dispose();
    p.workspace!.dispose();
    l.workspace?.dispose();
    return out;
  });
});

test('bf16 on a CPU without avx512_core_bf16: a clear NativeCapabilityError', () => {
  const mod = new URL('../src/backend/onednn/index.js', import.meta.url).href;
  const script = `
    import { loadOneDnnBackend, nativeInfo } from ${JSON.stringify(mod)};
    const info = nativeInfo();
    try { loadOneDnnBackend({ precision: 'bfloat16' }); console.log(JSON.stringify({ isa: info.isa, ok: true })); }
    catch (e) { console.log(JSON.stringify({ isa: info.isa, name: e.name, message: e.message })); }
    loadOneDnnBackend({ precision: 'float32' }); // float32 still works
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2', DNNL_MAX_CPU_ISA: 'AVX2' },
    encoding: 'utf8',
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { isa: string; name?: string; message?: string };
  assert.equal(r.isa, 'avx2');
  assert.equal(r.name, 'NativeCapabilityError');
  assert.match(r.message!, /avx512_core_bf16/);
});
