import { z } from 'zod';
import { SpecError } from '../spec-error.js';
import { type CONV_OPS, convolution, emitConv, kernelAligned, planConvolution, weightedFlops, type WeightedFields } from './conv.js';
import type { LayerDef } from './def.js';
import { common, init, positiveInt } from './schema.js';

/** Fully connected layer, run as a convolution whose kernel covers its whole input at the model's window. */
const schema = z.object({
  ...common,
  type: z.literal('dense'),
  out: positiveInt,
  bias: z.boolean().default(true),
  init: init.default('he'),
}).strict();

export const dense: LayerDef<typeof schema, WeightedFields, (typeof CONV_OPS)[number]> = {
  type: 'dense',
  schema,
  arity: 'one',
  sizedAtWindow: true,
  ...convolution,
  plan(layer, ctx) {
    const kernel = ctx.windowKernel;
    if (!kernel) throw new SpecError(`${ctx.at}: dense layers need the spec's "window"`);
    return planConvolution(ctx, { out: layer.out, kernel, stride: [1, 1], dilation: [1, 1],
      padding: () => [0, 0, 0, 0], bias: layer.bias, init: layer.init });
  },
  flops: (node) => weightedFlops(node, node.out[1] * node.out[2]),
  onnx: emitConv,
  tiling: {
    stride: () => 1,
    aligned: (node, input) => kernelAligned(node.params, [node.wShape[2], node.wShape[3]], input),
  },
};
