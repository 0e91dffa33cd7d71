/** Precision, recall and F-score with the conventions of Fiji's `ClassificationStatistics`. */
export interface PrecisionRecall {
  precision: number;
  recall: number;
  fscore: number;
}

/**
 * Fiji sets P = 1 when fp == 0 and R = 1 when fn == 0 (so an empty prediction is "precise"),
 * and F = 0 when P + R == 0. The exact `== 0` tests are kept because the Rand counts carry
 * rounding noise, which the reference lets through (e.g. a merge score of 1.0000000000000002).
 */
export function precisionRecall(tp: number, fp: number, fn: number): PrecisionRecall {
  const precision = fp === 0 ? 1 : tp / (tp + fp);
  const recall = fn === 0 ? 1 : tp / (tp + fn);
  const sum = precision + recall;
  return { precision, recall, fscore: sum > 0 ? (2 * precision * recall) / sum : 0 };
}
