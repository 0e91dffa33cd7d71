/**
 * MALIS weights: the union-find passes against a brute-force twin that thresholds the map at every value, the
 * pixel that a gap or a false boundary hinges on, bad labels refused, the batch target, and a training run with
 * the weight on (and refused with --balance subsample).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { isEmsegError } from '../src/errors.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { cellsOf } from '../src/train/border-weight.js';
import { malisTarget, malisWeights } from '../src/train/malis.js';
import { train, type TrainConfig } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

/** 4-connected components of the pixels `on` accepts (-1 elsewhere). */
function components(on: (p: number) => boolean, h: number, w: number): Int32Array {
  const id = new Int32Array(h * w).fill(-1);
  let next = 0;
  for (let s = 0; s < h * w; s++) {
    if (!on(s) || id[s] !== -1) continue;
    const stack = [s];
    id[s] = next;
    while (stack.length) {
      const p = stack.pop()!;
      const y = Math.floor(p / w), x = p % w;
      for (const [ok, q] of [[y > 0, p - w], [y < h - 1, p + w], [x > 0, p - 1], [x < w - 1, p + 1]] as const) {
        if (ok && on(q) && id[q] === -1) { id[q] = next; stack.push(q); }
      }
    }
    next++;
  }
  return id;
}

/**
 * Brute force: raise a threshold through every probability; a pair is decided by the pixel at whose value it first
 * becomes connected (same cell: through that cell's pixels at or below the threshold; different cells: through
 * any interior pixel and the membrane pixels at or below it). Probabilities must be distinct.
 */
function bruteForce(prob: Float32Array, labels: Int32Array, h: number, w: number): Float64Array {
  const n = h * w;
  const cells = cellsOf(labels, h, w);
  const interior = [...Array(n).keys()].filter((p) => cells[p]! >= 0);
  const byValue = [...Array(n).keys()].sort((a, b) => prob[a]! - prob[b]!);
  const decided = new Map<number, number>(); // pair key -> deciding pixel
  for (const t of byValue) {
    const same = components((p) => cells[p]! >= 0 && prob[p]! <= prob[t]!, h, w);
    const across = components((p) => cells[p]! >= 0 || prob[p]! <= prob[t]!, h, w);
    for (let a = 0; a < interior.length; a++) {
      for (let b = a + 1; b < interior.length; b++) {
        const [i, j] = [interior[a]!, interior[b]!];
        const key = i * n + j;
        if (decided.has(key)) continue;
        const joined = cells[i] === cells[j] ? same[i]! >= 0 && same[i] === same[j] : across[i] === across[j];
        if (joined) decided.set(key, t);
      }
    }
  }
  const counts = new Float64Array(n);
  for (const pixel of decided.values()) counts[pixel]++;
  const total = decided.size;
  return counts.map((c) => (c * n) / total);
}

/** Random cells with membranes between them, and distinct probabilities (one per ordering level or more apart). */
function randomTile(h: number, w: number, seed: number): { labels: Int32Array; prob: Float32Array } {
  const rng = new Rng(seed);
  const pts = Array.from({ length: 5 }, () => [rng.next() * h, rng.next() * w] as const);
  const labels = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = pts.map(([py, px]) => Math.hypot(y - py, x - px)).sort((a, b) => a - b);
      labels[y * w + x] = d[1]! - d[0]! < 1.5 ? 1 : 0;
    }
  }
  const order = [...Array(h * w).keys()];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const prob = new Float32Array(h * w);
  order.forEach((rank, p) => { prob[p] = (rank + 0.5) / (h * w); });
  return { labels, prob };
}

test('the union-find passes decide every pair where thresholding the map does (brute-force twin)', () => {
  for (const seed of [1, 2, 3, 4]) {
    const [h, w] = [11, 13];
    const { labels, prob } = randomTile(h, w, seed);
    const fast = malisWeights(prob, labels, h, w);
    const slow = bruteForce(prob, labels, h, w);
    fast.forEach((v, i) => assert.ok(Math.abs(v - slow[i]!) < 1e-3, `seed ${seed}, pixel ${i}: ${v} against ${slow[i]}`));
    assert.ok(Math.abs(fast.reduce((s, v) => s + v, 0) - h * w) < 1e-2, 'the weights average 1');
  }
});

/** Two cells left and right of a vertical membrane in column `col`, P(membrane) = `wall` on it and 0.1 elsewhere. */
function twoCells(h: number, w: number, col: number, wall: number): { labels: Int32Array; prob: Float32Array } {
  const labels = new Int32Array(h * w);
  const prob = new Float32Array(h * w).fill(0.1);
  for (let y = 0; y < h; y++) { labels[y * w + col] = 1; prob[y * w + col] = wall; }
  return { labels, prob };
}

test('a gap: every pair across the membrane is decided by its weakest pixel', () => {
  const [h, w, col] = [8, 9, 4];
  const { labels, prob } = twoCells(h, w, col, 0.9);
  const gap = 5 * w + col;
  prob[gap] = 0.3;
  const weights = malisWeights(prob, labels, h, w);
  const cell = h * col; // pixels per cell: 32 on each side
  // Same-cell pairs are decided at P = 0.1 by many pixels; the 32 x 32 pairs across all by the gap pixel.
  const total = 2 * (cell * (cell - 1)) / 2 + cell * cell;
  assert.ok(Math.abs(weights[gap]! - (cell * cell * h * w) / total) < 1e-3);
  const others = [...weights].filter((_, p) => labels[p] === 1 && p !== gap);
  assert.ok(others.every((v) => v === 0), 'the rest of the membrane decides nothing');
});

test('a false boundary across a cell weighs as much as the pairs it separates, at its weakest pixel', () => {
  const [h, w] = [6, 10];
  const labels = new Int32Array(h * w); // one cell, no membrane
  const prob = new Float32Array(h * w).fill(0.05);
  for (let y = 0; y < h; y++) prob[y * w + 5] = 0.8 + 0.01 * y; // a false membrane in column 5
  const weights = malisWeights(prob, labels, h, w);
  const weakest = 0 * w + 5;
  const argmax = weights.indexOf(Math.max(...weights));
  assert.equal(argmax, weakest, 'the lowest pixel of the false membrane decides the split');
  // It joins the 30 pixels on its left and the 24 on its right, and itself to one side: 30 + 31 x 24 pairs.
  const total = (h * w * (h * w - 1)) / 2;
  assert.ok(Math.abs(weights[weakest]! - ((30 + 31 * 24) * h * w) / total) < 1e-3);
});

test('ignored or out-of-range labels and mismatched sizes are refused', () => {
  const prob = new Float32Array(4).fill(0.5);
  assert.throws(() => malisWeights(prob, Int32Array.from([0, 1, -1, 0]), 2, 2), (e) => isEmsegError(e, 'invalid-option') && e.path === 'malisWeights' && e.message.includes('pixel 2'));
  assert.throws(() => malisWeights(prob, Int32Array.from([0, 1, 0]), 2, 2), (e) => isEmsegError(e, 'invalid-option'));
  assert.deepEqual([...malisWeights(prob, Int32Array.from([1, 1, 1, 1]), 2, 2)], [0, 0, 0, 0], 'no interior: no pairs, no weight');
});

test('the batch target adds weight x MALIS to each tile\'s sampled weights', () => {
  const side = 9;
  const a = twoCells(side, side, 4, 0.9);
  a.prob[4 * side + 4] = 0.2;
  const labels = new Int32Array(2 * side * side);
  labels.set(a.labels);
  labels.set(a.labels, side * side);
  const logits = new Float32Array(4 * side * side); // tile 0: the map a.prob; tile 1: 0.5 everywhere
  for (let q = 0; q < side * side; q++) logits[side * side + q] = Math.log(a.prob[q]! / (1 - a.prob[q]!));
  const sampled = new Float32Array(2 * side * side).fill(2);
  const t = malisTarget(logits, { labels, weights: sampled }, side, 3);
  const expected = malisWeights(a.prob, a.labels, side, side);
  for (let q = 0; q < side * side; q++) assert.ok(Math.abs(t.weights![q]! - (2 + 3 * expected[q]!)) < 1e-3);
  assert.equal(t.labels, labels);
  assert.throws(() => malisTarget(logits.subarray(1), { labels, weights: null }, side, 1), (e) => isEmsegError(e, 'internal'));
});

function stripes(sections: number, size: number) {
  const images = new Float32Array(sections * size * size);
  const labels = new Uint8Array(sections * size * size);
  for (let i = 0; i < images.length; i++) {
    const x = i % size, y = Math.floor(i / size) % size;
    labels[i] = x % 7 === 0 || y % 8 === 0 ? 1 : 0;
    images[i] = labels[i] ? 0.25 : 0.75;
  }
  return { images: { width: size, height: size, depth: sections, data: images },
    labels: { width: size, height: size, depth: sections, data: labels }, source: { synthetic: true } };
}

const spec = parseModelSpec({
  name: 'tiny-fcn', window: 5,
  layers: [{ type: 'conv', name: 'c1', out: 4, kernel: 3 }, { type: 'relu' }, { type: 'conv', name: 'c2', out: 2, kernel: 3 },
    { type: 'softmax' }],
});

function config(malis: number | null, balance: TrainConfig['balance']): TrainConfig {
  return { model: 'tiny-fcn', spec, out: mkdtempSync(join(tmpdir(), 'emseg-malis-')),
    trainSections: [0, 1], validationSections: [2], tile: 8, batch: 2, steps: 3, stepsPerEpoch: 3,
    optimizer: { kind: 'adam' }, schedule: { kind: 'constant', lr: 1e-3 }, balance, elastic: null, jitter: null,
    seed: 3, checkpointMinutes: 0, select: 'pixel_error', ...(malis ? { malis: { weight: malis } } : {}) };
}

test('training with the MALIS weight runs and changes the loss; subsample balancing is refused with it', async () => {
  const backend = createReferenceBackend('float32');
  const losses = async (malis: number | null) => {
    const seen: number[] = [];
    await train(config(malis, 'weights'), stripes(3, 32), backend, { onStep: (r) => seen.push(r.loss) });
    return seen;
  };
  const plain = await losses(null);
  const weighted = await losses(5);
  assert.equal(weighted.length, 3);
  assert.ok(weighted.every(Number.isFinite));
  assert.notEqual(weighted[0], plain[0], 'the first step already weighs the pixels differently');
  await assert.rejects(train(config(5, 'subsample'), stripes(3, 32), backend),
    (e) => isEmsegError(e, 'invalid-option') && e.path === 'balance');
});
