import { z } from 'zod';
import type { Pool3dParams } from '../../backend/backend.js';
import type { LayerDef } from './def.js';
import { valuesOf } from './planning.js';
import {
  inputDhw, refuseDense, resolvePadding3, toTriple, windowAligned3d, windowFields, windowOutput,
} from './planning3d.js';
import { common, padding3, triple } from './schema.js';

/** 3-d max pooling (stride defaults to the kernel): [1, 2, 2] pools in-plane only (anisotropic data), 2 all axes. */
const schema = z.object({
  ...common,
  type: z.literal('pool3d'),
  kernel: triple.default(2),
  stride: triple.optional(),
  padding: padding3.default('valid'),
  dilation: triple.default(1),
}).strict();

const OPS = ['maxPool3d', 'maxPool3dBackward'] as const;

export const pool3d: LayerDef<typeof schema, { params: Pool3dParams }, (typeof OPS)[number]> = {
  type: 'pool3d',
  schema,
  arity: 'one',
  dims: 3,
  plan(layer, ctx) {
    refuseDense(ctx);
    const { c, dhw } = inputDhw(ctx);
    const kernel = toTriple(layer.kernel);
    const stride = layer.stride === undefined ? kernel : toTriple(layer.stride);
    const dilation = toTriple(layer.dilation);
    const padding = resolvePadding3(layer.padding, kernel, dilation, [1, 1, 1], ctx.at);
    const out = windowOutput(ctx, dhw, kernel, stride, padding, dilation);
    return { out: [c, out[1], out[2]], pads: padding.some((p) => p > 0),
      fields: { params: { kernel, stride, padding, dilation } }, ...windowFields(ctx, out, kernel, stride, dilation) };
  },
  // Comparisons, not multiply-adds.
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    const { y, workspace } = ctx.backend.maxPool3d(x!, node.params, ctx.training);
    return { out: y, saved: workspace ? [workspace] : [] };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.maxPool3dBackward(dy, ctx.saved[0]!, ctx.inputs[0]!.shape, node.params)];
  },
  onnx(node, { g, attr, inputs, name }) {
    const p = node.params;
    return g.op('MaxPool', [inputs[0]!], { kernel_shape: attr.ints(p.kernel), strides: attr.ints(p.stride),
      pads: attr.ints(p.padding), dilations: attr.ints(p.dilation) }, name);
  },
  memory: {
    training: (node) => 2 * valuesOf(node), // output + argmax workspace
    inference: (node) => valuesOf(node),
  },
  tiling: {
    stride: (layer) => toTriple(layer.stride ?? layer.kernel)[1],
    aligned: (node, input, inputDepth) => windowAligned3d(input, inputDepth, node.params.kernel, node.params.stride,
      node.params.padding, node.params.dilation),
  },
};
