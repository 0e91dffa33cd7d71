import { z } from 'zod';
import type { LayerDef } from './def.js';
import { shapeKept, valuesOf } from './planning.js';
import { common } from './schema.js';

const schema = z.object({ ...common, type: z.literal('relu') }).strict();

const OPS = ['relu', 'reluBackward'] as const;

/** ReLU. Right after a conv or dense layer (its only consumer) it runs fused into it and passes its output on. */
export const relu: LayerDef<typeof schema, object, (typeof OPS)[number]> = {
  type: 'relu',
  schema,
  arity: 'one',
  dims: 'any',
  plan: (_layer, ctx) => shapeKept(ctx, {}),
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(_node, [x], ctx) {
    return { out: ctx.fuseRelu ? x! : ctx.backend.relu(x!) };
  },
  backward(_node, dy, ctx) {
    return [ctx.fuseRelu ? dy : ctx.backend.reluBackward(ctx.out, dy)];
  },
  onnx: (_node, { g, inputs, name }) => g.op('Relu', [inputs[0]!], {}, name),
  memory: {
    training: (_node, s) => (s.fused ? 0 : s.out), // fused: shares the conv's output
    inference: (node) => valuesOf(node),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
