/**
 * U-Net's border weight map: the propagated nearest / second-nearest cell distances against a brute-force twin,
 * a membrane of known width, tiles without two cells, and the sampler adding the term to each pixel's weight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { borderWeights, cellsOf } from '../src/train/border-weight.js';
import { TileSampler } from '../src/train/sampler.js';
import { Rng } from '../src/util/rng.js';

const W0 = 10;
const SIGMA = 5;

/** Brute force: for each pixel, the distance to every cell's nearest pixel; the two smallest give the weight. */
function bruteForce(labels: Int32Array, h: number, w: number): Float32Array {
  const cells = cellsOf(labels, h, w);
  const out = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    const nearest = new Map<number, number>();
    for (let q = 0; q < h * w; q++) {
      if (cells[q]! < 0) continue;
      const d = Math.hypot(Math.floor(p / w) - Math.floor(q / w), (p % w) - (q % w));
      if (d < (nearest.get(cells[q]!) ?? Infinity)) nearest.set(cells[q]!, d);
    }
    const [d1, d2] = [...nearest.values()].sort((a, b) => a - b);
    if (d2 !== undefined) out[p] = W0 * Math.exp(-((d1! + d2) ** 2) / (2 * SIGMA * SIGMA));
  }
  return out;
}

/** Voronoi-like cells of random centres, with membranes 1 to 5 px wide between them (1 = membrane). */
function voronoiLabels(h: number, w: number, centres: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const pts = Array.from({ length: centres }, () => [rng.next() * h, rng.next() * w] as const);
  const labels = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = pts.map(([py, px]) => Math.hypot(y - py, x - px)).sort((a, b) => a - b);
      labels[y * w + x] = d[1]! - d[0]! < 1 + 4 * ((x * y) % 7) / 7 ? 1 : 0;
    }
  }
  return labels;
}

test('the propagated weights equal the brute-force nearest and second-nearest cell distances', () => {
  for (const seed of [1, 2, 3]) {
    const [h, w] = [48, 56];
    const labels = voronoiLabels(h, w, 12, seed);
    const fast = borderWeights(labels, h, w, W0, SIGMA);
    const slow = bruteForce(labels, h, w);
    let worst = 0;
    fast.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - slow[i]!)); });
    assert.ok(worst < 1e-2, `seed ${seed}: largest difference ${worst}`);
    assert.ok(fast.some((v) => v > W0 / 2), 'thin membranes get a large weight');
  }
});

test('a membrane 3 px wide between two cells: d1 + d2 = 4 in its middle, and the weight falls off into the cells', () => {
  const [h, w] = [8, 21];
  // columns 0-9 one cell, 10-12 membrane, 13-20 the other cell
  const labels = Int32Array.from({ length: h * w }, (_, i) => (i % w >= 10 && i % w <= 12 ? 1 : 0));
  const weights = borderWeights(labels, h, w, W0, SIGMA);
  const at = (x: number) => weights[4 * w + x]!;
  const expected = (sum: number) => W0 * Math.exp(-(sum * sum) / (2 * SIGMA * SIGMA));
  assert.ok(Math.abs(at(11) - expected(4)) < 1e-5, `middle ${at(11)}`);
  assert.ok(Math.abs(at(10) - expected(1 + 3)) < 1e-5, `edge ${at(10)}`);
  assert.ok(Math.abs(at(9) - expected(0 + 4)) < 1e-5, `cell pixel beside it ${at(9)}`);
  assert.ok(Math.abs(at(0) - expected(0 + 13)) < 1e-5, `far cell pixel ${at(0)}`);
  assert.ok(at(0) < at(5) && at(5) < at(9), 'the weight grows towards the border');
});

test('cells touch only through edges: diagonal neighbours are two cells; a tile with one cell or none weighs nothing extra', () => {
  const diagonal = Int32Array.from([0, 1, 1, 0]);
  const cells = cellsOf(diagonal, 2, 2);
  assert.notEqual(cells[0], cells[3]);
  assert.equal(cells[1], -1);
  // A membrane wall at column 3 that stops short of row 0: the cell runs around it, so there is one cell.
  const one = Int32Array.from({ length: 36 }, (_, i) => (i % 6 === 3 && i >= 6 ? 1 : 0));
  assert.equal(new Set(cellsOf(one, 6, 6).filter((c) => c >= 0)).size, 1);
  for (const labels of [one, new Int32Array(36).fill(1), new Int32Array(36)]) {
    assert.deepEqual([...borderWeights(labels, 6, 6, W0, SIGMA)], new Array(36).fill(0));
  }
});

test('the sampler adds the border term of the whole input tile to each output pixel\'s weight', () => {
  // Image = labels, so each drawn tile's labels can be read back from its input.
  const size = 64;
  const labels = Uint8Array.from(voronoiLabels(size, size, 10, 4));
  const stack = <T extends Uint8Array | Float32Array>(data: T) => ({ width: size, height: size, depth: 1, data });
  const [n, m, offset] = [40, 24, 8];
  const options = { inputSize: n, outputSize: m, offset, balance: 'none' as const };
  const plain = new TileSampler(stack(Float32Array.from(labels)), stack(labels), [0], options);
  const bordered = new TileSampler(stack(Float32Array.from(labels)), stack(labels), [0], { ...options, border: { w0: W0, sigma: SIGMA } });
  const a = plain.next(2, new Rng(5));
  const b = bordered.next(2, new Rng(5));
  assert.equal(a.weights, null);
  assert.deepEqual(b.input, a.input, 'the border term draws no random numbers: the same tiles');
  for (let t = 0; t < 2; t++) {
    const tile = Int32Array.from(b.input.subarray(t * n * n, (t + 1) * n * n));
    const extra = borderWeights(tile, n, n, W0, SIGMA);
    for (let y = 0; y < m; y++) {
      for (let x = 0; x < m; x++) {
        assert.equal(b.weights![t * m * m + y * m + x], Math.fround(1 + extra[(y + offset) * n + x + offset]!));
      }
    }
  }
});
