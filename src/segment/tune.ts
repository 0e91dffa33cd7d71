import type { ImageStack } from '../image/stack.js';
import { ISBI_POLARITY, fromMembraneInPlace, toMembraneCopy } from '../image/map-meaning.js';
import { METRIC_NAMES, evaluateStacks, type MetricName } from '../metrics/index.js';
import { closeMembraneGaps, type SegmentOptions } from './segment.js';

/** Values to try for each watershed option; the grid is every combination. */
export type SegmentGridAxes = { [K in keyof SegmentOptions]: readonly number[] };

export interface TuneRow {
  /** null: the maps as they are, without gap closing (the baseline). */
  options: SegmentOptions | null;
  scores: Partial<Record<MetricName, number>>;
}

export function segmentGrid(axes: SegmentGridAxes): SegmentOptions[] {
  const grid: SegmentOptions[] = [];
  for (const sigma of axes.sigma) {
    for (const seedThreshold of axes.seedThreshold) {
      for (const minSeedArea of axes.minSeedArea) {
        for (const mergeThreshold of axes.mergeThreshold) {
          // Without an extraSeedThreshold axis the grid points leave it out (off), as before the option existed.
          if (!axes.extraSeedThreshold) grid.push({ sigma, seedThreshold, minSeedArea, mergeThreshold });
          for (const extraSeedThreshold of axes.extraSeedThreshold ?? []) {
            grid.push({ sigma, seedThreshold, minSeedArea, mergeThreshold, extraSeedThreshold });
          }
        }
      }
    }
  }
  return grid;
}

/**
 * Scores gap closing (`closeMembraneGaps`) with every option set of `grid` against labelled sections, plus the
 * unprocessed maps as the first row. `gt`: 0 = membrane; `proposal`: P(non-membrane), as `evaluateStacks` takes them.
 */
export function tuneSegmentation(gt: ImageStack, proposal: ImageStack<Float32Array>, grid: readonly SegmentOptions[],
  o: { metrics?: MetricName[]; onProgress?: (done: number, total: number) => void } = {}): TuneRow[] {
  const metrics = o.metrics ?? [...METRIC_NAMES];
  const score = (p: ImageStack): TuneRow['scores'] => {
    const r = evaluateStacks(gt, p, { metrics });
    return Object.fromEntries(metrics.map((m) => [m, r[m]]));
  };
  const rows: TuneRow[] = [{ options: null, scores: score(proposal) }];
  o.onProgress?.(1, grid.length + 1);
  for (const options of grid) {
    rows.push({ options, scores: score(closeGapsInStack(proposal, options)) });
    o.onProgress?.(rows.length, grid.length + 1);
  }
  return rows;
}

/** `closeMembraneGaps` on every section of a P(non-membrane) stack (the metrics' ISBI proposals). */
export function closeGapsInStack(proposal: ImageStack<Float32Array>, options: SegmentOptions): ImageStack<Float32Array> {
  const { width, height, depth } = proposal;
  const n = width * height;
  const out = new Float32Array(proposal.data.length);
  for (let z = 0; z < depth; z++) {
    const pMembrane = toMembraneCopy(proposal.data.subarray(z * n, (z + 1) * n), ISBI_POLARITY);
    out.set(fromMembraneInPlace(closeMembraneGaps(pMembrane, height, width, options), ISBI_POLARITY), z * n);
  }
  return { width, height, depth, data: out };
}
