import { EmsegError } from '../errors.js';
import { availableMemoryBytes, formatBytes } from '../io/limits.js';
import type { Plan } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { commonStride, geometryForSteps, tileStep } from './tiling.js';

/** Activations are float32 on both backends (bf16 converts inside the kernels). */
const BYTES_PER_VALUE = 4;
/**
 * Measured ratio of a tile's real peak to the activations the plan holds alive at once: oneDNN keeps
 * activations in blocked layouts (channels padded to 8 or 16), a scratchpad and reordered weights beside them.
 */
const BACKEND_OVERHEAD = 2;
/** Float planes of tile size a tile run holds besides the network: read window, transformed copy, output, placed. */
const TILE_PLANES = 4;
/** Band-sized float buffers: the running sum and the copy the writer encodes. */
const BAND_BUFFERS = 2;
/** Node's heap, the addon, code and the decoded model: resident before the first tile (measured ~150 MB). */
export const BASE_PROCESS_BYTES = 200 * 2 ** 20;

/**
 * Largest number of activation bytes Network.predict holds at once on this plan: every node's output stays alive
 * until its last consumer has run (a ReLU fused into its convolution shares that convolution's tensor).
 */
export function activationPeakBytes(plan: Plan): number {
  const bytes = (shape: readonly number[]) => shape.reduce((a, b) => a * b, BYTES_PER_VALUE);
  const consumers = plan.nodes.map(() => 0);
  for (const n of plan.nodes) for (const i of n.inputs) if (i >= 0) consumers[i]!++;
  const aliased = (n: Plan['nodes'][number]) => n.type === 'relu' && n.inputs[0]! >= 0 && consumers[n.inputs[0]!] === 1
    && ['conv', 'dense'].includes(plan.nodes[n.inputs[0]!]!.type);
  let live = bytes(plan.input);
  let peak = live;
  const pending = [...consumers];
  for (const n of plan.nodes) {
    if (!aliased(n)) live += bytes(n.out);
    peak = Math.max(peak, live);
    for (const i of n.inputs) {
      if (i < 0) continue;
      pending[i]!--;
      const input = plan.nodes[i]!;
      if (pending[i] === 0 && !(aliased(n) && input === plan.nodes[n.inputs[0]!])) live -= bytes(input.out);
    }
  }
  return peak;
}

/** Parameter bytes of a plan (float32 weights and biases). */
function paramBytes(plan: Plan): number {
  return plan.nodes.reduce((s, n) => s + ('wShape' in n ? (n.wShape.reduce((a, b) => a * b, 1) + n.wShape[0]) * BYTES_PER_VALUE : 0), 0);
}

export interface WorkingSet {
  /** Everything together: the estimate checked against available memory. */
  total: number;
  /** Peak of the largest tile run (network activations with backend overhead, tile planes). */
  tile: number;
  /** Band buffers (tile rows x section width). */
  bands: number;
  /** Weights of every model. */
  params: number;
}

/** Memory a tiled prediction of an h x w section needs, from the networks' plans at this tile size. */
export function predictionWorkingSet(specs: readonly ModelSpec[], tile: number, height: number, width: number): WorkingSet {
  const stride = commonStride(specs);
  const stepH = tileStep(tile, height, stride);
  const stepW = tileStep(tile, width, stride);
  let tilePeak = 0;
  let params = 0;
  for (const spec of specs) {
    const g = geometryForSteps(spec, stepH, stepW);
    const planes = TILE_PLANES * g.inputH * g.inputW * BYTES_PER_VALUE;
    tilePeak = Math.max(tilePeak, BACKEND_OVERHEAD * activationPeakBytes(g.plan) + planes);
    params += BACKEND_OVERHEAD * paramBytes(g.plan);
  }
  const bands = BAND_BUFFERS * stepH * width * BYTES_PER_VALUE;
  return { total: BASE_PROCESS_BYTES + tilePeak + bands + params, tile: tilePeak, bands, params };
}

/**
 * Refuses a tile size whose working set (plus `extra` bytes the caller holds, e.g. the decoded section) exceeds
 * the memory available now, naming the flag and how much is needed.
 */
export function checkPredictionMemory(specs: readonly ModelSpec[], tile: number, height: number, width: number,
  extra = 0, flag = '--tile'): WorkingSet {
  const ws = predictionWorkingSet(specs, tile, height, width);
  const available = availableMemoryBytes();
  if (ws.total + extra > available) {
    throw new EmsegError('insufficient-memory', flag,
      `predicting a ${width}x${height} section with tile ${tile} needs about ${formatBytes(ws.total + extra)} ` +
      `(largest tile ${formatBytes(ws.tile)}, bands ${formatBytes(ws.bands)}, weights ${formatBytes(ws.params)}, ` +
      `section ${formatBytes(extra)}) but only ${formatBytes(available)} is available; use a smaller ${flag}`);
  }
  return ws;
}
