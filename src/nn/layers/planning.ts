import type { Padding, Pair } from '../../backend/backend.js';
import { SpecError } from '../spec-error.js';
import type { Chw, LayerPlan, PlanContext, ZAxis } from './def.js';

/** Shape arithmetic the layer plans share. */

export function toPair(v: number | readonly [number, number]): Pair {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function outputSize(size: number, kernel: number, stride: number, padBefore: number, padAfter: number,
  dilation: number): number {
  return Math.floor((size + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** [top, left, bottom, right] for a spec's padding; 'same' splits odd totals with the extra pixel after. */
export function resolvePadding(p: 'valid' | 'same' | number | readonly number[], kernel: Pair, dilation: Pair,
  stride: Pair, where: string): Padding {
  if (p === 'valid') return [0, 0, 0, 0];
  if (p === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw new SpecError(`${where}, field "padding": 'same' needs stride 1`);
    const th = dilation[0] * (kernel[0] - 1);
    const tw = dilation[1] * (kernel[1] - 1);
    return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
  }
  if (typeof p === 'number') return [p, p, p, p];
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** Refuses an output of no pixels, naming the layer and its (first) input. */
export function checkSize(ctx: PlanContext, oh: number, ow: number): void {
  if (oh < 1 || ow < 1) {
    const [c, h, w] = ctx.inputs[0]!.out;
    throw new SpecError(`${ctx.at}: input ${c}x${h}x${w} is too small (output would be ${oh}x${ow})`);
  }
}

/** A kernel's output rows/columns are whole: no input row or column is dropped by flooring. */
export function coversExactly(size: number, kernel: number, stride: number, padBefore: number, padAfter: number,
  dilation: number): boolean {
  return (size + padBefore + padAfter - dilation * (kernel - 1) - 1) % stride === 0;
}

/** Values of a planned node's output for one sample: [C, H, W], times its depth when it is 3-d. */
export function valuesOf(node: { out: Chw; z?: ZAxis }): number {
  return numelOf(node.out) * (node.z?.size ?? 1);
}

/** Values in a shape (one sample's activation). */
export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Plans a merge of several inputs (add, concat): their spatial sizes (and channels, when `sameChannels`) must agree;
 * the output's field is the widest input's.
 */
export function planMerge(ctx: PlanContext, sameChannels: boolean): { channels: number[]; out: Chw; field: number; z?: ZAxis } {
  const first = ctx.inputs[0]!;
  const [c, h, w] = first.out;
  for (const other of ctx.inputs) {
    if (other.out[1] !== h || other.out[2] !== w || (sameChannels && other.out[0] !== c) || other.z?.size !== first.z?.size) {
      throw new SpecError(`${ctx.at}: input "${other.name}" is ${describeValue(other)}, but "${first.name}" is ${describeValue(first)}`);
    }
  }
  const out = { channels: ctx.inputs.map((n) => n.out[0]), out: [c, h, w] as Chw, field: Math.max(...ctx.inputs.map((n) => n.field)) };
  if (!first.z) return out;
  return { ...out, z: { ...first.z, field: Math.max(...ctx.inputs.map((n) => n.z!.field)) } };
}

/** CxHxW of a 2-d value, CxDxHxW of a 3-d one (planning errors). */
export function describeValue(v: { out: Chw; z?: ZAxis }): string {
  const [c, h, w] = v.out;
  return v.z ? `${c}x${v.z.size}x${h}x${w}` : `${c}x${h}x${w}`;
}

/** The plan of a layer that keeps its input's shape (activations, dropout, normalisation). */
export function shapeKept<F>(ctx: PlanContext, fields: F): LayerPlan<F> {
  const [c, h, w] = ctx.inputs[0]!.out;
  return { out: [c, h, w], fields };
}
