/**
 * The warping error broken down by kind of topological event, to see which kind a post-processing step or a
 * training change should remove. It does not change the metric: the split and merger pixels are exactly those
 * `WarpingErrorCounter.count` counts, each assigned to one sub-kind; the mismatches the metric ignores are
 * counted beside them. Definitions (docs/MODELS.md, "The warping error by kind"), all at one threshold of the
 * proposal:
 *
 * - gap: a merger pixel between two labelled cells of at least `smallCellArea` pixels (a missing piece of
 *   boundary joins two ordinary cells; costs about one pixel per pixel of missing boundary length);
 * - small cell: a merger pixel next to a labelled cell smaller than `smallCellArea` (a small cell not outlined);
 * - small piece: a split pixel next to a piece of the proposal smaller than `smallCellArea` (a 4-connected
 *   non-membrane component of the thresholded proposal touching the pixel's 8-neighbourhood): a small part of a
 *   cell (often an organelle against the cell membrane) outlined as a cell of its own;
 * - false boundary: any other split pixel: a false membrane, attached to the true ones or the image edge, cuts a
 *   cell into large parts. (A contour floating inside a cell is never a split: warping cannot create a hole, so
 *   its pixels are specks below.)
 * - not counted by the metric, as events (8-connected clusters of the mismatches left): speck (membrane inside a
 *   cell: a hole added, including floating closed contours), missed cell (a labelled cell that is all membrane in
 *   the proposal), extra blob (non-membrane inside a labelled membrane), filled hole, other.
 *
 * `merged_pairs` counts the distinct pairs of warped cells that merger pixels join (events rather than pixels).
 */
import { EmsegError } from '../errors.js';
import { sliceOf, type ImageStack } from '../image/stack.js';
import { ComponentLabeller } from '../image/components.js';
import { validateInputs } from './validate.js';
import { MismatchKind, WarpingErrorCounter } from './warping.js';

/** Labelled cells smaller than this (pixels) count as small cells: at 4 nm/px, about 0.0064 um^2 (a thin neurite in cross-section). */
export const DEFAULT_SMALL_CELL_AREA = 400;

export interface BreakdownCounts {
  gap: number;
  small_cell: number;
  false_boundary: number;
  small_piece: number;
  /** Distinct pairs of cells joined by merger pixels (gap and small-cell events). */
  merged_pairs: number;
  speck: number;
  missed_cell: number;
  extra_blob: number;
  filled_hole: number;
  other: number;
}

export interface WarpingBreakdown {
  threshold: number;
  small_cell_area: number;
  total: BreakdownCounts;
  sections: BreakdownCounts[];
}

export const BREAKDOWN_KINDS: readonly (keyof BreakdownCounts)[] = Object.freeze([
  'gap', 'small_cell', 'false_boundary', 'small_piece', 'merged_pairs', 'speck', 'missed_cell', 'extra_blob', 'filled_hole', 'other',
]);

const zeroCounts = (): BreakdownCounts => ({
  gap: 0, small_cell: 0, false_boundary: 0, small_piece: 0, merged_pairs: 0, speck: 0, missed_cell: 0, extra_blob: 0, filled_hole: 0, other: 0,
});

const UNCOUNTED: Partial<Record<MismatchKind, keyof BreakdownCounts>> = {
  [MismatchKind.HoleAddition]: 'speck',
  [MismatchKind.ObjectDeletion]: 'missed_cell',
  [MismatchKind.ObjectAddition]: 'extra_blob',
  [MismatchKind.HoleDeletion]: 'filled_hole',
  [MismatchKind.Other]: 'other',
};

/**
 * Breakdown of the warping error at `threshold` (the proposal is foreground where value > threshold), per section
 * and in total. `gt`: nonzero = cell interior; `proposal`: P(non-membrane) in [0, 1], as `evaluateStacks` takes them.
 */
export function warpingBreakdown(gt: ImageStack, proposal: ImageStack, threshold: number,
  smallCellArea = DEFAULT_SMALL_CELL_AREA): WarpingBreakdown {
  if (!Number.isInteger(smallCellArea) || smallCellArea < 1) {
    throw new EmsegError('invalid-option', 'smallCellArea', `must be a positive whole number of pixels (got ${smallCellArea})`);
  }
  validateInputs(gt, proposal);
  const { width, height, depth } = gt;
  const counter = new WarpingErrorCounter();
  const gtFg = new Uint8Array(width * height);
  const sections: BreakdownCounts[] = [];
  for (let z = 0; z < depth; z++) {
    const g = sliceOf(gt, z);
    for (let i = 0; i < gtFg.length; i++) gtFg[i] = g[i] !== 0 ? 1 : 0;
    sections.push(sliceBreakdown(counter, gtFg, sliceOf(proposal, z), width, height, threshold, smallCellArea));
  }
  const total = zeroCounts();
  for (const s of sections) for (const k of BREAKDOWN_KINDS) total[k] += s[k];
  return { threshold, small_cell_area: smallCellArea, total, sections };
}

function sliceBreakdown(counter: WarpingErrorCounter, gtFg: Uint8Array, proposal: ArrayLike<number>, width: number,
  height: number, threshold: number, smallCellArea: number): BreakdownCounts {
  const { pixels, kinds, components } = counter.mismatches(gtFg, proposal, width, height, threshold);
  const counts = zeroCounts();
  const area = new Int32Array(maxLabel(components) + 1);
  for (const l of components) area[l]++;
  const pieceArea = proposalPieces(proposal, width, height, threshold);
  const pairs = new Set<string>();
  const uncounted = new Map<keyof BreakdownCounts, Set<number>>();
  for (let i = 0; i < pixels.length; i++) {
    const p = pixels[i]!;
    const kind = kinds[i] as MismatchKind;
    if (kind === MismatchKind.Merger) {
      const cells = neighbourCells(components, p, width, height);
      for (let a = 0; a < cells.length; a++) for (let b = a + 1; b < cells.length; b++) pairs.add(`${cells[a]},${cells[b]}`);
      if (cells.some((c) => area[c]! < smallCellArea)) counts.small_cell++;
      else counts.gap++;
    } else if (kind === MismatchKind.Split) {
      if (pieceArea(p).some((a) => a < smallCellArea)) counts.small_piece++;
      else counts.false_boundary++;
    } else {
      const k = UNCOUNTED[kind]!;
      if (!uncounted.has(k)) uncounted.set(k, new Set());
      uncounted.get(k)!.add(p);
    }
  }
  counts.merged_pairs = pairs.size;
  for (const [k, set] of uncounted) counts[k] = clusters8(set, width);
  return counts;
}

/** For a pixel, the areas of the proposal's non-membrane pieces (4-connected, value > threshold) in its 8-neighbourhood. */
function proposalPieces(proposal: ArrayLike<number>, width: number, height: number, threshold: number): (p: number) => number[] {
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = proposal[i]! > threshold ? 1 : 0;
  const labels = new Int32Array(mask.length);
  const count = new ComponentLabeller().label(mask, width, height, labels);
  const area = new Int32Array(count + 1);
  for (const l of labels) area[l]++;
  return (p) => neighbourCells(labels, p, width, height).map((l) => area[l]!);
}

/** Number of 8-connected clusters of a set of pixels. */
function clusters8(pixels: Set<number>, width: number): number {
  const seen = new Set<number>();
  let count = 0;
  for (const start of pixels) {
    if (seen.has(start)) continue;
    count++;
    seen.add(start);
    const stack = [start];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % width;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if (x + dx < 0 || x + dx >= width) continue;
          const q = p + dy * width + dx;
          if (pixels.has(q) && !seen.has(q)) {
            seen.add(q);
            stack.push(q);
          }
        }
      }
    }
  }
  return count;
}

function maxLabel(labels: Int32Array): number {
  let max = 0;
  for (const l of labels) if (l > max) max = l;
  return max;
}

/** The distinct nonzero labels of the in-image 8-neighbours of pixel p, ascending. */
function neighbourCells(components: Int32Array, p: number, width: number, height: number): number[] {
  const x = p % width;
  const y = (p / width) | 0;
  const cells = new Set<number>();
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      const nx = x + dx;
      const ny = y + dy;
      if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
      const l = components[ny * width + nx]!;
      if (l !== 0) cells.add(l);
    }
  }
  return [...cells].sort((a, b) => a - b);
}
