import { z } from 'zod';
import { EmsegError } from '../../errors.js';
import type { LayerDef } from './def.js';
import { shapeKept, valuesOf } from './planning.js';
import { common } from './schema.js';

/**
 * A multi-label output layer: an independent probability per channel (affinities to neighbours along z, y, x and
 * long-range offsets; a 1-channel boundary map). Sigmoid at inference, sigmoid binary cross-entropy per channel
 * when training (Network.trainStep folds it into the loss, as softmax into softmaxCrossEntropy).
 */
const schema = z.object({ ...common, type: z.literal('sigmoid') }).strict();

const OPS = ['sigmoid'] as const;

export const sigmoid: LayerDef<typeof schema, object, (typeof OPS)[number]> = {
  type: 'sigmoid',
  schema,
  arity: 'one',
  dims: 'any',
  plan: (_layer, ctx) => shapeKept(ctx, {}),
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(_node, [x], ctx) {
    return { out: ctx.backend.sigmoid(x!) };
  },
  backward() {
    throw new EmsegError('internal', 'sigmoid', 'is trained through sigmoidCrossEntropy, not back-propagated on its own');
  },
  onnx: (_node, { g, inputs, name }) => g.op('Sigmoid', [inputs[0]!], {}, name),
  memory: {
    training: (node) => 2 * valuesOf(node), // probabilities + gradient of the logits
    inference: (node) => valuesOf(node),
  },
  tiling: { stride: () => 1, aligned: () => true },
};
