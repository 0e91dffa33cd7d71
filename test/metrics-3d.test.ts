import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Contingency3d, borderMask, neuronScores, type IdArray, type NeuronScores } from '../src/metrics/index.js';
import { refused } from './helpers/errors.js';

type Shape = readonly [number, number, number];

function score(gt: IdArray, seg: IdArray, shape: Shape, o: { exclude?: Uint8Array; background?: number | bigint } = {}): NeuronScores {
  const t = new Contingency3d({ gtBackground: o.background });
  t.add(gt, seg, { shape, exclude: o.exclude });
  return neuronScores(t);
}

/** The scores written plainly: voxel-pair loops, no tables. */
function bruteForce(gt: readonly number[], seg: readonly number[]): { split: number; merge: number; arand: number } {
  const fg = gt.map((_, i) => i).filter((i) => gt[i] !== 0);
  const n = fg.length;
  let split = 0;
  let merge = 0;
  for (const i of fg) {
    let sameBoth = 0;
    let sameGt = 0;
    let sameSeg = 0;
    for (const j of fg) {
      if (gt[j] === gt[i]) sameGt++;
      if (seg[j] === seg[i]) sameSeg++;
      if (gt[j] === gt[i] && seg[j] === seg[i]) sameBoth++;
    }
    // Each voxel carries 1/n of -log2 p(seg | gt) and of -log2 p(gt | seg).
    split -= Math.log2(sameBoth / sameGt) / n;
    merge -= Math.log2(sameBoth / sameSeg) / n;
  }
  let pairsGt = 0;
  let pairsSeg = 0;
  let pairsBoth = 0;
  for (const i of fg) {
    for (const j of fg) {
      const g = gt[i] === gt[j];
      const s = i === j || (seg[i] === seg[j] && seg[i] !== 0);
      if (g) pairsGt++;
      if (s) pairsSeg++;
      if (g && s) pairsBoth++;
    }
  }
  const p = pairsBoth / pairsSeg;
  const r = pairsBoth / pairsGt;
  return { split, merge, arand: 1 - (2 * p * r) / (p + r) };
}

function near(a: number, b: number, what: string, tol = 1e-9): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

test('identical segmentations score 0 (any ids)', () => {
  const gt = Uint32Array.from([1, 1, 2, 2, 3, 3, 3, 0]);
  const seg = Uint32Array.from([7, 7, 9, 9, 4, 4, 4, 5]);
  const s = score(gt, seg, [1, 2, 4]);
  assert.equal(s.voiSplit, 0);
  assert.equal(s.voiMerge, 0);
  assert.equal(s.arand, 0);
  assert.equal(s.cremi, 0);
  assert.equal(s.voxels, 7);
  assert.deepEqual(s.worstSplits, []);
  assert.deepEqual(s.worstMerges, []);
});

test('one neuron split in two halves: split 1 bit, merge 0; listed with its first voxel', () => {
  const gt = Uint32Array.from([5, 5, 5, 5]);
  const seg = Uint32Array.from([1, 1, 2, 2]);
  const t = new Contingency3d();
  t.add(gt, seg, { shape: [1, 2, 2], offset: [3, 10, 20] });
  const s = neuronScores(t);
  assert.equal(s.voiSplit, 1);
  assert.equal(s.voiMerge, 0);
  // Pairs: sumA = 16, sumB = 8, sumAB = 8: precision 1, recall 1/2, F = 2/3.
  near(s.arand, 1 / 3, 'arand');
  near(s.cremi, Math.sqrt(1 / 3), 'cremi');
  assert.deepEqual(s.worstSplits, [{ id: 5, size: 4, pieces: 2, bits: 1, at: [3, 10, 20] }]);
});

test('two neurons merged: merge 1 bit, split 0', () => {
  const s = score(Uint16Array.from([1, 1, 2, 2]), Uint16Array.from([3, 3, 3, 3]), [1, 1, 4]);
  assert.equal(s.voiSplit, 0);
  assert.equal(s.voiMerge, 1);
  near(s.arand, 1 / 3, 'arand');
  assert.equal(s.worstMerges.length, 1);
  assert.deepEqual(s.worstMerges[0], { id: 3, size: 4, neurons: 2, bits: 1, at: [0, 0, 0] });
});

test('segmentation 0 voxels are singletons for the Rand error and one label for VOI', () => {
  // One neuron of 4 voxels, all on seg 0: 4 singletons, recall = 4/16.
  const s = score(Uint8Array.from([1, 1, 1, 1]), Uint8Array.from([0, 0, 0, 0]), [1, 1, 4]);
  near(s.randPrecision, 1, 'precision');
  near(s.randRecall, 0.25, 'recall');
  near(s.arand, 1 - 0.4, 'arand');
  assert.equal(s.voiSplit, 0);
});

test('ground-truth 0 voxels are ignored; another background id can be named', () => {
  const a = score(Uint32Array.from([1, 1, 0, 0]), Uint32Array.from([1, 1, 1, 2]), [1, 1, 4]);
  assert.equal(a.voxels, 2);
  assert.equal(a.voiSplit + a.voiMerge + a.arand, 0);
  const big = 2n ** 64n - 1n;
  const b = score(BigUint64Array.from([0n, 0n, big, big]), BigUint64Array.from([4n, 4n, 4n, 5n]), [1, 1, 4], { background: big });
  assert.equal(b.voxels, 2);
  assert.equal(b.voiSplit + b.voiMerge + b.arand, 0);
});

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('random volumes agree with the voxel-pair brute force to 1e-9', () => {
  const rnd = random(42);
  for (let trial = 0; trial < 20; trial++) {
    const shape: Shape = [2 + (trial % 3), 5, 6];
    const n = shape[0] * shape[1] * shape[2];
    const gtLabels = 1 + (trial % 5);
    const segLabels = 1 + ((trial * 3) % 7);
    const gt = Array.from({ length: n }, () => Math.floor(rnd() * (gtLabels + 1)));
    const seg = Array.from({ length: n }, () => Math.floor(rnd() * (segLabels + 1)));
    const s = score(Uint32Array.from(gt), Uint32Array.from(seg), shape);
    const b = bruteForce(gt, seg);
    if (!gt.some((g) => g !== 0)) continue;
    near(s.voiSplit, b.split, `split ${trial}`);
    near(s.voiMerge, b.merge, `merge ${trial}`);
    near(s.arand, b.arand, `arand ${trial}`);
    near(s.cremi, Math.sqrt((b.split + b.merge) * b.arand), `cremi ${trial}`);
    const perNeuron = s.worstSplits.reduce((t, x) => t + x.bits, 0);
    assert.ok(perNeuron <= s.voiSplit + 1e-12);
  }
});

test('streaming z-slabs with offsets gives the whole-volume table and first voxels', () => {
  const rnd = random(7);
  const shape: Shape = [6, 8, 5];
  const n = 6 * 8 * 5;
  const gt = Uint32Array.from({ length: n }, () => Math.floor(rnd() * 4));
  const seg = Uint32Array.from({ length: n }, () => Math.floor(rnd() * 6));
  const whole = new Contingency3d();
  whole.add(gt, seg, { shape });
  const slabs = new Contingency3d();
  for (let z = 0; z < 6; z += 4) {
    const d = Math.min(4, 6 - z);
    const from = z * 40;
    slabs.add(gt.subarray(from, from + d * 40), seg.subarray(from, from + d * 40), { shape: [d, 8, 5], offset: [z, 0, 0] });
  }
  assert.deepEqual(neuronScores(slabs), neuronScores(whole));
  assert.deepEqual(slabs.rows, whole.rows);
  assert.deepEqual(slabs.columns, whole.columns);
});

test('uint64 ids above 2^53 stay apart (no rounding onto each other)', () => {
  const a = 2n ** 60n;
  const b = a + 1n; // Number(a) === Number(b)
  assert.equal(Number(a), Number(b));
  const gt = BigUint64Array.from([a, a, b, b]);
  const same = score(gt, BigUint64Array.from([b, b, a, a]), [1, 1, 4]);
  assert.equal(same.voi, 0);
  assert.equal(same.arand, 0);
  const merged = score(gt, BigUint64Array.from([a, a, a, a]), [1, 1, 4]);
  assert.equal(merged.voiMerge, 1);
  assert.equal(merged.worstMerges[0]!.id, a);
  // A small id from a uint64 array is the same id as from a uint32 array.
  const mixed = new Contingency3d();
  mixed.add(BigUint64Array.from([3n, 3n]), Uint32Array.from([1, 1]), { shape: [1, 1, 2] });
  mixed.add(Uint32Array.from([3, 3]), BigUint64Array.from([1n, 1n]), { shape: [1, 1, 2] });
  assert.equal(mixed.rows.size, 1);
  assert.equal(mixed.columns.size, 1);
});

test('a block whose arrays do not fit its shape is refused', () => {
  const t = new Contingency3d();
  assert.throws(() => t.add(new Uint32Array(3), new Uint32Array(4), { shape: [1, 2, 2] }), refused('mismatch'));
  assert.throws(() => t.add(Int32Array.from([-1]), Int32Array.from([1]), { shape: [1, 1, 1] }), refused('invalid-data', 'labels'));
});

test('border mask: boundary pixels and those within the radius, per section, the section edge no boundary', () => {
  // Section 0: labels 1 | 2 split between x = 2 and x = 3 (width 6); section 1: one label (nothing masked).
  const gt = Uint32Array.from([
    1, 1, 1, 2, 2, 2,
    1, 1, 1, 2, 2, 2,
    1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1,
  ]);
  const zero = borderMask(gt, [2, 2, 6], 0);
  assert.deepEqual([...zero.subarray(0, 12)], [0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0]);
  assert.deepEqual([...zero.subarray(12)], new Array(12).fill(0));
  const one = borderMask(gt, [1, 2, 6], 1);
  assert.deepEqual([...one], [0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
  // Radius 1.5 reaches the diagonal neighbours (distance sqrt 2), not distance 2.
  const square = new Uint32Array(25);
  square[12] = 1;
  const r = borderMask(square, [1, 5, 5], 1.5);
  // Boundary: the centre and its 4-neighbours; within 1.5 of them: the 5x5 minus the corners.
  assert.deepEqual([...r], [0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0]);
  // Masked voxels are left out of the scores: the split along the border disappears.
  const seg = Uint32Array.from([1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
  const s = score(Uint32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), seg, [1, 2, 6], { exclude: borderMask(Uint32Array.from([1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]), [1, 2, 6], 0) });
  assert.equal(s.voxels, 8);
});
