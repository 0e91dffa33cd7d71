import type { Int8Input } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Plan, PlanNode } from './plan.js';

/**
 * int8 inference of a 2-d network: which convolutions run in int8 and with which input scale, from a calibration
 * (the range of each convolution's input over a few sections, recorded by `Int8Recorder`).
 *
 * A convolution runs in int8 when it reads and writes at least INT8_MIN_CHANNELS channels (the 1-channel first layer
 * and the 2-class head stay float32: they cost little and the head's logits are the map). An input never negative in
 * calibration (after a ReLU or a pooling of one) is quantized to u8 with the scale that maps the largest value seen
 * to 255; one with negative values (a U-Net's concat of a skip connection taken before its ReLU) to s8, the largest
 * magnitude seen mapping to 127. Larger values in other sections saturate. Everything else (pooling,
 * up-convolutions, crops, concats, softmax) stays float32.
 */

/** Convolutions with fewer input or output channels than this stay float32. */
export const INT8_MIN_CHANNELS = 8;
/** The largest u8 and s8 codes: the calibrated maximum (magnitude) maps to them. */
const U8_MAX = 255;
const S8_MAX = 127;

/** The range of one convolution's input over the calibration sections. */
export interface InputRange {
  min: number;
  max: number;
}

/** A network's calibration: the input range of each convolution, by layer name (the same for every tile size). */
export interface Int8Calibration {
  ranges: Record<string, InputRange>;
}

function isInt8Candidate(node: PlanNode): boolean {
  return node.type === 'conv' && node.wShape[0] >= INT8_MIN_CHANNELS && node.wShape[1] >= INT8_MIN_CHANNELS;
}

/** How an input with this calibrated range is quantized; null (float32) for an all-zero or non-finite range. */
function quantizationOf(range: InputRange): Int8Input | null {
  const signed = range.min < 0;
  const magnitude = signed ? Math.max(-range.min, range.max) : range.max;
  if (!(magnitude > 0) || !Number.isFinite(magnitude)) return null;
  return { srcScale: (signed ? S8_MAX : U8_MAX) / magnitude, signed };
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

/** Records the input range of every int8 candidate of a float32 network's predictions (Network.predict's observer). */
export class Int8Recorder {
  readonly ranges: Record<string, InputRange> = {};

  observe(node: PlanNode, input: Tensor): void {
    if (!isInt8Candidate(node)) return;
    const data = input.toArray();
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const r = this.ranges[node.name];
    this.ranges[node.name] = r ? { min: Math.min(r.min, min), max: Math.max(r.max, max) } : { min, max };
  }

  calibration(): Int8Calibration {
    return { ranges: { ...this.ranges } };
  }
}
