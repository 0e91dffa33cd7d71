import { EmsegError } from '../errors.js';

/**
 * Threshold sequences of the ISBI 2012 evaluation.
 *
 * The Fiji scripts sweep `for (th = min; th <= max; th += step)` in double precision; the
 * accumulated rounding (0.30000000000000004, 0.9999999999999999, ...) decides which float32
 * proposal values fall on which side, so the sequence is reproduced by the same loop.
 */
export function javaThresholds(max: number, min = 0, step = 0.1): number[] {
  if (!(step > 0)) throw new EmsegError('invalid-option', 'step', `threshold step must be > 0, got ${step}`);
  const out: number[] = [];
  for (let th = min; th <= max; th += step) out.push(th);
  return out;
}

/** The 11 thresholds of the pixel, Rand, V_rand and V_info sweeps (max 1.0). */
export const SWEEP_THRESHOLDS: readonly number[] = Object.freeze(javaThresholds(1.0));

/** The 10 thresholds of the warping-error sweep (max 0.9). */
export const WARPING_THRESHOLDS: readonly number[] = Object.freeze(javaThresholds(0.9));
