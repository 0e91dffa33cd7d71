#!/usr/bin/env node
// Times evaluateStacks (all five ISBI metrics) on a 30 x 512 x 512 stack.
//
// Usage: npx tsc -p . && node scripts/bench-metrics.mjs [runs=3] [proposal=soft|raw]
//   soft: labels blurred (3 box passes of radius 2) plus uniform noise of +-0.2, clipped;
//         a plausible classifier output.
//   raw:  the raw EM sections / 255; a poor classifier with many topological errors
//         (the warping error's worst case).
// The training set has 25 labelled sections, so sections 0-4 are reused for the last 5.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { evaluateStacks } from '../dist/src/metrics/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, '..', 'shared', 'data', 'isbi2012', 'train');
const runs = Number(process.argv[2] ?? 3);
const kind = process.argv[3] ?? 'soft';
const SIZE = 512;
const DEPTH = 30;
const N = SIZE * SIZE;

function readGray(file) {
  const png = decode(readFileSync(file));
  if (png.width !== SIZE || png.height !== SIZE || png.channels !== 1) {
    throw new Error(`${file}: expected ${SIZE}x${SIZE} grayscale, got ${png.width}x${png.height}x${png.channels}`);
  }
  return png.data;
}

/** In-place box blur of radius r along rows then columns (edges clamped). */
function boxBlur(img, r) {
  const tmp = new Float32Array(N);
  for (let pass = 0; pass < 2; pass++) {
    const [src, dst] = pass === 0 ? [img, tmp] : [tmp, img];
    for (let a = 0; a < SIZE; a++) {
      for (let b = 0; b < SIZE; b++) {
        let sum = 0;
        for (let k = -r; k <= r; k++) {
          const c = Math.min(SIZE - 1, Math.max(0, b + k));
          sum += pass === 0 ? src[a * SIZE + c] : src[c * SIZE + a];
        }
        if (pass === 0) dst[a * SIZE + b] = sum / (2 * r + 1);
        else dst[b * SIZE + a] = sum / (2 * r + 1);
      }
    }
  }
}

const gt = { width: SIZE, height: SIZE, depth: DEPTH, data: new Uint8Array(N * DEPTH) };
const proposal = { width: SIZE, height: SIZE, depth: DEPTH, data: new Float32Array(N * DEPTH) };
let seed = 2012;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
for (let z = 0; z < DEPTH; z++) {
  const name = `${String(z % 25).padStart(2, '0')}.png`;
  const labels = readGray(join(dataDir, 'labels', name));
  gt.data.set(labels, z * N);
  const slice = proposal.data.subarray(z * N, (z + 1) * N);
  if (kind === 'raw') {
    const raw = readGray(join(dataDir, 'images', name));
    for (let i = 0; i < N; i++) slice[i] = raw[i] / 255;
  } else {
    for (let i = 0; i < N; i++) slice[i] = labels[i] / 255;
    for (let k = 0; k < 3; k++) boxBlur(slice, 2);
    for (let i = 0; i < N; i++) slice[i] = Math.min(1, Math.max(0, slice[i] + (random() - 0.5) * 0.4));
  }
}

console.log(`proposal=${kind}, ${DEPTH}x${SIZE}x${SIZE}, ${cpus().length} CPUs, load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const times = [];
let result;
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  result = evaluateStacks(gt, proposal);
  times.push((performance.now() - t0) / 1000);
  console.log(`run ${i + 1}: ${times[i].toFixed(2)} s`);
}
times.sort((a, b) => a - b);
const { pixel_error, rand_error, warping_error, v_rand, v_info } = result;
console.log('scores', { pixel_error, rand_error, warping_error, v_rand, v_info });
console.log(`median ${times[Math.floor(times.length / 2)].toFixed(2)} s over ${runs} run(s); load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
