import { sliceOf, type ImageStack } from '../image/stack.js';
import { precisionRecall } from './classification.js';
import { ComponentLabeller } from '../image/components.js';
import { vInfo } from './information.js';
import { OverlapCounter } from './overlap.js';
import { pixelCounts } from './pixel.js';
import { randCounts, vRand } from './rand.js';
import { SWEEP_THRESHOLDS, WARPING_THRESHOLDS } from './thresholds.js';
import { METRIC_NAMES, type EvaluateOptions, type EvaluationResult, type MetricName } from './types.js';
import { validateInputs } from './validate.js';
import { WarpingErrorCounter } from './warping.js';
import { WatershedThinner } from './watershed.js';
import { EmsegError } from '../errors.js';

const table = (rows: number, cols: number): number[][] => Array.from({ length: rows }, () => new Array<number>(cols).fill(0));

/**
 * Index of the best value, scanning like the Fiji scripts: start from `initial` at index 0 and
 * move only on a strict improvement, so ties keep the first threshold and NaN never wins.
 */
function best(values: number[], better: (a: number, b: number) => boolean, initial: number): { value: number; index: number } {
  let value = initial;
  let index = 0;
  values.forEach((v, i) => {
    if (better(v, value)) {
      value = v;
      index = i;
    }
  });
  return { value, index };
}

/** Mean of the defined (non-NaN) values: slices without ground-truth foreground have no score. */
function meanDefined(values: number[]): number {
  let sum = 0;
  let count = 0;
  for (const v of values) {
    if (!Number.isNaN(v)) {
      sum += v;
      count++;
    }
  }
  return count > 0 ? sum / count : NaN;
}

function requestedMetrics(metrics: MetricName[] | undefined): Set<MetricName> {
  const wanted = new Set<MetricName>(metrics ?? METRIC_NAMES);
  for (const m of wanted) {
    if (!METRIC_NAMES.includes(m)) throw new EmsegError('invalid-option', 'metrics', `unknown metric '${String(m)}'; expected one of ${METRIC_NAMES.join(', ')}`);
  }
  return wanted;
}

/**
 * Scores a proposal against the ground truth with the ISBI 2012 challenge metrics, reproducing
 * the reference Fiji implementation. `gt`: 0 = membrane, nonzero = cell interior. `proposal`:
 * probability of non-membrane in [0, 1]. Everything is computed slice by slice in 2-D.
 */
export function evaluateStacks(gt: ImageStack, proposal: ImageStack, options: EvaluateOptions = {}): EvaluationResult {
  validateInputs(gt, proposal);
  const wanted = requestedMetrics(options.metrics);
  const { width, height, depth } = gt;
  const pixels = width * height;
  const thresholds = [...SWEEP_THRESHOLDS];
  const warpingThresholds = [...WARPING_THRESHOLDS];
  const nT = thresholds.length;
  const nW = warpingThresholds.length;

  const doPixel = wanted.has('pixel_error');
  const doRand = wanted.has('rand_error');
  const doWarping = wanted.has('warping_error');
  const doVRand = wanted.has('v_rand');
  const doVInfo = wanted.has('v_info');
  const doSweep = doPixel || doRand || doVRand || doVInfo;
  const needGtLabels = doRand || doVRand || doVInfo;

  const labeller = new ComponentLabeller();
  const overlaps = new OverlapCounter();
  const thinner = new WatershedThinner();
  const warping = new WarpingErrorCounter();
  const gtFg = new Uint8Array(pixels);
  const gtLabels = new Int32Array(pixels);
  const mask = new Uint8Array(pixels);
  const segLabels = new Int32Array(pixels);

  const pixelSums = table(4, nT); // tp, fp, fn, tn
  const pixelErrorSum = new Array<number>(nT).fill(0);
  const randSums = table(3, nT); // tp, fp, fn
  const splits = new Array<number>(nW).fill(0);
  const mergers = new Array<number>(nW).fill(0);
  const vRandSlice = table(nT, depth);
  const vRandMerge = table(nT, depth);
  const vRandSplit = table(nT, depth);
  const vInfoSlice = table(nT, depth);

  const total = depth * ((doSweep ? nT : 0) + (doWarping ? nW : 0));
  let done = 0;
  const progress = (): void => options.onProgress?.(++done, total);

  for (let z = 0; z < depth; z++) {
    const g = sliceOf(gt, z);
    const prop = sliceOf(proposal, z);
    for (let i = 0; i < pixels; i++) gtFg[i] = g[i] !== 0 ? 1 : 0;
    const gtCount = needGtLabels ? labeller.label(gtFg, width, height, gtLabels) : 0;

    if (doSweep) {
      for (let t = 0; t < nT; t++) {
        const th = thresholds[t];
        if (doPixel) {
          const c = pixelCounts(gtFg, prop, th);
          pixelSums[0][t] += c.tp;
          pixelSums[1][t] += c.fp;
          pixelSums[2][t] += c.fn;
          pixelSums[3][t] += c.tn;
          pixelErrorSum[t] += (c.fp + c.fn) / pixels;
        }
        if (doRand) {
          for (let i = 0; i < pixels; i++) mask[i] = prop[i] > th ? 1 : 0;
          const count = labeller.label(mask, width, height, segLabels);
          const c = randCounts(overlaps.count(gtLabels, gtCount, segLabels, count));
          randSums[0][t] += c.tp;
          randSums[1][t] += c.fp;
          randSums[2][t] += c.fn;
        }
        if (doVRand || doVInfo) {
          for (let i = 0; i < pixels; i++) mask[i] = prop[i] > th ? 0 : 1;
          const count = thinner.thin(mask, width, height, segLabels);
          const o = overlaps.count(gtLabels, gtCount, segLabels, count);
          if (doVRand) {
            const s = vRand(o);
            vRandSlice[t][z] = s.score;
            vRandMerge[t][z] = s.merge;
            vRandSplit[t][z] = s.split;
          }
          if (doVInfo) vInfoSlice[t][z] = vInfo(o).score;
        }
        progress();
      }
    }

    if (doWarping) {
      for (let t = 0; t < nW; t++) {
        const e = warping.count(gtFg, prop, width, height, warpingThresholds[t]);
        splits[t] += e.splits;
        mergers[t] += e.mergers;
        progress();
      }
    }
  }

  const result: EvaluationResult = {
    thresholds,
    warping_thresholds: warpingThresholds,
    best_threshold_index: {},
    per_threshold: {},
    per_slice: {},
  };
  const higher = (a: number, b: number): boolean => a > b;
  const pt = result.per_threshold;

  if (doPixel) {
    const scores = thresholds.map((_, t) => precisionRecall(pixelSums[0][t], pixelSums[1][t], pixelSums[2][t]));
    pt.pixel_fscore = scores.map((s) => s.fscore);
    pt.pixel_precision = scores.map((s) => s.precision);
    pt.pixel_recall = scores.map((s) => s.recall);
    pt.pixel_error = pixelErrorSum.map((e) => e / depth);
    [pt.pixel_tp, pt.pixel_fp, pt.pixel_fn, pt.pixel_tn] = pixelSums;
    const b = best(pt.pixel_fscore, higher, 0);
    result.pixel_error = 1 - b.value;
    result.best_threshold_index.pixel_error = b.index;
  }
  if (doRand) {
    const scores = thresholds.map((_, t) => precisionRecall(randSums[0][t], randSums[1][t], randSums[2][t]));
    pt.rand_fscore = scores.map((s) => s.fscore);
    pt.rand_merge = scores.map((s) => s.precision);
    pt.rand_split = scores.map((s) => s.recall);
    const b = best(pt.rand_fscore, higher, 0);
    result.rand_error = 1 - b.value;
    result.best_threshold_index.rand_error = b.index;
  }
  if (doWarping) {
    pt.warping_splits = splits;
    pt.warping_mergers = mergers;
    pt.warping_error = splits.map((s, t) => (s + mergers[t]) / (pixels * depth));
    const b = best(pt.warping_error, (a, c) => a < c, Infinity);
    result.warping_error = b.value;
    result.best_threshold_index.warping_error = b.index;
  }
  if (doVRand) {
    pt.v_rand = vRandSlice.map(meanDefined);
    Object.assign(result.per_slice, { v_rand: vRandSlice, v_rand_merge: vRandMerge, v_rand_split: vRandSplit });
    const b = best(pt.v_rand, higher, 0);
    result.v_rand = b.value;
    result.best_threshold_index.v_rand = b.index;
  }
  if (doVInfo) {
    pt.v_info = vInfoSlice.map(meanDefined);
    result.per_slice.v_info = vInfoSlice;
    const b = best(pt.v_info, higher, 0);
    result.v_info = b.value;
    result.best_threshold_index.v_info = b.index;
  }
  return result;
}
