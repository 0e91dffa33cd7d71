import { z } from 'zod';
import type { LayerDef } from './def.js';
import { numelOf } from './planning.js';
import { common, positiveInt } from './schema.js';

/** Nearest-neighbour upsampling by an integer factor: out[i] = in[floor(i / factor)]. */
const schema = z.object({ ...common, type: z.literal('upsample'), factor: positiveInt }).strict();

const OPS = ['upsampleNearest', 'upsampleNearestBackward'] as const;

export const upsample: LayerDef<typeof schema, { factor: number }, (typeof OPS)[number]> = {
  type: 'upsample',
  schema,
  arity: 'one',
  plan(layer, ctx) {
    const first = ctx.inputs[0]!;
    const [c, h, w] = first.out;
    return { out: [c, h * layer.factor, w * layer.factor], fields: { factor: layer.factor },
      jump: first.jump / layer.factor };
  },
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    return { out: ctx.backend.upsampleNearest(x!, node.factor) };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.upsampleNearestBackward(dy, node.factor)];
  },
  onnx(node, { g, attr, inputs, name }) {
    const scales = g.floats(`${name}_scales`, [4], [1, 1, node.factor, node.factor]);
    // Nearest neighbour, out[i] = in[floor(i / factor)]: emseg's upsampleNearest.
    return g.op('Resize', [inputs[0]!, '', scales], { mode: attr.string('nearest'),
      coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }, name);
  },
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => numelOf(node.out),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
