#!/usr/bin/env node
// 3-D against 2-D convolution at the same FLOPs (docs/BENCHMARKS.md, "3-D convolution"; issue 25 asks 3-D >= 80 % of
// 2-D GFLOP/s). Run on a quiet machine after `make build`:
//
//   node bench/conv3d.mjs                 # fp32 and, where the CPU has bf16, bf16; 2 threads
//   node bench/conv3d.mjs --repeats 15 --threads 1
//
// Cases (32 -> 32 channels, 'same' zero padding, stride 1): a 3x3 conv2d on 384 x 512 against a 3x3x3 conv3d on
// 16 x 64 x 64 (the same multiply-adds), and against a 1x3x3 conv3d on 3 x 256 x 256 (the same again). Each op is
// timed forward, backward to the data and backward to the weights: the median of --repeats runs after 2 warm-ups.
// Prints a JSON report: per precision and case, ms and GFLOP/s, and 3-D / 2-D ratios of GFLOP/s.
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;
const { createBackend } = await import(join(ROOT, 'dist/src/backend/index.js'));
const { values } = parseArgs({ options: { repeats: { type: 'string', default: '9' }, threads: { type: 'string', default: '2' } } });
const REPEATS = Number(values.repeats);
const THREADS = Number(values.threads);
const WARMUP = 2;
const C = 32;

const CASES = {
  '2d 3x3 on 384x512': { x: [1, C, 384, 512], k: [3, 3] },
  '3d 3x3x3 on 16x64x64': { x: [1, C, 16, 64, 64], k: [3, 3, 3] },
  '3d 1x3x3 on 3x256x256': { x: [1, C, 3, 256, 256], k: [1, 3, 3] },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const random = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);

function time(fn) {
  const ms = [];
  for (let i = 0; i < WARMUP + REPEATS; i++) {
    const t0 = performance.now();
    fn();
    if (i >= WARMUP) ms.push(performance.now() - t0);
  }
  return median(ms);
}

function runCase(backend, { x: xShape, k }) {
  const is3d = k.length === 3;
  const wShape = [C, C, ...k];
  const w = random(wShape.reduce((a, b) => a * b, 1));
  const x = backend.fromArray(random(xShape.reduce((a, b) => a * b, 1)), xShape);
  const pad = k.map((v) => (v - 1) / 2);
  const p = is3d ? { stride: [1, 1, 1], padding: [...pad, ...pad], dilation: [1, 1, 1] } : { stride: [1, 1], padding: [...pad, ...pad], dilation: [1, 1] };
  const conv = (q) => (is3d ? backend.conv3d(x, w, wShape, null, q) : backend.conv2d(x, w, wShape, null, q));
  const y = conv({ ...p, training: true });
  const dy = backend.fromArray(random(y.shape.reduce((a, b) => a * b, 1)), y.shape);
  const flops = 2 * C * C * k.reduce((a, b) => a * b, 1) * xShape.slice(2).reduce((a, b) => a * b, 1);
  const gflops = (ms) => Number((flops / ms / 1e6).toFixed(1));
  const forward = time(() => conv({ ...p, training: true }).dispose());
  const data = time(() => (is3d ? backend.conv3dBackwardData(dy, w, wShape, xShape, p) : backend.conv2dBackwardData(dy, w, wShape, xShape, p)).dispose());
  const weights = time(() => (is3d ? backend.conv3dBackwardWeights(x, dy, wShape, p, false) : backend.conv2dBackwardWeights(x, dy, wShape, p, false)));
  for (const t of [x, y, dy]) t.dispose();
  return { forward: { ms: forward, gflops: gflops(forward) }, data: { ms: data, gflops: gflops(data) }, weights: { ms: weights, gflops: gflops(weights) } };
}

const report = { threads: THREADS, repeats: REPEATS, precisions: {} };
for (const precision of ['float32', 'bfloat16']) {
  let backend;
  try {
    backend = createBackend({ kind: 'onednn', precision, threads: THREADS });
  } catch (err) {
    report.precisions[precision] = { skipped: String(err.message ?? err) };
    continue;
  }
  const cases = Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, runCase(backend, c)]));
  const base = cases['2d 3x3 on 384x512'];
  const ratios = Object.fromEntries(Object.keys(CASES).slice(1).map((name) => [name,
    Object.fromEntries(['forward', 'data', 'weights'].map((s) => [s, Number((cases[name][s].gflops / base[s].gflops).toFixed(2))]))]));
  report.precisions[precision] = { cases, ratios_3d_over_2d: ratios };
}
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
