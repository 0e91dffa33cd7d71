import { z } from 'zod';
import type { LayerDef } from './def.js';
import { numelOf, shapeKept } from './planning.js';
import { common } from './schema.js';

const schema = z.object({ ...common, type: z.literal('dropout'), rate: z.number().min(0).lt(1).default(0.5) }).strict();

const OPS = ['dropout', 'dropoutBackward'] as const;

/** Inverted dropout while training; passes its input on at inference (and in the ONNX graph). */
export const dropout: LayerDef<typeof schema, { rate: number }, (typeof OPS)[number]> = {
  type: 'dropout',
  schema,
  arity: 'one',
  plan: (layer, ctx) => shapeKept(ctx, { rate: layer.rate }),
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    if (!ctx.training || node.rate === 0) return { out: x! };
    const { y, mask } = ctx.backend.dropout(x!, node.rate, ctx.nextSeed());
    return { out: y, saved: [mask] };
  },
  backward(_node, dy, ctx) {
    return [ctx.saved.length ? ctx.backend.dropoutBackward(dy, ctx.saved[0]!) : dy];
  },
  onnx: (_node, { inputs }) => inputs[0]!,
  memory: {
    training: (_node, s) => s.out + s.input, // output + mask
    inference: (node) => numelOf(node.out),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
