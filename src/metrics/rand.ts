import type { Overlap } from './overlap.js';

/**
 * Foreground-restricted Rand pair counts of one slice with N^2 normalisation (ordered pairs,
 * self-pairs included), singletons on proposal label 0.
 */
export interface RandCounts {
  tp: number;
  fp: number;
  fn: number;
}

/** Squared-fraction sums of Fiji's `foregroundRestrictedStatsN2`. */
interface RandSums {
  /** sum_i (t_i/n)^2 */
  sumA2: number;
  /** sum_j (s_j/n)^2 + s0/n^2 */
  sumB2: number;
  /** sum_ij (c_ij/n)^2 + s0/n^2 */
  sumAB2: number;
}

/**
 * Fiji divides every count by n before squaring and summing, then multiplies back by n^2;
 * doing the same keeps the rounding noise of fp/fn (which the precision/recall `== 0`
 * tests see) close to the reference.
 */
function randSums(o: Overlap): RandSums {
  const n = o.n;
  let sumA2 = 0;
  for (let i = 1; i <= o.tCount; i++) {
    const a = o.tSizes[i] / n;
    sumA2 += a * a;
  }
  const singletonTerm = o.singletons / n / n;
  let sumB2 = 0;
  for (let j = 1; j <= o.sCount; j++) {
    const b = o.sSizes[j] / n;
    sumB2 += b * b;
  }
  sumB2 += singletonTerm;
  let sumAB2 = 0;
  for (let k = 0; k < o.cellCount; k++) {
    const p = o.cells[k] / n;
    sumAB2 += p * p;
  }
  sumAB2 += singletonTerm;
  return { sumA2, sumB2, sumAB2 };
}

/**
 * tp = pairs together in both, fp = together only in the proposal (merges), fn = together
 * only in the ground truth (splits). A slice without ground-truth foreground has no pairs.
 */
export function randCounts(o: Overlap): RandCounts {
  if (o.n === 0) return { tp: 0, fp: 0, fn: 0 };
  const { sumA2, sumB2, sumAB2 } = randSums(o);
  const n2 = o.n * o.n;
  const tp = n2 * sumAB2;
  return { tp, fp: n2 * sumB2 - tp, fn: n2 * sumA2 - tp };
}

/** Per-slice V_rand: merge score (precision), split score (recall) and their harmonic mean. */
export interface VRandScore {
  merge: number;
  split: number;
  score: number;
}

/** NaN scores for a slice without ground-truth foreground, where the Rand score is undefined. */
export function vRand(o: Overlap): VRandScore {
  if (o.n === 0) return { merge: NaN, split: NaN, score: NaN };
  const { sumA2, sumB2, sumAB2 } = randSums(o);
  const merge = sumAB2 / sumB2;
  const split = sumAB2 / sumA2;
  return { merge, split, score: (2 * merge * split) / (merge + split) };
}
