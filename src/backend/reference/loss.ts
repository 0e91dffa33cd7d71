/**
 * Output-layer reference kernels: softmax over channels and the per-pixel softmax cross-entropy.
 *
 *   p[n, :, h, w] = softmax(z[n, :, h, w]) (computed as exp(z - max z) / sum, numerically stable)
 *   ce(pixel)     = logsumexp(z) - z[label]
 *   loss          = sum(w * ce) / sum(w) over pixels whose label is not -1 (w = 1 when no weights are given)
 *   dlogits       = w * (p - onehot(label)) / sum(w), and 0 on ignored pixels
 *   if sum(w) == 0 (everything ignored or zero-weighted): loss = 0 and dlogits = 0.
 *   5-d logits [N, C, D, H, W] alike, per voxel.
 *
 * Sigmoid and the per-element sigmoid binary cross-entropy (each channel its own binary task: affinities):
 *   bce(z, t) = max(z, 0) - z*t + log(1 + exp(-|z|)),  loss = sum(w * bce) / sum(w),
 *   dlogits   = w * (sigmoid(z) - t) / sum(w) (w = 1 when no weights are given; w = 0 ignores an element);
 *   if sum(w) == 0: loss = 0 and dlogits = 0.
 */
import type { CrossEntropyResult, CrossEntropyTarget, SigmoidTarget } from '../backend.js';
import { EmsegError } from '../../errors.js';
import { checkCrossEntropyTarget, checkSigmoidTarget, storableDims } from '../geometry.js';
import { numel, type Tensor } from '../../tensor/tensor.js';
import type { RefContext } from './util.js';

export function softmax(ctx: RefContext, x: Tensor): Tensor {
  const d = storableDims(x.shape, 'softmax input');
  const [N, C] = d;
  const xd = ctx.data(x, 'softmax x');
  const plane = numel(d) / (N * C);
  const y = ctx.alloc(xd.length);
  for (let n = 0; n < N; n++) {
    for (let q = 0; q < plane; q++) {
      const base = n * C * plane + q;
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, xd[base + c * plane]!);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(xd[base + c * plane]! - max);
      for (let c = 0; c < C; c++) y[base + c * plane] = Math.exp(xd[base + c * plane]! - max) / sum;
    }
  }
  return ctx.wrap(y, x.shape);
}

export function softmaxCrossEntropy(ctx: RefContext, logits: Tensor, target: CrossEntropyTarget): CrossEntropyResult {
  const what = 'softmaxCrossEntropy';
  checkCrossEntropyTarget(logits.shape, target);
  const [N, C] = logits.shape as [number, number];
  const plane = numel(logits.shape) / (N * C);
  const { labels } = target;
  const weights = target.weights ?? null;
  const zd = ctx.data(logits, `${what} logits`);

  // pass 1: validate, and the weight sum
  let weightSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < -1 || l >= C) throw new EmsegError('invalid-option', what, `label ${l} at pixel ${i} is outside [-1, ${C - 1}]`);
    if (l === -1) continue;
    const w = weights ? weights[i]! : 1;
    if (!(w >= 0) || !Number.isFinite(w)) throw new EmsegError('invalid-option', what, `weight ${w} at pixel ${i} must be finite and >= 0`);
    weightSum += w;
  }
  const dz = ctx.alloc(zd.length);
  if (weightSum === 0) return { loss: 0, weightSum: 0, dlogits: ctx.wrap(dz, logits.shape) };

  // pass 2: loss and gradient
  let lossSum = 0;
  for (let n = 0; n < N; n++) {
    for (let q = 0; q < plane; q++) {
      const pix = n * plane + q;
      const l = labels[pix]!;
      if (l === -1) continue;
      const w = weights ? weights[pix]! : 1;
      const base = n * C * plane + q;
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, zd[base + c * plane]!);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(zd[base + c * plane]! - max);
      const lse = max + Math.log(sum);
      lossSum += w * (lse - zd[base + l * plane]!);
      const scale = w / weightSum;
      for (let c = 0; c < C; c++) {
        const p = Math.exp(zd[base + c * plane]! - lse);
        dz[base + c * plane] = scale * (p - (c === l ? 1 : 0));
      }
    }
  }
  return { loss: lossSum / weightSum, weightSum, dlogits: ctx.wrap(dz, logits.shape) };
}

export function sigmoid(ctx: RefContext, x: Tensor): Tensor {
  storableDims(x.shape, 'sigmoid input');
  const xd = ctx.data(x, 'sigmoid x');
  const y = ctx.alloc(xd.length);
  for (let i = 0; i < xd.length; i++) y[i] = 1 / (1 + Math.exp(-xd[i]!));
  return ctx.wrap(y, x.shape);
}

export function sigmoidCrossEntropy(ctx: RefContext, logits: Tensor, target: SigmoidTarget): CrossEntropyResult {
  checkSigmoidTarget(logits.shape, target);
  const zd = ctx.data(logits, 'sigmoidCrossEntropy logits');
  const { targets } = target;
  const weights = target.weights ?? null;
  let weightSum = 0;
  for (let i = 0; i < zd.length; i++) weightSum += weights ? weights[i]! : 1;
  const dz = ctx.alloc(zd.length);
  if (weightSum === 0) return { loss: 0, weightSum: 0, dlogits: ctx.wrap(dz, logits.shape) };
  let lossSum = 0;
  for (let i = 0; i < zd.length; i++) {
    const w = weights ? weights[i]! : 1;
    if (w === 0) continue;
    const z = zd[i]!;
    const t = targets[i]!;
    lossSum += w * (Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z))));
    dz[i] = (w / weightSum) * (1 / (1 + Math.exp(-z)) - t);
  }
  return { loss: lossSum / weightSum, weightSum, dlogits: ctx.wrap(dz, logits.shape) };
}
