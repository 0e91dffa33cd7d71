import type { Int8Input } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Plan, PlanNode } from './plan.js';

/**
 * int8 inference of a 2-d network: which convolutions run in int8 and with which input scale, from a calibration
 * (the range of each convolution's input over a few sections, recorded by `Int8Recorder`).
 *
 * A convolution runs in int8 when it reads and writes at least INT8_MIN_CHANNELS channels (the 1-channel first layer
 * and the 2-class head stay float32: they cost little and the head's logits are the map) and its input was never
 * negative in calibration (after a ReLU or a pooling of one). Its input is quantized to u8 with the scale that maps
 * the calibrated high value (INT8_QUANTILE) to 255; larger values saturate. A convolution whose input holds negative
 * values stays float32: in a U-Net that is the concat of a skip connection taken before its ReLU (at most 2-5 in the
 * shipped models) with an up-convolution's output (up to 25-120), and one scale for both left the skip connection a
 * handful of s8 codes (docs/MODELS.md, "int8 prediction": it cost V_rand). Everything else (pooling,
 * up-convolutions, crops, concats, softmax) stays float32.
 */

/** Convolutions with fewer input or output channels than this stay float32. */
export const INT8_MIN_CHANNELS = 8;
/**
 * An input's calibrated high value is this quantile of its values in each tile (the largest over the tiles): the
 * maximum let a few outliers coarsen every other value's steps (docs/MODELS.md, "int8 prediction").
 */
export const INT8_QUANTILE = 0.9999;
/** The quantile is taken on at most this many values of a tile's tensor, evenly strided (a sort per tensor). */
const QUANTILE_SAMPLE = 1 << 18;
/** The largest u8 code: the calibrated high value maps to it. */
const U8_MAX = 255;

/** What calibration saw of one convolution's input: its smallest value and its high value (INT8_QUANTILE). */
export interface InputRange {
  min: number;
  high: number;
}

/** A network's calibration: the input range of each convolution, by layer name (the same for every tile size). */
export interface Int8Calibration {
  ranges: Record<string, InputRange>;
}

function isInt8Candidate(node: PlanNode): boolean {
  return node.type === 'conv' && node.wShape[0] >= INT8_MIN_CHANNELS && node.wShape[1] >= INT8_MIN_CHANNELS;
}

/** How an input with this calibrated range is quantized; null (float32) for a negative, all-zero or non-finite one. */
function quantizationOf(range: InputRange): Int8Input | null {
  if (range.min < 0 || !(range.high > 0) || !Number.isFinite(range.high)) return null;
  return { srcScale: U8_MAX / range.high };
}

/**
 * How each convolution that runs in int8 quantizes its input, by node index. A candidate the calibration does not
 * name is refused (the calibration is of another network).
 */
export function int8Inputs(plan: Plan, calibration: Int8Calibration, what: string): Map<number, Int8Input> {
  const inputs = new Map<number, Int8Input>();
  for (const node of plan.nodes) {
    if (!isInt8Candidate(node)) continue;
    const range = calibration.ranges[node.name];
    if (!range) throw new EmsegError('mismatch', what, `the int8 calibration has no range for layer "${node.name}": it was made for another network`);
    const q = quantizationOf(range);
    if (q) inputs.set(node.index, q);
  }
  return inputs;
}

/** The smallest value and the INT8_QUANTILE of a tensor's values (the quantile of an evenly strided sample). */
function rangeOf(data: ArrayLike<number>): InputRange {
  let min = Infinity;
  for (let i = 0; i < data.length; i++) if (data[i]! < min) min = data[i]!;
  const step = Math.max(1, Math.floor(data.length / QUANTILE_SAMPLE));
  const sample = new Float32Array(Math.ceil(data.length / step));
  for (let i = 0, k = 0; i < data.length; i += step) sample[k++] = data[i]!;
  sample.sort();
  return { min, high: sample[Math.ceil(INT8_QUANTILE * (sample.length - 1))]! };
}

/** Records the input range of every int8 candidate of a float32 network's predictions (Network.predict's observer). */
export class Int8Recorder {
  readonly ranges: Record<string, InputRange> = {};

  observe(node: PlanNode, input: Tensor): void {
    if (!isInt8Candidate(node)) return;
    const seen = rangeOf(input.toArray());
    const r = this.ranges[node.name];
    this.ranges[node.name] = r ? { min: Math.min(r.min, seen.min), high: Math.max(r.high, seen.high) } : seen;
  }

  calibration(): Int8Calibration {
    return { ranges: { ...this.ranges } };
  }
}
