import { z } from 'zod';
import { transposeOI } from '../../backend/reference/deconv.js';
import { SpecError } from '../spec-error.js';
import { exportedWeights, onnxPads, weightedBackward, weightedFlops, weightedParams, weightsOf, type WeightedFields } from './conv.js';
import type { LayerDef } from './def.js';
import { numelOf, toPair } from './planning.js';
import { common, init, pair, positiveInt } from './schema.js';

/** Transposed convolution (U-Net's up-convolution): out = (in - 1) * stride + kernel, no padding. */
const schema = z.object({
  ...common,
  type: z.literal('upconv'),
  out: positiveInt,
  kernel: pair.default(2),
  stride: pair.default(2),
  bias: z.boolean().default(true),
  init: init.default('he'),
}).strict();

const OPS = ['deconv2d', 'deconv2dBackwardData', 'deconv2dBackwardWeights', 'reluBackward'] as const;

export const upconv: LayerDef<typeof schema, WeightedFields, (typeof OPS)[number]> = {
  type: 'upconv',
  schema,
  arity: 'one',
  plan(layer, ctx) {
    if (ctx.mode === 'dense') throw new SpecError(`${ctx.at}: dense scanning applies to patch classifiers only`);
    const first = ctx.inputs[0]!;
    const [c, h, w] = first.out;
    const kernel = toPair(layer.kernel);
    const stride = toPair(layer.stride);
    return {
      out: [layer.out, (h - 1) * stride[0] + kernel[0], (w - 1) * stride[1] + kernel[1]],
      fields: { wShape: [layer.out, c, kernel[0], kernel[1]], bias: layer.bias, init: layer.init,
        params: { stride, padding: [0, 0, 0, 0], dilation: [1, 1] } },
      jump: first.jump / stride[0],
    };
  },
  // One multiply-add per weight and input pixel.
  flops: (node, [input]) => weightedFlops(node, input![1] * input![2]),
  params: weightedParams,
  ops: OPS,
  // The U-Net's ReLU after each up-convolution runs inside its primitive (one pass over the up-sampled tensor less).
  fusesRelu: true,
  forward(node, [x], ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    return { out: ctx.backend.deconv2d(x!, w.data, w.shape, b?.data ?? null,
      { ...node.params, relu: ctx.fuseRelu, training: ctx.training }) };
  },
  backward(node, dy, ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    const x = ctx.inputs[0]!;
    return weightedBackward(ctx, dy, w, b, (dz) => ctx.backend.deconv2dBackwardWeights(x, dz, w.shape, node.params, b !== null),
      (dz) => ctx.backend.deconv2dBackwardData(dz, w.data, w.shape, x.shape, node.params));
  },
  onnx(node, { g, attr, params, inputs, name }) {
    const { w, b } = exportedWeights(node, params);
    const [o, i, kh, kw] = node.wShape;
    const p = node.params;
    // emseg's deconvolution weights are [out, in, kh, kw] (oneDNN's); ONNX ConvTranspose wants [in, out, kh, kw].
    const onnxInputs = [inputs[0]!, g.floats(`${name}_weight`, [i, o, kh, kw], transposeOI(Float32Array.from(w.data), w.shape))];
    if (b) onnxInputs.push(g.floats(`${name}_bias`, [o], b.data));
    return g.op('ConvTranspose', onnxInputs, { kernel_shape: attr.ints([kh, kw]), strides: attr.ints(p.stride),
      pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
  },
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => numelOf(node.out),
  },
  tiling: {
    // Upsamples; the tile grid follows the poolings before it.
    stride: () => 1,
    aligned: () => true,
  },
};
