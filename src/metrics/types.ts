/** The five ISBI 2012 metrics, named as in the challenge scripts and `expected.json`. */
export type MetricName = 'pixel_error' | 'rand_error' | 'warping_error' | 'v_rand' | 'v_info';

export const METRIC_NAMES: readonly MetricName[] = Object.freeze([
  'pixel_error',
  'rand_error',
  'warping_error',
  'v_rand',
  'v_info',
]);

export interface EvaluateOptions {
  /** Metrics to compute (default: all five). Only these appear in the result. */
  metrics?: MetricName[];
  /** Called after each (slice, threshold) step with the steps done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Values per threshold; arrays follow `thresholds` (or `warping_thresholds` for warping_*). */
export interface PerThreshold {
  pixel_fscore?: number[];
  pixel_precision?: number[];
  pixel_recall?: number[];
  /** Mean over slices of the misclassified fraction (for information; not the final value). */
  pixel_error?: number[];
  pixel_tp?: number[];
  pixel_fp?: number[];
  pixel_fn?: number[];
  pixel_tn?: number[];
  rand_fscore?: number[];
  /** Rand precision: low when segments are merged. */
  rand_merge?: number[];
  /** Rand recall: low when segments are split. */
  rand_split?: number[];
  warping_splits?: number[];
  warping_mergers?: number[];
  warping_error?: number[];
  v_rand?: number[];
  v_info?: number[];
}

/** Values per threshold and slice, indexed `[threshold][slice]`. */
export interface PerSlice {
  v_rand?: number[][];
  v_rand_merge?: number[][];
  v_rand_split?: number[][];
  v_info?: number[][];
}

/** Same layout as one proposal of the reference `expected.json`. */
export interface EvaluationResult {
  thresholds: number[];
  warping_thresholds: number[];
  /** 1 - best pixel F-score. */
  pixel_error?: number;
  /** 1 - best foreground-restricted Rand F-score. */
  rand_error?: number;
  /** Lowest (splits + mergers) / pixels. */
  warping_error?: number;
  /** Best mean per-slice V_rand (higher is better). */
  v_rand?: number;
  /** Best mean per-slice V_info (higher is better). */
  v_info?: number;
  /** First threshold index that reaches each metric's optimum. */
  best_threshold_index: Partial<Record<MetricName, number>>;
  per_threshold: PerThreshold;
  per_slice: PerSlice;
}
