import { sliceOf, type ImageStack } from '../image/stack.js';
import { validateInputs, validateProposal } from './validate.js';
import { WarpingErrorCounter } from './warping.js';
import { WatershedThinner } from './watershed.js';
import { EmsegError } from '../errors.js';

/** A pixel position within a slice. */
export interface PixelPosition {
  x: number;
  y: number;
}

/** Where the warping error of one slice at one threshold finds splits and mergers. */
export interface WarpingErrorLocations {
  splits: PixelPosition[];
  mergers: PixelPosition[];
}

function checkThreshold(threshold: number): void {
  if (!Number.isFinite(threshold)) throw new EmsegError('invalid-option', 'threshold', `must be a finite number, got ${threshold}`);
}

const toPositions = (indices: Int32Array, width: number): PixelPosition[] =>
  Array.from(indices, (i) => ({ x: i % width, y: Math.floor(i / width) }));

/**
 * Pixels of slice `z` counted as splits and mergers by the warping error at `threshold`
 * (e.g. `warping_thresholds[best_threshold_index.warping_error]`), for marking on the image.
 */
export function warpingErrorLocations(gt: ImageStack, proposal: ImageStack, z: number, threshold: number): WarpingErrorLocations {
  validateInputs(gt, proposal, z);
  checkThreshold(threshold);
  const g = sliceOf(gt, z);
  const gtFg = new Uint8Array(g.length);
  for (let i = 0; i < g.length; i++) gtFg[i] = g[i] !== 0 ? 1 : 0;
  const e = new WarpingErrorCounter().count(gtFg, sliceOf(proposal, z), gt.width, gt.height, threshold, true);
  return { splits: toPositions(e.splitPixels!, gt.width), mergers: toPositions(e.mergerPixels!, gt.width) };
}

/**
 * The proposal segmentation that V_rand and V_info score for slice `z` at `threshold`:
 * membrane (value <= threshold) thinned by watershed. Labels are row-major, 0 on the
 * watershed lines and 1..count for the segments.
 */
export function thinnedSegmentation(proposal: ImageStack, z: number, threshold: number): { labels: Int32Array; count: number } {
  validateProposal(proposal, z);
  checkThreshold(threshold);
  const p = sliceOf(proposal, z);
  const membrane = new Uint8Array(p.length);
  for (let i = 0; i < p.length; i++) membrane[i] = p[i] > threshold ? 0 : 1;
  const labels = new Int32Array(p.length);
  const count = new WatershedThinner().thin(membrane, proposal.width, proposal.height, labels);
  return { labels, count };
}
