import { z } from 'zod';
import type { LayerDef } from './def.js';
import { planMerge, valuesOf } from './planning.js';
import { common } from './schema.js';

const schema = z.object({ ...common, type: z.literal('add') }).strict();

const OPS = ['add'] as const;

/** Elementwise sum of two or more inputs of one shape (residual connections). */
export const add: LayerDef<typeof schema, object, (typeof OPS)[number]> = {
  type: 'add',
  schema,
  arity: 'several',
  dims: 'any',
  plan(_layer, ctx) {
    const { out, field, z } = planMerge(ctx, true);
    return { out, field, fields: {}, ...(z ? { z } : {}) };
  },
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(_node, inputs, ctx) {
    let sum = ctx.backend.add(inputs[0]!, inputs[1]!);
    for (const x of inputs.slice(2)) {
      const next = ctx.backend.add(sum, x);
      sum.dispose();
      sum = next;
    }
    return { out: sum };
  },
  backward(_node, dy, ctx) {
    return ctx.inputs.map(() => dy);
  },
  onnx: (_node, { g, inputs, name }) => g.op('Sum', inputs, {}, name),
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => valuesOf(node),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
