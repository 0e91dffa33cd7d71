// Cross-checks the optimised metrics against literal, slow re-statements of the reference
// algorithms on small random sections: warping re-collects and re-sorts every mismatch on every
// pass and labels a fresh 41 x 41 window per mismatch; Rand and V_info count pixel pairs and
// entropies directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { precisionRecall } from '../src/metrics/classification.js';
import { evaluateStacks, javaThresholds, thinnedSegmentation } from '../src/metrics/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Voronoi cells separated by 1-2 pixel membranes (0), interiors 1; proposal = noisy version. */
function randomSection(width: number, height: number, seed: number): { gt: Uint8Array; proposal: Float32Array } {
  const random = rng(seed);
  const seeds = Array.from({ length: Math.max(2, Math.round((width * height) / 90)) }, () => [random() * width, random() * height]);
  const owner = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let bestD = Infinity;
      seeds.forEach(([sx, sy], k) => {
        const d = Math.abs(sx - x) + Math.abs(sy - y);
        if (d < bestD) {
          bestD = d;
          owner[y * width + x] = k;
        }
      });
    }
  }
  const gt = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const edge = (x + 1 < width && owner[i + 1] !== owner[i]) || (y + 1 < height && owner[i + width] !== owner[i]);
      gt[i] = edge ? 0 : 1;
    }
  }
  const proposal = Float32Array.from(gt, (g) => Math.min(1, Math.max(0, 0.15 + 0.7 * g + (random() - 0.5) * 0.8)));
  return { gt, proposal };
}

/** Plain BFS labelling of the cells where `fg(i)`; `conn8` for 8-connectivity. */
function naiveLabels(width: number, height: number, fg: (i: number) => boolean): Int32Array {
  const labels = new Int32Array(width * height);
  let next = 0;
  for (let s = 0; s < labels.length; s++) {
    if (!fg(s) || labels[s] !== 0) continue;
    labels[s] = ++next;
    const queue = [s];
    while (queue.length > 0) {
      const p = queue.shift()!;
      const x = p % width;
      const y = Math.floor(p / width);
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        const q = ny * width + nx;
        if (nx >= 0 && ny >= 0 && nx < width && ny < height && fg(q) && labels[q] === 0) {
          labels[q] = next;
          queue.push(q);
        }
      }
    }
  }
  return labels;
}

/** T4 == 1 and T8 == 1 from the 3 x 3 patch, by labelling the patch without its centre. */
function naiveSimple(patch: number[]): boolean {
  const count = (value: number, conn8: boolean, direct: boolean): number => {
    const cells = [0, 1, 2, 3, 5, 6, 7, 8].filter((i) => patch[i] === value);
    const comp = new Map<number, number>();
    let n = 0;
    for (const c of cells) {
      if (comp.has(c)) continue;
      comp.set(c, n);
      const stack = [c];
      while (stack.length > 0) {
        const a = stack.pop()!;
        for (const b of cells) {
          const dx = Math.abs((a % 3) - (b % 3));
          const dy = Math.abs(Math.floor(a / 3) - Math.floor(b / 3));
          if (!comp.has(b) && (conn8 ? dx <= 1 && dy <= 1 : dx + dy === 1)) {
            comp.set(b, n);
            stack.push(b);
          }
        }
      }
      n++;
    }
    return new Set(cells.filter((c) => !direct || [1, 3, 5, 7].includes(c)).map((c) => comp.get(c))).size;
  };
  return count(1, false, true) === 1 && count(0, true, false) === 1;
}

/** The reference warping and classification, step by step. */
function naiveWarping(gt: Uint8Array, proposal: Float32Array, width: number, height: number, th: number): { splits: number; mergers: number } {
  const L = Array.from(gt, (g) => (g !== 0 ? 1 : 0));
  const at = (img: number[], x: number, y: number): number => (x >= 0 && y >= 0 && x < width && y < height ? img[y * width + x] : 0);
  const B = Array.from(proposal, (v) => (v > th ? 1 : 0));
  let diffBefore = -1;
  for (;;) {
    const mismatches: Array<{ x: number; y: number; k: number }> = [];
    for (let x = 0; x < width; x++) {
      for (let y = 0; y < height; y++) {
        if (L[y * width + x] !== B[y * width + x]) mismatches.push({ x, y, k: Math.fround(Math.abs(proposal[y * width + x] - th)) });
      }
    }
    if (mismatches.length === 0 || mismatches.length === diffBefore) break;
    diffBefore = mismatches.length;
    mismatches.sort((a, b) => b.k - a.k);
    for (const { x, y } of mismatches) {
      const patch = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => at(L, x + dx, y + dy)));
      if (naiveSimple(patch)) L[y * width + x] ^= 1;
    }
  }
  const C = naiveLabels(width, height, (i) => L[i] === 1);
  let splits = 0;
  let mergers = 0;
  const r = 20;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (L[y * width + x] === B[y * width + x]) continue;
      const c = C[y * width + x];
      const N = new Set<number>();
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if ((dx || dy) && nx >= 0 && ny >= 0 && nx < width && ny < height) N.add(C[ny * width + nx]);
        }
      }
      if (N.size >= 3) {
        if (c === 0) mergers++;
        else splits++;
      } else if (N.size === 2 && c !== 0) {
        const whole = r > width || r > height;
        const ww = whole ? width : 2 * r + 1;
        const wh = whole ? height : 2 * r + 1;
        const ox = whole ? 0 : x - r;
        const oy = whole ? 0 : y - r;
        const win = Array.from({ length: ww * wh }, (_, i) => at(L, ox + (i % ww), oy + Math.floor(i / ww)));
        win[(y - oy) * ww + (x - ox)] = 0;
        const W = naiveLabels(ww, wh, (i) => win[i] === 1);
        const labels = new Set<number>();
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const wx = x - ox + dx;
            const wy = y - oy + dy;
            if ((dx || dy) && wx >= 0 && wy >= 0 && wx < ww && wy < wh) labels.add(W[wy * ww + wx]);
          }
        }
        if (labels.size > 2) splits++;
      }
    }
  }
  return { splits, mergers };
}

/** Ordered pixel pairs (self-pairs included) over ground-truth foreground, singletons unique. */
function naiveRand(gt: Uint8Array, proposal: Float32Array, width: number, height: number, th: number): { tp: number; fp: number; fn: number } {
  const T = naiveLabels(width, height, (i) => gt[i] !== 0);
  const S = naiveLabels(width, height, (i) => proposal[i] > th);
  const fg = [...T.keys()].filter((i) => T[i] !== 0);
  const sOf = (i: number): number => (S[i] !== 0 ? S[i] : -1 - i);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const a of fg) {
    for (const b of fg) {
      const sameT = T[a] === T[b];
      const sameS = sOf(a) === sOf(b);
      if (sameT && sameS) tp++;
      else if (sameS) fp++;
      else if (sameT) fn++;
    }
  }
  return { tp, fp, fn };
}

const SIZES: Array<[number, number, number]> = [
  [24, 17, 1],
  [13, 30, 2],
  [45, 50, 3],
  [50, 43, 4],
];

test('warping counts equal a literal re-statement of the reference (all thresholds)', (t) => {
  let splits = 0;
  let mergers = 0;
  for (const [width, height, seed] of SIZES) {
    const { gt, proposal } = randomSection(width, height, seed);
    const r = evaluateStacks({ width, height, depth: 1, data: gt }, { width, height, depth: 1, data: proposal }, { metrics: ['warping_error'] });
    javaThresholds(0.9).forEach((th, i) => {
      const expected = naiveWarping(gt, proposal, width, height, th);
      const what = `${width}x${height} seed ${seed} threshold ${th}`;
      assert.equal(r.per_threshold.warping_splits?.[i], expected.splits, `${what}: splits`);
      assert.equal(r.per_threshold.warping_mergers?.[i], expected.mergers, `${what}: mergers`);
      splits += expected.splits;
      mergers += expected.mergers;
    });
  }
  // Guard against the random sections becoming trivial.
  t.diagnostic(`${splits} splits and ${mergers} mergers checked`);
  assert.ok(splits > 20 && mergers > 20);
});

test('Rand scores equal direct pair counting with singletons', () => {
  for (const [width, height, seed] of SIZES.slice(0, 3)) {
    const { gt, proposal } = randomSection(width, height, seed);
    const r = evaluateStacks({ width, height, depth: 1, data: gt }, { width, height, depth: 1, data: proposal }, { metrics: ['rand_error'] });
    javaThresholds(1.0).forEach((th, t) => {
      const { tp, fp, fn } = naiveRand(gt, proposal, width, height, th);
      const expected = precisionRecall(tp, fp, fn);
      const what = `${width}x${height} threshold ${th}`;
      assert.ok(Math.abs((r.per_threshold.rand_merge?.[t] ?? NaN) - expected.precision) < 1e-12, `${what}: merge`);
      assert.ok(Math.abs((r.per_threshold.rand_split?.[t] ?? NaN) - expected.recall) < 1e-12, `${what}: split`);
      assert.ok(Math.abs((r.per_threshold.rand_fscore?.[t] ?? NaN) - expected.fscore) < 1e-12, `${what}: F`);
    });
  }
});

test('V_info equals entropies computed from the joint histogram', () => {
  const [width, height, seed] = SIZES[2];
  const { gt, proposal } = randomSection(width, height, seed);
  const r = evaluateStacks({ width, height, depth: 1, data: gt }, { width, height, depth: 1, data: proposal }, { metrics: ['v_info'] });
  // Score the segmentation V_info sees: the watershed-thinned proposal, lines as singletons.
  const T = naiveLabels(width, height, (i) => gt[i] !== 0);
  javaThresholds(1.0).forEach((th, t) => {
    const { labels: S } = thinnedSegmentation({ width, height, depth: 1, data: proposal }, 0, th);
    const joint = new Map<string, number>();
    const tCount = new Map<number, number>();
    const sCount = new Map<number, number>();
    let n = 0;
    T.forEach((ti, i) => {
      if (ti === 0) return;
      n++;
      const s = S[i] !== 0 ? S[i] : -1 - i;
      joint.set(`${ti},${s}`, (joint.get(`${ti},${s}`) ?? 0) + 1);
      tCount.set(ti, (tCount.get(ti) ?? 0) + 1);
      sCount.set(s, (sCount.get(s) ?? 0) + 1);
    });
    const H = (counts: Iterable<number>): number => [...counts].reduce((h, c) => h - (c / n) * Math.log(c / n), 0);
    const hT = H(tCount.values());
    const hS = H(sCount.values());
    const I = hT + hS - H(joint.values());
    const expected = hT === 0 || hS === 0 ? 0 : (2 * I) / (hT + hS);
    const actual = r.per_threshold.v_info?.[t] ?? NaN;
    assert.ok(Math.abs(actual - expected) < 1e-12, `threshold ${th}: V_info ${actual}, expected ${expected}`);
  });
});
