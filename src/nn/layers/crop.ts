import { z } from 'zod';
import { EmsegError } from '../../errors.js';
import { SpecError } from '../spec-error.js';
import type { LayerDef, LayerPlan, PlanContext } from './def.js';
import { valuesOf } from './planning.js';
import { common } from './schema.js';

/** Centre-crop the (first) input to the spatial size of layer `to` (U-Net skips); 2-d or 3-d. */
const schema = z.object({ ...common, type: z.literal('crop'), to: z.string().min(1) }).strict();

const OPS = ['crop', 'cropBackward', 'crop3d', 'crop3dBackward'] as const;
/** Axes of an NCHW tensor's spatial dimensions, and of an NCDHW tensor's. */
const SPATIAL_AXES = [2, 3];
const SPATIAL_AXES_3D = [2, 3, 4];

/** `front` (the depth offset) only for 3-d values. */
export interface CropFields { top: number; left: number; front?: number }

/** The depth part of a 3-d crop: the target's depth, no deeper than the input's. */
function planDepth(ctx: PlanContext, to: string, [th, tw]: [number, number]): Pick<LayerPlan<unknown>, 'z'> & { front: number } {
  const first = ctx.inputs[0]!;
  const zIn = first.z!;
  const td = ctx.earlierDepth(to);
  if (td === undefined) throw new SpecError(`${ctx.at}, field "to": "${to}" is a 2-d value, the input a 3-d one`);
  if (td > zIn.size) {
    throw new SpecError(`${ctx.at}: cannot crop ${zIn.size}x${first.out[1]}x${first.out[2]} to the larger ${td}x${th}x${tw} of "${to}"`);
  }
  return { front: Math.floor((zIn.size - td) / 2), z: { ...zIn, size: td } };
}

export const crop: LayerDef<typeof schema, CropFields, (typeof OPS)[number]> = {
  type: 'crop',
  schema,
  arity: 'one',
  dims: 'any',
  plan(layer, ctx) {
    const first = ctx.inputs[0]!;
    const [c, h, w] = first.out;
    const target = ctx.earlier(layer.to);
    if (!target) throw new SpecError(`${ctx.at}, field "to": no earlier layer named "${layer.to}"`);
    const [, th, tw] = target;
    if (first.z === undefined && ctx.earlierDepth(layer.to) !== undefined) {
      throw new SpecError(`${ctx.at}, field "to": "${layer.to}" is a 3-d value, the input a 2-d one`);
    }
    if (th > h || tw > w) throw new SpecError(`${ctx.at}: cannot crop ${h}x${w} to the larger ${th}x${tw} of "${layer.to}"`);
    const fields: CropFields = { top: Math.floor((h - th) / 2), left: Math.floor((w - tw) / 2) };
    if (first.z === undefined) return { out: [c, th, tw], fields };
    const { front, z: zOut } = planDepth(ctx, layer.to, [th, tw]);
    return { out: [c, th, tw], fields: { ...fields, front }, z: zOut };
  },
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    if (node.front !== undefined) {
      return { out: ctx.backend.crop3d(x!, node.front, node.top, node.left, node.z!.size, node.out[1], node.out[2]) };
    }
    return { out: ctx.backend.crop(x!, node.top, node.left, node.out[1], node.out[2]) };
  },
  backward(node, dy, ctx) {
    if (node.front !== undefined) return [ctx.backend.crop3dBackward(dy, ctx.inputs[0]!.shape, node.front, node.top, node.left)];
    return [ctx.backend.cropBackward(dy, ctx.inputs[0]!.shape, node.top, node.left)];
  },
  onnx(node, { g, attr, layer, inputs, name, valueOf: outputOf }) {
    // The offset is fixed (see onnxSizeDependence); the size follows the target layer's output.
    const target = outputOf(layer.to);
    if (target === undefined) throw new EmsegError('internal', `layer "${node.name}"`, 'crop target not resolved');
    const is3d = node.front !== undefined;
    const starts = g.int64s(`${name}_starts`, is3d ? [node.front!, node.top, node.left] : [node.top, node.left]);
    const size = g.op('Shape', [target], { start: attr.int(2), end: attr.int(is3d ? 5 : 4) }, `${name}_size`);
    const ends = g.op('Add', [starts, size], {}, `${name}_ends`);
    return g.op('Slice', [inputs[0]!, starts, ends, g.int64s(`${name}_axes`, is3d ? SPATIAL_AXES_3D : SPATIAL_AXES)], {}, name);
  },
  onnxSizeDependence: (node, other) => (node.top !== other.top || node.left !== other.left || node.front !== other.front
    ? 'crops by an amount that depends on the input size' : null),
  memory: {
    training: (node, s) => (node.z ? valuesOf(node) : s.out),
    inference: (node) => valuesOf(node),
  },
  tiling: {
    stride: () => 1,
    // Centred: an odd difference would shift the crop by half a pixel from tile to tile.
    aligned: (node, [, h, w], inputDepth) => (h - node.out[1]) % 2 === 0 && (w - node.out[2]) % 2 === 0
      && (inputDepth === undefined || node.z === undefined || (inputDepth - node.z.size) % 2 === 0),
  },
};
