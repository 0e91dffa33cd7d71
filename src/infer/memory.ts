import { EmsegError } from '../errors.js';
import { availableMemoryBytes, formatBytes } from '../io/limits.js';
import { fusedProducers, liveNodes } from '../nn/fusion.js';
import { layerDef } from '../nn/layers/index.js';
import { paramShapes } from '../nn/params.js';
import type { Plan, PlanNode } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { numel } from '../tensor/tensor.js';
import { geometryForSteps, sectionSteps } from './tiling.js';

/** Activations are float32 on both backends (bf16 converts inside the kernels). */
const BYTES_PER_VALUE = 4;
/**
 * What the backend holds for one architecture's tile runs, over the activations alive at once (peakLiveBytes): the
 * oneDNN backend parks freed buffers in a pool and hands each to the next request it fits within 2x, so its pool
 * ends up a few times the peak; reorder temporaries, scratchpads and weights add to it. Measured (pooled + live
 * bytes after two tile runs, `nativeStats`) over the 2-d zoo at 256- and 512-pixel tiles: 1.6-3.5x (reference-net
 * lowest, fakhry-a highest; unet-w16 1.8 / 2.9); the shipped 3-d networks at 64^3 tiles: 1.7-1.8x.
 */
const POOL_OVER_PEAK = 4;
/** Weights are held twice: the model's float32 arrays and the backend's copies in its kernels' layouts. */
const WEIGHT_COPIES = 2;
/** Float planes of tile size a tile run holds besides the network: read window, transformed copy, output, placed. */
const TILE_PLANES = 4;
/** Band-sized float buffers: the running sum, the writer's copy, and finished bands the GC has not yet freed. */
const BAND_BUFFERS = 4;
/** Node's heap, the addon, code and the decoded models: resident before the first tile (measured ~150 MB). */
export const BASE_PROCESS_BYTES = 256 * 2 ** 20;

/** Bytes of one node's output (its def's `memory.inference`, src/nn/layers/). */
function outputBytes(node: PlanNode): number {
  return BYTES_PER_VALUE * layerDef(node.type).memory.inference(node);
}

/** Bytes of every activation of one run of this plan. */
export function activationBytes(plan: Plan): number {
  return plan.nodes.reduce((s, n) => s + outputBytes(n), 0);
}

/**
 * The most activation bytes alive at once in one inference pass, in Network.predict's order: nodes the output does
 * not depend on are skipped, a node's output lives until its last consumer has run, and a ReLU fused into its
 * producer shares that buffer.
 */
export function peakLiveBytes(plan: Plan): number {
  const needed = liveNodes(plan);
  const live = plan.nodes.filter((n) => needed.has(n.index));
  const fused = fusedProducers(plan);
  // The buffer each node's output is in (a fused ReLU's is its producer's) and the last node that reads it.
  const owner = (i: number) => (plan.nodes[i]!.type === 'relu' && fused.has(plan.nodes[i]!.inputs[0]!) ? plan.nodes[i]!.inputs[0]! : i);
  const lastUse = new Map<number, number>();
  for (const n of live) {
    for (const i of [n.index, ...n.inputs]) if (i >= 0) lastUse.set(owner(i), Math.max(lastUse.get(owner(i)) ?? 0, n.index));
  }
  // Bytes released after each node runs: the buffers it was the last to read.
  const freed = new Map<number, number>();
  for (const [buffer, last] of lastUse) freed.set(last, (freed.get(last) ?? 0) + outputBytes(plan.nodes[buffer]!));
  let alive = 0;
  let peak = 0;
  for (const n of live) {
    if (owner(n.index) === n.index) alive += outputBytes(n);
    peak = Math.max(peak, alive);
    alive -= freed.get(n.index) ?? 0;
  }
  return peak;
}

/** What the backend ends up holding for tile runs of this plan (POOL_OVER_PEAK). */
export function tileRunBytes(plan: Plan): number {
  return POOL_OVER_PEAK * peakLiveBytes(plan);
}

/** Parameter bytes of a plan (float32 weights and biases). */
function paramBytes(plan: Plan): number {
  return BYTES_PER_VALUE * paramShapes(plan).reduce((s, p) => s + numel(p.shape), 0);
}

export interface WorkingSet {
  /** Everything together: the estimate checked against available memory. */
  total: number;
  /** Tile runs: the backend's pooled activations per architecture, and the tile-sized planes. */
  tile: number;
  /** Band buffers (tile rows x section width). */
  bands: number;
  /** Weights of every model. */
  params: number;
}

/** Memory a tiled prediction of an h x w section needs, from the networks' plans at this tile size. */
export function predictionWorkingSet(specs: readonly ModelSpec[], tile: number, height: number, width: number): WorkingSet {
  const [stepH, stepW] = sectionSteps(specs, tile, height, width);
  let tilePeak = 0;
  let params = 0;
  const architectures = new Set<string>();
  for (const spec of specs) {
    const g = geometryForSteps(spec, stepH, stepW);
    const planes = TILE_PLANES * g.inputH * g.inputW * BYTES_PER_VALUE;
    params += WEIGHT_COPIES * paramBytes(g.plan);
    // Ensemble members of one architecture reuse the same pooled buffers; different ones add theirs.
    const key = JSON.stringify(spec.layers);
    if (!architectures.has(key)) tilePeak += tileRunBytes(g.plan) + planes;
    architectures.add(key);
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
      `decoded section ${formatBytes(extra)}) but only ${formatBytes(available)} is available; use a smaller ${flag}`);
  }
  return ws;
}

/** Float copies of a 3-d tile a run holds besides the network: its input cut from the block and its output read back. */
const VOLUME_TILE_COPIES = 2;

/**
 * Memory the tiles of 3-d networks need (infer/volume.ts; `plans` at the tile size, one per model): the pooled
 * activations per architecture, the weights, and the tile's input and output copies. The process itself
 * (BASE_PROCESS_BYTES) and the blocks come on top.
 */
export function volumeTileBytes(specs: readonly ModelSpec[], plans: readonly Plan[]): number {
  const architectures = new Set<string>();
  let bytes = 0;
  plans.forEach((plan, k) => {
    bytes += WEIGHT_COPIES * paramBytes(plan);
    const key = JSON.stringify(specs[k]!.layers);
    if (architectures.has(key)) return;
    architectures.add(key);
    const io = numel([...plan.input]) * (plan.inputDepth ?? 1) + numel([...plan.output]) * (plan.z?.size ?? 1);
    bytes += tileRunBytes(plan) + VOLUME_TILE_COPIES * io * BYTES_PER_VALUE;
  });
  return bytes;
}
