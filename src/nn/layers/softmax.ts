import { z } from 'zod';
import { EmsegError } from '../../errors.js';
import type { LayerDef } from './def.js';
import { shapeKept, valuesOf } from './planning.js';
import { common } from './schema.js';

/** The output layer: softmax over classes at inference, softmax cross-entropy when training. */
const schema = z.object({ ...common, type: z.literal('softmax') }).strict();

const OPS = ['softmax'] as const;
/** Channel axis of NCHW. */
const CHANNEL_AXIS = 1;

export const softmax: LayerDef<typeof schema, object, (typeof OPS)[number]> = {
  type: 'softmax',
  schema,
  arity: 'one',
  dims: 'any',
  plan: (_layer, ctx) => shapeKept(ctx, {}),
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(_node, [x], ctx) {
    return { out: ctx.backend.softmax(x!) };
  },
  backward() {
    // Network.trainStep folds this node into the loss (Backend.softmaxCrossEntropy).
    throw new EmsegError('internal', 'softmax', 'is trained through softmaxCrossEntropy, not back-propagated on its own');
  },
  onnx: (_node, { g, attr, inputs, name }) => g.op('Softmax', [inputs[0]!], { axis: attr.int(CHANNEL_AXIS) }, name),
  memory: {
    training: (_node, s) => 2 * s.out, // probabilities + gradient of the logits
    inference: (node) => valuesOf(node),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
