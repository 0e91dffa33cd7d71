import { z } from 'zod';
import type { LayerDef } from './def.js';
import { planMerge, valuesOf } from './planning.js';
import { common } from './schema.js';

const schema = z.object({ ...common, type: z.literal('concat') }).strict();

const OPS = ['concat', 'concatBackward'] as const;
/** Channel axis of NCHW (and NCDHW). */
const CHANNEL_AXIS = 1;

/** Concatenation along channels of inputs of one spatial size, 2-d or 3-d (U-Net skips). */
export const concat: LayerDef<typeof schema, object, (typeof OPS)[number]> = {
  type: 'concat',
  schema,
  arity: 'several',
  dims: 'any',
  plan(_layer, ctx) {
    const { channels, out, field, z } = planMerge(ctx, false);
    return { out: [channels.reduce((s, n) => s + n, 0), out[1], out[2]], field, fields: {}, ...(z ? { z } : {}) };
  },
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(_node, inputs, ctx) {
    return { out: ctx.backend.concat(inputs) };
  },
  backward(_node, dy, ctx) {
    return ctx.backend.concatBackward(dy, ctx.inputs.map((x) => x.shape[1]!));
  },
  onnx: (_node, { g, attr, inputs, name }) => g.op('Concat', inputs, { axis: attr.int(CHANNEL_AXIS) }, name),
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => valuesOf(node),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
