import { freemem } from 'node:os';
import { EmsegError } from '../errors.js';
import { paramShapes } from '../nn/params.js';
import { fusedProducers } from '../nn/fusion.js';
import { layerDef } from '../nn/layers/index.js';
import type { Plan } from '../nn/plan.js';
import { numel } from '../tensor/tensor.js';

/**
 * Working set of one training step, from the plan's layer shapes (tensors are fp32: 4 bytes a value; bf16 runs
 * keep fp32 master weights and need no more than this):
 * - forward: every layer's output stays alive until the backward pass, plus what layers save for it (max-pool argmax,
 *   LRN scale, dropout mask: one value per element of the layer's output or input): each layer's def says
 *   (`memory.training`, src/nn/layers/);
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

/**
 * Values the nodes keep alive (outputs plus saved tensors) for one sample, each by its layer's training cost;
 * a relu fused into the conv before it shares that conv's output and counts nothing.
 */
function retainedValues(plan: Plan): number {
  const fused = fusedProducers(plan);
  return plan.nodes.reduce((s, node) => {
    const src = node.inputs[0]!;
    // What a layer saves of its input's size (LRN scale, dropout mask) is its own tensor, also when it reads the image.
    const input = perSample(src >= 0 ? plan.nodes[src]!.out : plan.input);
    return s + layerDef(node.type).memory.training(node, { out: perSample(node.out), input, fused: fused.has(src) });
  }, 0);
}

export function estimateTrainingMemory(plan: Plan, batch: number, optimizer: 'adam' | 'sgd'): TrainingMemoryEstimate {
  const retained = retainedValues(plan);
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
