import { z } from 'zod';
import { EmsegError } from '../../errors.js';
import { SpecError } from '../spec-error.js';
import type { LayerDef } from './def.js';
import { numelOf } from './planning.js';
import { common } from './schema.js';

/** Centre-crop the (first) input to the spatial size of layer `to` (U-Net skips). */
const schema = z.object({ ...common, type: z.literal('crop'), to: z.string().min(1) }).strict();

const OPS = ['crop', 'cropBackward'] as const;
/** Axes of an NCHW tensor's spatial dimensions. */
const SPATIAL_AXES = [2, 3];

export const crop: LayerDef<typeof schema, { top: number; left: number }, (typeof OPS)[number]> = {
  type: 'crop',
  schema,
  arity: 'one',
  plan(layer, ctx) {
    const [c, h, w] = ctx.inputs[0]!.out;
    const target = ctx.earlier(layer.to);
    if (!target) throw new SpecError(`${ctx.at}, field "to": no earlier layer named "${layer.to}"`);
    const [, th, tw] = target;
    if (th > h || tw > w) throw new SpecError(`${ctx.at}: cannot crop ${h}x${w} to the larger ${th}x${tw} of "${layer.to}"`);
    return { out: [c, th, tw], fields: { top: Math.floor((h - th) / 2), left: Math.floor((w - tw) / 2) } };
  },
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    return { out: ctx.backend.crop(x!, node.top, node.left, node.out[1], node.out[2]) };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.cropBackward(dy, ctx.inputs[0]!.shape, node.top, node.left)];
  },
  onnx(node, { g, attr, layer, inputs, name, valueOf: outputOf }) {
    // The offset is fixed (see onnxSizeDependence); the size follows the target layer's output.
    const target = outputOf(layer.to);
    if (target === undefined) throw new EmsegError('internal', `layer "${node.name}"`, 'crop target not resolved');
    const starts = g.int64s(`${name}_starts`, [node.top, node.left]);
    const size = g.op('Shape', [target], { start: attr.int(2), end: attr.int(4) }, `${name}_size`);
    const ends = g.op('Add', [starts, size], {}, `${name}_ends`);
    return g.op('Slice', [inputs[0]!, starts, ends, g.int64s(`${name}_axes`, SPATIAL_AXES)], {}, name);
  },
  onnxSizeDependence: (node, other) => (node.top !== other.top || node.left !== other.left
    ? 'crops by an amount that depends on the input size' : null),
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => numelOf(node.out),
  },
  tiling: {
    stride: () => 1,
    // Centred: an odd difference would shift the crop by half a pixel from tile to tile.
    aligned: (node, [, h, w]) => (h - node.out[1]) % 2 === 0 && (w - node.out[2]) % 2 === 0,
  },
};
