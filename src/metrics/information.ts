import type { Overlap } from './overlap.js';

/** Per-slice V_info: merge score I/H(T), split score I/H(S) and their harmonic mean. */
export interface VInfoScore {
  merge: number;
  split: number;
  score: number;
}

/**
 * Foreground-restricted information-theoretic score (natural logs), following Fiji's
 * `foregroundRestrictedFscore`: every singleton is its own proposal segment, which adds
 * q ln n (q = s0/n) to both H(S) and H(T,S). Degenerate entropies follow Fiji:
 * H(T) == 0 gives (0, 1), then H(S) == 0 gives (1, 0). Unlike Fiji, 0/0 (no mutual
 * information at all) scores 0 instead of NaN, and a slice without ground-truth foreground
 * scores NaN (undefined).
 */
export function vInfo(o: Overlap): VInfoScore {
  const n = o.n;
  if (n === 0) return { merge: NaN, split: NaN, score: NaN };
  let sumA = 0;
  for (let i = 1; i <= o.tCount; i++) {
    const a = o.tSizes[i] / n;
    if (a !== 0) sumA += a * Math.log(a);
  }
  const singletonTerm = (o.singletons / n) * Math.log(n);
  let sumB = 0;
  for (let j = 1; j <= o.sCount; j++) {
    const b = o.sSizes[j] / n;
    if (b !== 0) sumB += b * Math.log(b);
  }
  sumB -= singletonTerm;
  let sumAB = 0;
  for (let k = 0; k < o.cellCount; k++) {
    const p = o.cells[k] / n;
    sumAB += p * Math.log(p);
  }
  sumAB -= singletonTerm;

  const hT = -sumA;
  const hS = -sumB;
  const hTgivenS = sumB - sumAB;
  const hSgivenT = sumA - sumAB;
  let merge = (hT - hTgivenS) / hT;
  let split = (hS - hSgivenT) / hS;
  if (hT === 0) {
    merge = 0;
    split = 1;
  }
  if (hS === 0) {
    merge = 1;
    split = 0;
  }
  const sum = merge + split;
  return { merge, split, score: sum !== 0 ? (2 * merge * split) / sum : 0 };
}
