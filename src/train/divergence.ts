import { EmsegError } from '../errors.js';
import type { ParamSet } from '../nn/params.js';

/**
 * When is a run diverged? The loss is a (class-weighted) mean softmax cross-entropy in nats per pixel: a fresh
 * two-class net starts near ln 2 = 0.69 and a learning net only goes down. A step is diverged when
 * - its loss is NaN or infinite, or
 * - its loss exceeds DIVERGENCE_FACTOR x the median loss of the run's first DIVERGENCE_REFERENCE_STEPS steps, and
 *   also the absolute DIVERGENCE_FLOOR (so a fine-tuning run starting at a tiny loss is not stopped by noise).
 * Healthy runs stay far below: the bound is ~690 nats from a fresh start, where chance level is 0.69. A run at
 * too high a learning rate (e.g. --lr 1000) crosses it within a few steps instead of saving a "best" model at 1e25.
 * Weights holding NaN or Inf are diverged too, whatever the loss said: they are never checkpointed or saved.
 */
export const DIVERGENCE_REFERENCE_STEPS = 10;
export const DIVERGENCE_FACTOR = 1e3;
export const DIVERGENCE_FLOOR = 10;

/** Stopped because the loss or the weights blew up; the last checkpoint on disk predates the divergence. */
export class TrainingDiverged extends EmsegError {
  /**
   * @param step the step that diverged (1-based, as in the log)
   * @param weightsStep how many optimiser steps the weights that blew up had taken: step - 1 for a loss (computed on
   *   the weights before the step's update), step for non-finite weights; no best model is ever from this step
   */
  constructor(readonly step: number, readonly weightsStep: number, readonly loss: number, why: string,
    lastGoodStep: number | null) {
    super('diverged', '', `training diverged at step ${step} (${why}); `
      + `${lastGoodStep === null ? 'no checkpoint was written' : `the last good checkpoint (step ${lastGoodStep}) is kept`}; `
      + 'lower the learning rate (--lr) and train again with --overwrite');
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The loss above which a step counts as diverged, given the run's first losses (Infinity before there are any). */
export function divergenceBound(reference: readonly number[]): number {
  if (reference.length === 0) return Infinity;
  return Math.max(DIVERGENCE_FLOOR, DIVERGENCE_FACTOR * median(reference));
}

/** Why this loss is diverged, or null when it is fine. */
export function lossDivergence(loss: number, reference: readonly number[]): string | null {
  if (!Number.isFinite(loss)) return `loss ${loss}`;
  const bound = divergenceBound(reference);
  return loss > bound ? `loss ${loss.toExponential(3)} > ${bound.toPrecision(3)}, ${DIVERGENCE_FACTOR}x the median of the first steps` : null;
}

/** The reference after this (healthy) step: the first DIVERGENCE_REFERENCE_STEPS losses. */
export function extendReference(reference: readonly number[], loss: number): number[] {
  return reference.length < DIVERGENCE_REFERENCE_STEPS ? [...reference, loss] : [...reference];
}

/** Name of the first parameter holding a NaN or infinity, or null. */
export function nonFiniteParam(params: ParamSet): string | null {
  for (const p of params.values()) {
    for (let i = 0; i < p.data.length; i++) if (!Number.isFinite(p.data[i]!)) return p.name;
  }
  return null;
}
