import type { Padding3, Triple } from '../../backend/backend.js';
import { SpecError } from '../spec-error.js';
import type { Chw, PlanContext, ZAxis } from './def.js';
import { coversExactly, outputSize } from './planning.js';

/** Shape arithmetic the 3-d layer plans share (conv3d, pool3d, upconv3d). Axes are [depth, height, width]. */

export function toTriple(v: number | readonly [number, number, number]): Triple {
  return typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]];
}

/** [front, top, left, back, bottom, right] for a spec's 3-d padding; 'same' puts an odd total's extra voxel after. */
export function resolvePadding3(p: 'valid' | 'same' | number | readonly number[], kernel: Triple, dilation: Triple,
  stride: Triple, where: string): Padding3 {
  if (p === 'valid') return [0, 0, 0, 0, 0, 0];
  if (p === 'same') {
    if (stride.some((s) => s !== 1)) throw new SpecError(`${where}, field "padding": 'same' needs stride 1`);
    const total = kernel.map((k, a) => dilation[a]! * (k - 1));
    const begin = total.map((t) => Math.floor(t / 2));
    return [begin[0]!, begin[1]!, begin[2]!, total[0]! - begin[0]!, total[1]! - begin[1]!, total[2]! - begin[2]!];
  }
  if (typeof p === 'number') return [p, p, p, p, p, p];
  return [p[0]!, p[1]!, p[2]!, p[3]!, p[4]!, p[5]!];
}

/** The first input's [depth, height, width] (the planner has checked it is 3-d). */
export function inputDhw(ctx: PlanContext): { c: number; dhw: Triple; z: ZAxis } {
  const first = ctx.inputs[0]!;
  const [c, h, w] = first.out;
  const z = first.z!;
  return { c, dhw: [z.size, h, w], z };
}

/** Output [depth, height, width] of a window op (convolution, pooling); refuses an empty one naming the layer. */
export function windowOutput(ctx: PlanContext, dhw: Triple, kernel: Triple, stride: Triple, pad: Padding3,
  dilation: Triple): Triple {
  const out = dhw.map((size, a) => outputSize(size, kernel[a]!, stride[a]!, pad[a]!, pad[3 + a]!, dilation[a]!)) as
    unknown as Triple;
  if (out.some((v) => v < 1)) {
    const c = ctx.inputs[0]!.out[0];
    throw new SpecError(`${ctx.at}: input ${c}x${dhw.join('x')} is too small (output would be ${out.join('x')})`);
  }
  return out;
}

/** 3-d layers plan strided tiles only; dense scanning is for 2-d patch classifiers. */
export function refuseDense(ctx: PlanContext): void {
  if (ctx.mode === 'dense') throw new SpecError(`${ctx.at}: dense scanning applies to 2-d patch classifiers only`);
}

/** Receptive field and step after a window of `kernel` (dilated) and `stride`, per axis: in-plane (height) and z. */
export function windowFields(ctx: PlanContext, out: Triple, kernel: Triple, stride: Triple, dilation: Triple):
  { field: number; jump: number; z: ZAxis } {
  const first = ctx.inputs[0]!;
  const z = first.z!;
  return {
    field: first.field + dilation[1] * (kernel[1] - 1) * first.jump, jump: first.jump * stride[1],
    z: { size: out[0], field: z.field + dilation[0] * (kernel[0] - 1) * z.jump, jump: z.jump * stride[0] },
  };
}

/** A window op covers its 3-d input exactly along every axis (no voxel dropped by flooring). */
export function windowAligned3d(input: Chw, inputDepth: number | undefined, kernel: Triple, stride: Triple,
  pad: Padding3, dilation: Triple): boolean {
  const dhw = [inputDepth, input[1], input[2]];
  return dhw.every((size, a) => size === undefined
    || coversExactly(size, kernel[a]!, stride[a]!, pad[a]!, pad[3 + a]!, dilation[a]!));
}
