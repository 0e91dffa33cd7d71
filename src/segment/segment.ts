import { mergeWeakBoundaries, type Segmentation } from './agglomerate.js';
import { gaussianBlur } from './gaussian.js';
import { addUnseededRegions, seedRegions } from './seeds.js';
import { seededWatershed } from './watershed.js';
import { EmsegError } from '../errors.js';

export interface SegmentOptions {
  /** Gaussian sigma (px) applied to the membrane map before seeding and flooding. */
  sigma: number;
  /** Seeds are the 4-connected regions where the smoothed P(membrane) is below this. */
  seedThreshold: number;
  /** Seed regions with fewer pixels are dropped (their pixels are flooded from neighbours). */
  minSeedArea: number;
  /** Neighbouring segments whose shared boundary is weaker than this are merged (0: never; see mergeWeakBoundaries). */
  mergeThreshold: number;
  /**
   * Also seed every region of the unsmoothed map below this P(membrane) that has no seed and at least
   * `minSeedArea` pixels (0: off; see addUnseededRegions). Optional: when left out, the default applies.
   */
  extraSeedThreshold?: number;
}

/**
 * Chosen on ISBI 2012 training sections 20-22 with the shipped ensemble's maps (issue 13;
 * docs/experiments/isbi-2012-topology.md, "Extra seeds, and the new `--close-gaps` defaults"): the best V_rand of
 * an `emseg tune-segment` grid over sigma, seed threshold, merge threshold and extra seeds, and of the settings
 * within 0.0001 of it the lowest warping error; sections 23-24 were scored only afterwards. Many small seeds
 * (over-segmentation), extra seeds for thin and small cells, then merging across boundaries the network does not
 * believe in.
 */
export const DEFAULT_SEGMENT_OPTIONS: Readonly<Required<SegmentOptions>> = Object.freeze({
  sigma: 2, seedThreshold: 0.1, minSeedArea: 5, mergeThreshold: 0.6, extraSeedThreshold: 0.5,
});

/**
 * Cells of one section from its membrane probability map: seeded watershed of the smoothed map, seeds where the
 * map is confidently non-membrane, then neighbouring segments merged across weak boundaries.
 */
export function segmentSection(pMembrane: Float32Array, height: number, width: number,
  options: Partial<SegmentOptions> = {}): Segmentation {
  const o = { ...DEFAULT_SEGMENT_OPTIONS, ...options };
  if (pMembrane.length !== height * width) throw new EmsegError('mismatch', 'map', `has ${pMembrane.length} pixels, expected ${height}x${width}`);
  const smooth = gaussianBlur(pMembrane, height, width, o.sigma);
  const seeds = seedRegions(smooth, height, width, o.seedThreshold, o.minSeedArea);
  if (o.extraSeedThreshold) addUnseededRegions(seeds, pMembrane, height, width, o.extraSeedThreshold, o.minSeedArea);
  const flooded = seededWatershed(smooth, seeds, height, width);
  // No seed at all (a section that is all membrane): one segment.
  if (flooded[0] === 0) return { labels: flooded.fill(1), count: 1 };
  return mergeWeakBoundaries(flooded, pMembrane, width, o.mergeThreshold);
}

/** Pixels on the boundary between segments: those with a 4-neighbour of a higher label (a 1-px line that cuts every 4-path). */
export function segmentBoundaries(labels: Int32Array, height: number, width: number): Uint8Array {
  const n = height * width;
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const l = labels[p]!;
    const x = p % width;
    if ((x < width - 1 && labels[p + 1]! > l) || (x > 0 && labels[p - 1]! > l)
      || (p < n - width && labels[p + width]! > l) || (p >= width && labels[p - width]! > l)) out[p] = 1;
  }
  return out;
}

/**
 * The membrane map with the segments' boundaries drawn in as certain membrane: gaps the network left in a membrane
 * are closed, so thresholding the map no longer merges the cells on either side.
 */
export function closeMembraneGaps(pMembrane: Float32Array, height: number, width: number,
  options: Partial<SegmentOptions> = {}): Float32Array {
  const { labels } = segmentSection(pMembrane, height, width, options);
  const lines = segmentBoundaries(labels, height, width);
  const out = pMembrane.slice();
  for (let i = 0; i < out.length; i++) if (lines[i]) out[i] = 1;
  return out;
}
