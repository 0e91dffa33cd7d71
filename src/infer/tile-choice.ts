import { EmsegError } from '../errors.js';
import { availableMemoryBytes } from '../io/limits.js';
import type { ModelSpec } from '../nn/spec.js';
import { predictionWorkingSet } from './memory.js';
import { commonStride, geometryForSteps, MIN_TILE, roundUp, sectionSteps } from './tiling.js';

/** `tile: 'auto'`: the tile edge is chosen per section by cost (chooseTile). */
export const AUTO_TILE = 'auto';
/** An output tile edge in pixels, or AUTO_TILE. */
export type TileSize = number | typeof AUTO_TILE;

/**
 * Memory an automatically sized prediction may use (its whole working set, predictionWorkingSet, at most what is
 * available): a laptop's share, and what the blockwise volume steps are held to. Larger tiles recompute less halo; past
 * this the gain is a few per cent (unet-w16 on a 2048 section: 1028-pixel tiles need ~1.4 GB, 0.33 us a pixel,
 * against 0.35 us with 516-pixel tiles; docs/BENCHMARKS.md "Prediction against onnxruntime").
 */
export const PREDICT_MEMORY_BUDGET = 2 * 2 ** 30;

export interface TileChoice {
  /** The output tile edge chosen (a multiple of the networks' common stride). */
  tile: number;
  /** Forward FLOPs of every tile of every model for the whole section at that edge. */
  flops: number;
  /** The working set it needs (bytes). */
  bytes: number;
}

/** Forward FLOPs of every tile the models run on an h x w section at this tile edge. */
export function sectionFlops(specs: readonly ModelSpec[], tile: number, height: number, width: number): number {
  const [stepH, stepW] = sectionSteps(specs, tile, height, width);
  const tiles = Math.ceil(height / stepH) * Math.ceil(width / stepW);
  return specs.reduce((s, spec) => s + tiles * geometryForSteps(spec, stepH, stepW).plan.nodes.reduce((f, n) => f + n.flops, 0), 0);
}

/**
 * The output tile edge that costs the fewest FLOPs for an h x w section (each tile recomputes the halo of the
 * networks' field, so fewer, larger tiles do less work, unless they overhang the section) among those whose
 * working set, plus `extra` bytes the caller holds, fits `budget` and the memory available now. Ties go to the
 * smaller tile. With nothing fitting, the smallest tile (checkPredictionMemory then says how much is missing).
 * The result does not change the maps: predictions are the same at every tile size.
 */
export function chooseTile(specs: readonly ModelSpec[], height: number, width: number, extra = 0,
  budget = PREDICT_MEMORY_BUDGET): TileChoice {
  if (specs.length === 0) throw new EmsegError('invalid-option', 'models', 'choosing a tile needs at least one model');
  const stride = commonStride(specs);
  const limit = Math.min(budget, availableMemoryBytes()) - extra;
  const largest = roundUp(Math.max(height, width), stride);
  let best: TileChoice | undefined;
  for (let tile = roundUp(MIN_TILE, stride); tile <= Math.max(largest, roundUp(MIN_TILE, stride)); tile += stride) {
    const bytes = predictionWorkingSet(specs, tile, height, width).total;
    if (best && bytes > limit) break; // the working set grows with the tile
    let flops: number;
    try {
      flops = sectionFlops(specs, tile, height, width);
    } catch {
      continue; // a tile the networks do not fit (too small for their field)
    }
    if (!best || (bytes <= limit && (flops < best.flops || best.bytes > limit))) best = { tile, flops, bytes };
  }
  if (!best) throw new EmsegError('invalid-option', 'tile', `no tile size fits the networks on a ${width}x${height} section`);
  return best;
}

/** A tile size as given (a number) or chosen for this section (AUTO_TILE). */
export function resolveTile(tile: TileSize, specs: readonly ModelSpec[], height: number, width: number, extra = 0): number {
  return tile === AUTO_TILE ? chooseTile(specs, height, width, extra).tile : tile;
}
