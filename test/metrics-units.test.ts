// Hand-checked cases for the pieces of the ISBI metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEmsegError, type EmsegErrorCode } from '../src/errors.js';
import type { ImageStack } from '../src/image/stack.js';
import { precisionRecall } from '../src/metrics/classification.js';
import { evaluateStacks, javaThresholds, labelComponents4, thinnedSegmentation, warpingErrorLocations } from '../src/metrics/index.js';
import { SIMPLE, isSimplePoint } from '../src/metrics/simple-point.js';
import { WatershedThinner } from '../src/metrics/watershed.js';

/** A one-slice stack from rows of text: '#' = 1, '.' = 0. */
function image(rows: string[]): { width: number; height: number; data: Uint8Array } {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((row, y) => [...row].forEach((c, x) => (data[y * width + x] = c === '#' ? 1 : 0)));
  return { width, height, data };
}
const gtStack = (rows: string[]): ImageStack<Uint8Array> => {
  const { width, height, data } = image(rows);
  return { width, height, depth: 1, data: data.map((v) => v * 255) };
};
const proposalStack = (rows: string[]): ImageStack<Float32Array> => {
  const { width, height, data } = image(rows);
  return { width, height, depth: 1, data: Float32Array.from(data) };
};
const close = (a: number | undefined, b: number, what: string): void =>
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: got ${a}, expected ${b}`);

test('thresholds follow the accumulated Java double loop', () => {
  const t = javaThresholds(1.0);
  assert.equal(t.length, 11);
  assert.equal(t[3], 0.30000000000000004);
  assert.equal(t[8], 0.7999999999999999);
  assert.equal(t[10], 0.9999999999999999);
  assert.deepEqual(javaThresholds(0.9), t.slice(0, 10));
});

test('precision and recall follow the Fiji conventions', () => {
  assert.deepEqual(precisionRecall(0, 0, 0), { precision: 1, recall: 1, fscore: 1 });
  assert.deepEqual(precisionRecall(0, 3, 4), { precision: 0, recall: 0, fscore: 0 });
  const s = precisionRecall(6, 2, 0);
  assert.equal(s.precision, 0.75);
  assert.equal(s.recall, 1);
  close(s.fscore, 6 / 7, 'F');
});

test('components are 4-connected, on non-square images', () => {
  const { width, height, data } = image(['#.#', '.#.', '##.', '..#', '#.#']);
  const { labels, count } = labelComponents4(data, width, height);
  assert.equal(count, 5);
  assert.equal(labels[4], labels[7]); // (1,1) and (1,2) touch by an edge
  assert.equal(labels[6], labels[7]);
  assert.equal(labels[11], labels[14]); // (2,3) and (2,4)
  assert.notEqual(labels[0], labels[4]); // diagonal contact does not connect
  assert.notEqual(labels[7], labels[11]);
  assert.equal(labels[1], 0);
});

test('simple points: (4, 8) topology', () => {
  const at = (rows: string[]): boolean => {
    const { width, height, data } = image(rows);
    return isSimplePoint(data, width, height, 1, 1);
  };
  assert.equal(at(['...', '.#.', '...']), false, 'isolated pixel: removing it deletes an object');
  assert.equal(at(['...', '...', '...']), false, 'empty ring: adding a pixel creates an object');
  assert.equal(at(['...', '##.', '...']), true, 'end of a line');
  assert.equal(at(['...', '###', '...']), false, 'middle of a line: removing it splits');
  assert.equal(at(['###', '###', '###']), false, 'interior: removing it makes a hole');
  assert.equal(at(['#..', '...', '...']), false, 'diagonal only: foreground is 4-connected, so adding joins nothing');
  assert.equal(at(['##.', '#..', '...']), true, 'corner of a blob');
  assert.equal(at(['#.#', '...', '...']), false, 'two diagonal pieces');
  assert.equal(at(['.#.', '#.#', '.#.']), false, 'filling would close a background cavity');
  assert.equal(at(['##.', '#..', '..#']), true, 'a diagonal-only neighbour is a separate object');
  // The table is invariant under rotating the ring by 90 degrees (2 positions).
  for (let c = 0; c < 256; c++) assert.equal(SIMPLE[((c << 2) | (c >> 6)) & 0xff], SIMPLE[c], `rotation of ${c}`);
  // Pixels outside the image count as background.
  assert.equal(isSimplePoint(image(['##', '##']).data, 2, 2, 0, 0), true);
});

test('watershed thinning: the line follows the column-major tie order', () => {
  const thin = (rows: string[]): Int32Array => {
    const { width, height, data } = image(rows); // '#' = membrane
    const out = new Int32Array(width * height);
    new WatershedThinner().thin(data, width, height, out);
    return out;
  };
  // A 2-pixel membrane between two basins: the left column joins the left basin (it is
  // queued first), the right column becomes the line.
  assert.deepEqual([...thin(['..##..', '..##..', '..##..'])], [1, 1, 1, 0, 2, 2, 1, 1, 1, 0, 2, 2, 1, 1, 1, 0, 2, 2]);
  // A 1-pixel membrane stays a line.
  assert.deepEqual([...thin(['..#..', '..#..'])], [1, 1, 0, 2, 2, 1, 1, 0, 2, 2]);
  // No membrane, or only membrane: one segment.
  assert.deepEqual([...thin(['...', '...'])], [1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...thin(['##', '##', '##'])], [1, 1, 1, 1, 1, 1]);
  // Membrane enclosed by one basin is absorbed without a line.
  assert.deepEqual([...thin(['...', '.#.', '...'])], [1, 1, 1, 1, 1, 1, 1, 1, 1]);
});

// T1 = {(0,0), (1,0), (0,1)}, T2 = {(2,1), (1,2), (2,2)}; n = 6.
const GT_3x3 = ['##.', '#.#', '.##'];

test('foreground-restricted Rand by hand on 3x3: a split', () => {
  // The proposal cuts (0,1) off T1: S1 = {(0,0),(1,0)}, S2 = T2, and (0,1) is a singleton.
  // tp = 2^2 + 3^2 + 1 = 14, fp = (2^2 + 3^2 + 1) - 14 = 0, fn = (3^2 + 3^2) - 14 = 4.
  const r = evaluateStacks(gtStack(GT_3x3), proposalStack(['##.', '..#', '.##']));
  close(r.per_threshold.rand_merge?.[5], 1, 'merge');
  close(r.per_threshold.rand_split?.[5], 14 / 18, 'split');
  close(r.rand_error, 1 - 14 / 16, 'rand_error');
  // Thinning floods the cut pixel back into S1, so V_rand and V_info see no error.
  close(r.v_rand, 1, 'v_rand');
  close(r.v_info, 1, 'v_info');
});

test('foreground-restricted Rand by hand on 3x3: a merge', () => {
  // Everything foreground: one proposal segment holding both T segments.
  // tp = 3^2 + 3^2 = 18, fp = 6^2 - 18 = 18, fn = 18 - 18 = 0: P = 1/2, R = 1.
  const r = evaluateStacks(gtStack(GT_3x3), proposalStack(['###', '###', '###']));
  close(r.per_threshold.rand_merge?.[0], 0.5, 'merge');
  close(r.per_threshold.rand_split?.[0], 1, 'split');
  close(r.rand_error, 1 / 3, 'rand_error');
  close(r.v_rand, 2 / 3, 'v_rand');
  close(r.per_slice.v_rand_merge?.[0][0], 0.5, 'per-slice merge');
  // H(T) = ln 2, H(S) = 0: Fiji scores (merge, split) = (1, 0), so V_info = 0.
  close(r.v_info, 0, 'v_info');
  // Pixel counts: 6 tp, 3 fp.
  assert.equal(r.per_threshold.pixel_tp?.[0], 6);
  assert.equal(r.per_threshold.pixel_fp?.[0], 3);
  close(r.pixel_error, 1 - (2 * (6 / 9)) / (6 / 9 + 1), 'pixel_error');
});

test('warping error: a bridge between two objects is one merger', () => {
  const gt = gtStack(['###.###', '###.###', '###.###']);
  const r = evaluateStacks(gt, proposalStack(['###.###', '#######', '###.###']), { metrics: ['warping_error'] });
  assert.deepEqual(r.per_threshold.warping_mergers, new Array(10).fill(1));
  assert.deepEqual(r.per_threshold.warping_splits, new Array(10).fill(0));
  assert.equal(r.warping_error, 1 / 21);
});

test('warping error: a cut through one object is one split after warping', () => {
  // The top two pixels of the cut are simple and get warped away; (3, 2) is not, and removing
  // it disconnects the two halves (the image is narrower than the window: whole-image case).
  const gt = gtStack(['#######', '#######', '#######']);
  const proposal = proposalStack(['###.###', '###.###', '###.###']);
  const r = evaluateStacks(gt, proposal, { metrics: ['warping_error'] });
  assert.deepEqual(r.per_threshold.warping_splits, new Array(10).fill(1));
  assert.deepEqual(r.per_threshold.warping_mergers, new Array(10).fill(0));
  assert.deepEqual(warpingErrorLocations(gt, proposal, 0, 0.5), { splits: [{ x: 3, y: 2 }], mergers: [] });
});

test('warping error: a cut inside a large image uses the 41 x 41 window', () => {
  // 60 x 30 object cut by a full-height line at x = 30: only the last pixel of the cut stays.
  const rows = Array.from({ length: 30 }, () => '#'.repeat(60));
  const cut = rows.map((r) => r.slice(0, 30) + '.' + r.slice(31));
  const located = warpingErrorLocations(gtStack(rows), proposalStack(cut), 0, 0.5);
  assert.deepEqual(located, { splits: [{ x: 30, y: 29 }], mergers: [] });
});

test('tiny and non-square sections work', () => {
  for (const [w, h, d] of [[1, 1, 1], [1, 7, 2], [9, 1, 1], [2, 3, 3], [17, 5, 2]]) {
    const n = w * h * d;
    const gt = { width: w, height: h, depth: d, data: Uint8Array.from({ length: n }, (_, i) => ((i * 7) % 5 === 0 ? 0 : 255)) };
    const proposal = { width: w, height: h, depth: d, data: Float32Array.from({ length: n }, (_, i) => ((i * 13) % 11) / 10) };
    const r = evaluateStacks(gt, proposal);
    for (const m of ['pixel_error', 'rand_error', 'warping_error', 'v_rand', 'v_info'] as const) {
      const v = r[m];
      assert.ok(v !== undefined && v >= 0 && v <= 1 + 1e-12, `${w}x${h}x${d} ${m} = ${v}`);
    }
    assert.equal(r.per_slice.v_rand?.[0].length, d);
    const seg = thinnedSegmentation(proposal, d - 1, 0.5);
    assert.equal(seg.labels.length, w * h);
  }
});

test('a slice without ground-truth foreground has no V_rand/V_info and no Rand pairs', () => {
  const gt: ImageStack<Uint8Array> = { width: 3, height: 3, depth: 2, data: new Uint8Array(18) };
  gt.data.fill(255, 9);
  const proposal: ImageStack<Float32Array> = { width: 3, height: 3, depth: 2, data: new Float32Array(18).fill(1) };
  const r = evaluateStacks(gt, proposal);
  assert.ok(Number.isNaN(r.per_slice.v_rand?.[0][0]));
  assert.equal(r.per_slice.v_rand?.[0][1], 1);
  assert.equal(r.v_rand, 1);
  assert.equal(r.rand_error, 0);
});

/** An EmsegError of `code` about `path` (the argument), naming `where` (the first bad pixel) when given. */
const refused = (code: EmsegErrorCode, path: string, where?: string) => (e: unknown) =>
  isEmsegError(e, code) && e.path === path && (where === undefined || e.message.includes(where));

test('input validation names sizes and the first bad pixel', () => {
  const gt: ImageStack<Uint8Array> = { width: 4, height: 3, depth: 2, data: new Uint8Array(24).fill(255) };
  const good: ImageStack<Float32Array> = { width: 4, height: 3, depth: 2, data: new Float32Array(24).fill(0.5) };
  assert.throws(() => evaluateStacks(gt, { ...good, width: 3, height: 4 }), refused('mismatch', 'proposal'));
  assert.throws(() => evaluateStacks(gt, { ...good, depth: 1, data: new Float32Array(12) }), refused('mismatch', 'proposal'));
  const withNaN = new Float32Array(good.data);
  withNaN[12 + 4 + 2] = NaN;
  assert.throws(() => evaluateStacks(gt, { ...good, data: withNaN }), refused('invalid-data', 'proposal', 'slice 1, pixel (2, 1)'));
  const tooBig = new Float32Array(good.data);
  tooBig[5] = 1.5;
  tooBig[20] = -0.1;
  assert.throws(() => evaluateStacks(gt, { ...good, data: tooBig }), refused('invalid-data', 'proposal', 'slice 0, pixel (1, 1)'));
  const badGt = { ...gt, data: new Float32Array(24).fill(1) };
  badGt.data[3] = NaN;
  assert.throws(() => evaluateStacks(badGt, good), refused('invalid-data', 'ground truth', 'slice 0, pixel (3, 0)'));
  badGt.data[3] = -1;
  assert.throws(() => evaluateStacks(badGt, good), refused('invalid-data', 'ground truth', 'slice 0, pixel (3, 0)'));
  assert.throws(() => evaluateStacks(gt, { ...good, data: new Float32Array(23) }), refused('mismatch', 'proposal'));
  assert.throws(() => evaluateStacks({ ...gt, width: 0, data: new Uint8Array(0) }, good), refused('invalid-option', 'ground truth'));
  assert.throws(() => evaluateStacks(gt, good, { metrics: ['rand' as never] }), refused('invalid-option', 'metrics'));
  assert.throws(() => warpingErrorLocations(gt, good, 2, 0.5), refused('invalid-option', 'slice'));
  assert.throws(() => thinnedSegmentation({ ...good, data: withNaN }, 1, 0.5), refused('invalid-data', 'proposal', 'slice 1, pixel (2, 1)'));
  assert.doesNotThrow(() => thinnedSegmentation({ ...good, data: withNaN }, 0, 0.5));
});
