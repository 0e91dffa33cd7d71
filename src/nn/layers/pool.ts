import { z } from 'zod';
import type { Padding, Pair, PoolParams } from '../../backend/backend.js';
import { kernelAligned, onnxPads } from './conv.js';
import type { LayerDef } from './def.js';
import { checkSize, numelOf, outputSize, resolvePadding, toPair } from './planning.js';
import { common, padding, pair } from './schema.js';

/** Max pooling (stride defaults to the kernel). Dense scanning runs it at stride 1 and dilates later kernels. */
const schema = z.object({
  ...common,
  type: z.literal('pool'),
  kernel: pair.default(2),
  stride: pair.optional(),
  padding: padding.default('valid'),
  dilation: pair.default(1),
}).strict();

const OPS = ['maxPool2d', 'maxPool2dBackward'] as const;

export const pool: LayerDef<typeof schema, { params: PoolParams }, (typeof OPS)[number]> = {
  type: 'pool',
  schema,
  arity: 'one',
  plan(layer, ctx) {
    const first = ctx.inputs[0]!;
    const [c, h, w] = first.out;
    const kernel = toPair(layer.kernel);
    const stride0 = layer.stride === undefined ? kernel : toPair(layer.stride);
    const dil0 = toPair(layer.dilation);
    const pad0 = resolvePadding(layer.padding, kernel, dil0, [1, 1], ctx.at);
    const dense = ctx.mode === 'dense';
    const stride: Pair = dense ? [1, 1] : stride0;
    const scale = ctx.dilationScale;
    const dilation: Pair = [dil0[0] * scale, dil0[1] * scale];
    const pad = pad0.map((p) => p * scale) as unknown as Padding;
    const oh = outputSize(h, kernel[0], stride[0], pad[0], pad[2], dilation[0]);
    const ow = outputSize(w, kernel[1], stride[1], pad[1], pad[3], dilation[1]);
    checkSize(ctx, oh, ow);
    return { out: [c, oh, ow], fields: { params: { kernel, stride, padding: pad, dilation } },
      field: first.field + dil0[0] * (kernel[0] - 1) * first.jump, jump: first.jump * stride0[0],
      pads: pad0.some((p) => p > 0), ...(dense ? { dilates: stride0[0] } : {}) };
  },
  // Comparisons, not multiply-adds.
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    const { y, workspace } = ctx.backend.maxPool2d(x!, node.params, ctx.training);
    return { out: y, saved: workspace ? [workspace] : [] };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.maxPool2dBackward(dy, ctx.saved[0]!, ctx.inputs[0]!.shape, node.params)];
  },
  onnx(node, { g, attr, inputs, name }) {
    const p = node.params;
    return g.op('MaxPool', [inputs[0]!], { kernel_shape: attr.ints(p.kernel), strides: attr.ints(p.stride),
      pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
  },
  memory: {
    training: (_node, s) => 2 * s.out, // output + argmax workspace
    inference: (node) => numelOf(node.out),
  },
  tiling: {
    stride: (layer) => {
      const s = layer.stride ?? layer.kernel;
      return typeof s === 'number' ? s : s[0];
    },
    aligned: (node, input) => kernelAligned(node.params, node.params.kernel, input),
  },
};
