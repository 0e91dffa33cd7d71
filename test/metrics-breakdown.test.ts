// The warping error broken down by kind: small cases whose answer is known, and agreement with the metric itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEmsegError } from '../src/errors.js';
import type { ImageStack } from '../src/image/stack.js';
import { BREAKDOWN_KINDS, evaluateStacks, warpingBreakdown, type BreakdownCounts } from '../src/metrics/index.js';
import { Rng } from '../src/util/rng.js';

/** A one-slice stack from rows of text: '#' = cell interior, '.' = membrane; labels 0/255, proposal 0/1. */
function stack(rows: string[], high: number): ImageStack<Float32Array> {
  const height = rows.length;
  const width = rows[0]!.length;
  const data = new Float32Array(width * height);
  rows.forEach((row, y) => [...row].forEach((c, x) => (data[y * width + x] = c === '#' ? high : 0)));
  return { width, height, depth: 1, data };
}
const gt = (rows: string[]) => stack(rows, 255);
const proposal = (rows: string[]) => stack(rows, 1);

/** The counts that are not listed in `expected` must be 0. */
function assertCounts(actual: BreakdownCounts, expected: Partial<BreakdownCounts>): void {
  for (const k of BREAKDOWN_KINDS) assert.equal(actual[k], expected[k] ?? 0, `${k}: ${JSON.stringify(actual)}`);
}

const TWO_CELLS = [
  '............',
  '.#####.####.',
  '.#####.####.',
  '.#####.####.',
  '.#####.####.',
  '.#####.####.',
  '............',
];
const TWO_CELLS_WITH_GAP = [
  '............',
  '.#####.####.',
  '.##########.',
  '.##########.',
  '.##########.',
  '.#####.####.',
  '............',
];

test('a missing piece of boundary between two cells is a gap, one merger pixel per missing pixel', () => {
  const b = warpingBreakdown(gt(TWO_CELLS), proposal(TWO_CELLS_WITH_GAP), 0.5, 20);
  assertCounts(b.total, { gap: 3, merged_pairs: 1 });
  assert.deepEqual(b.sections, [b.total]);
});

test('the same gap next to a cell smaller than small-cell-area is a small cell merged', () => {
  // The right cell has 4 x 5 = 20 pixels.
  assertCounts(warpingBreakdown(gt(TWO_CELLS), proposal(TWO_CELLS_WITH_GAP), 0.5, 21).total, { small_cell: 3, merged_pairs: 1 });
  assertCounts(warpingBreakdown(gt(TWO_CELLS), proposal(TWO_CELLS_WITH_GAP), 0.5, 20).total, { gap: 3, merged_pairs: 1 });
});

const ONE_CELL = [
  '.............',
  '.###########.',
  '.###########.',
  '.###########.',
  '.###########.',
  '.###########.',
  '.###########.',
  '.###########.',
  '.............',
];

test('a false membrane from boundary to boundary across a cell is a false boundary', () => {
  const cut = ONE_CELL.map((row) => `${row.slice(0, 6)}.${row.slice(7)}`);
  // Both parts have 5 x 7 = 35 pixels: small pieces below 36, a false boundary from 35 on.
  assertCounts(warpingBreakdown(gt(ONE_CELL), proposal(cut), 0.5, 35).total, { false_boundary: 1 });
  assertCounts(warpingBreakdown(gt(ONE_CELL), proposal(cut), 0.5, 36).total, { small_piece: 1 });
});

test('a closed contour floating inside a cell is a speck: warping cannot create a hole, so the metric ignores it', () => {
  const ring = [...ONE_CELL];
  ring[3] = '.####...####.';
  ring[4] = '.####.#.####.';
  ring[5] = '.####...####.';
  assertCounts(warpingBreakdown(gt(ONE_CELL), proposal(ring), 0.5).total, { speck: 1 });
});

test('a membrane speck inside a cell is a speck, which the warping error does not count', () => {
  const speck = [...ONE_CELL];
  speck[4] = '.#####..####.';
  const b = warpingBreakdown(gt(ONE_CELL), proposal(speck), 0.5);
  assertCounts(b.total, { speck: 1 }); // one speck of two pixels
  assert.equal(evaluateStacks(gt(ONE_CELL), proposal(speck), { metrics: ['warping_error'] }).warping_error, 0);
});

test('a labelled cell that is all membrane in the proposal is a missed cell; the reverse an extra blob', () => {
  const membrane = Array.from({ length: 8 }, () => '..........');
  const small = membrane.map((r, y) => (y === 4 || y === 5 ? '...##.....' : r));
  assertCounts(warpingBreakdown(gt(small), proposal(membrane), 0.5).total, { missed_cell: 1 });
  assertCounts(warpingBreakdown(gt(membrane), proposal(small), 0.5).total, { extra_blob: 1 });
});

test('the counted kinds add up to the splits and mergers of the warping error at every threshold', () => {
  // Cells on a grid with noisy membranes, so that every kind of event occurs.
  const width = 96;
  const height = 80;
  const rng = new Rng(7);
  const labels = new Float32Array(width * height);
  const map = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const membrane = x % 16 < 2 || y % 13 < 2 || (x + 2 * y) % 37 === 0;
      labels[y * width + x] = membrane ? 0 : 255;
      map[y * width + x] = Math.min(1, Math.max(0, (membrane ? 0.25 : 0.75) + 0.45 * rng.normal() * rng.next()));
    }
  }
  const g = { width, height, depth: 1, data: labels };
  const p = { width, height, depth: 1, data: map };
  const r = evaluateStacks(g, p, { metrics: ['warping_error'] });
  let sawBoth = false;
  r.warping_thresholds.forEach((th, t) => {
    const b = warpingBreakdown(g, p, th).total;
    assert.equal(b.gap + b.small_cell, r.per_threshold.warping_mergers![t], `mergers at ${th}`);
    assert.equal(b.false_boundary + b.small_piece, r.per_threshold.warping_splits![t], `splits at ${th}`);
    if (b.gap + b.small_cell > 0 && b.false_boundary > 0) sawBoth = true;
  });
  assert.ok(sawBoth, 'the noisy case should produce both splits and mergers');
});

test('a small-cell area that is not a positive whole number is refused, naming the option', () => {
  assert.throws(() => warpingBreakdown(gt(ONE_CELL), proposal(ONE_CELL), 0.5, 0),
    (e: unknown) => isEmsegError(e, 'invalid-option') && e.path === 'smallCellArea');
});
