import { freemem } from 'node:os';
import { EmsegError } from '../errors.js';
import { paramShapes } from '../nn/params.js';
import type { Plan, PlanNode } from '../nn/plan.js';
import { numel } from '../tensor/tensor.js';

/**
 * Working set of one training step, from the plan's layer shapes (tensors are fp32: 4 bytes a value; bf16 runs
 * keep fp32 master weights and need no more than this):
 * - forward: every layer's output stays alive until the backward pass, plus what layers save for it (max-pool argmax,
 *   LRN scale, dropout mask: one value per element of the layer's output or input);
 * - backward: the gradient being propagated and the one being produced, at most twice the largest activation,
 *   plus oneDNN's convolution scratch, which we bound by one more largest activation;
 * - the sampled batch (input, labels, class weights);
 * - parameters, their gradients and the optimiser's slots (2 for Adam, 1 for SGD momentum).
 * The process needs more than these tensors: oneDNN's blocked layouts pad channels to multiples of 16, reorders
 * copy tensors between layouts, and dilated (dense-scanning) convolutions run as GEMMs with im2col scratch. Measured
 * growth of max RSS (`/usr/bin/time -v`, oneDNN, batch 2) per unit of this estimate: fakhry-a 2.9x (tile 64 -> 128)
 * and 2.8x (128 -> 256), unet-w16 2.1x (64 -> 256). The estimate is scaled by TRAIN_MEMORY_FACTOR, the worst of these
 * rounded up, before it is compared with the available memory.
 */
const BYTES_PER_VALUE = 4;
/** Gradient in flight + gradient produced + convolution scratch, each up to the largest activation. */
const BACKWARD_ACTIVATIONS = 3;
const OPTIMIZER_SLOTS = { adam: 2, sgd: 1 } as const;
/** Measured max RSS per byte of the plan's tensors (see above). */
export const TRAIN_MEMORY_FACTOR = 3;
const GIB = 1024 ** 3;

export interface TrainingMemoryEstimate {
  /** Activations, saved tensors and backward buffers of one step, for the whole batch. */
  activationBytes: number;
  /** Weights, gradients and optimiser slots. */
  parameterBytes: number;
  /** The sampled batch: input tiles, labels and weights. */
  batchBytes: number;
  totalBytes: number;
}

function perSample(shape: readonly number[]): number {
  return numel([...shape]);
}

/** Values a node keeps alive (output plus saved tensors) for one sample; fused or aliased outputs count once. */
function retainedValues(node: PlanNode, plan: Plan, fusedRelu: Set<number>): number {
  const out = perSample(node.out);
  const input = node.inputs[0] !== undefined && node.inputs[0] >= 0 ? perSample(plan.nodes[node.inputs[0]]!.out) : 0;
  switch (node.type) {
    case 'relu': return fusedRelu.has(node.index) ? 0 : out;
    case 'pool': return 2 * out; // output + argmax workspace
    case 'lrn': return out + input; // output + scale
    case 'dropout': return out + input; // output + mask
    case 'softmax': return 2 * out; // probabilities + gradient of the logits
    default: return out;
  }
}

/** relu nodes that run fused into the convolution before them (they share its output tensor). */
function fusedRelus(plan: Plan): Set<number> {
  const consumers = plan.nodes.map(() => 0);
  for (const n of plan.nodes) for (const i of n.inputs) if (i >= 0) consumers[i]!++;
  const fused = new Set<number>();
  for (const n of plan.nodes) {
    const src = n.inputs[0];
    if (n.type !== 'relu' || src === undefined || src < 0) continue;
    const prev = plan.nodes[src]!;
    if ((prev.type === 'conv' || prev.type === 'dense') && consumers[src] === 1) fused.add(n.index);
  }
  return fused;
}

export function estimateTrainingMemory(plan: Plan, batch: number, optimizer: 'adam' | 'sgd'): TrainingMemoryEstimate {
  const fused = fusedRelus(plan);
  const retained = plan.nodes.reduce((s, n) => s + retainedValues(n, plan, fused), 0);
  const largest = Math.max(perSample(plan.input), ...plan.nodes.map((n) => perSample(n.out)));
  const activationBytes = batch * BYTES_PER_VALUE * (retained + BACKWARD_ACTIVATIONS * largest);
  const weights = paramShapes(plan).reduce((s, p) => s + numel(p.shape), 0);
  const parameterBytes = BYTES_PER_VALUE * weights * (2 + OPTIMIZER_SLOTS[optimizer]);
  const outputPixels = plan.output[1] * plan.output[2];
  const batchBytes = batch * (BYTES_PER_VALUE * (perSample(plan.input) + outputPixels) + outputPixels);
  return { activationBytes, parameterBytes, batchBytes, totalBytes: activationBytes + parameterBytes + batchBytes };
}

/** Memory this process can still use: the system's available memory, or what its cgroup limit leaves, if lower. */
export function availableMemoryBytes(): number {
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  const cgroupLeft = limit > 0 && limit < Number.MAX_SAFE_INTEGER ? limit - process.memoryUsage.rss() : Infinity;
  return Math.min(freemem(), cgroupLeft);
}

export function formatGiB(bytes: number): string {
  return `${(bytes / GIB).toFixed(bytes < GIB ? 2 : 1)} GiB`;
}

/**
 * Refuses a tile/batch whose training working set would not fit, before anything is allocated (the alternative
 * is the kernel's OOM killer mid-run, with no message and no checkpoint).
 */
export function checkTrainingMemory(plan: Plan, batch: number, optimizer: 'adam' | 'sgd',
  available = availableMemoryBytes()): TrainingMemoryEstimate {
  const estimate = estimateTrainingMemory(plan, batch, optimizer);
  const needed = estimate.totalBytes * TRAIN_MEMORY_FACTOR;
  if (needed > available) {
    const [, h, w] = plan.output;
    // Blame the batch when one tile alone would fit.
    const flag = batch > 1 && estimateTrainingMemory(plan, 1, optimizer).totalBytes * TRAIN_MEMORY_FACTOR <= available
      ? '--batch' : '--tile';
    throw new EmsegError('too-large', flag, `training ${batch} tile(s) of ${h}x${w} outputs needs about `
      + `${formatGiB(needed)} of memory (${formatGiB(estimate.totalBytes)} of tensors x ${TRAIN_MEMORY_FACTOR} for the `
      + `native layouts and scratch), but only ${formatGiB(available)} is available; use a smaller --tile or --batch`);
  }
  return estimate;
}
