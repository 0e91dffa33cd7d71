import { z } from 'zod';
import { transposeOI3d } from '../../backend/reference/deconv.js';
import { accumulate, exportedWeights, weightsOf } from './conv.js';
import { onnx3dAttrs, type Weighted3dFields, weighted3dFlops, weighted3dParams } from './conv3d.js';
import type { LayerDef } from './def.js';
import { valuesOf } from './planning.js';
import { inputDhw, refuseDense, toTriple } from './planning3d.js';
import { common, init, positiveInt, triple } from './schema.js';

/** 3-d transposed convolution (3-d U-Net up-sampling): out = (in - 1) * stride + kernel per axis, no padding. */
const schema = z.object({
  ...common,
  type: z.literal('upconv3d'),
  out: positiveInt,
  kernel: triple.default(2),
  stride: triple.default(2),
  bias: z.boolean().default(true),
  init: init.default('he'),
}).strict();

const OPS = ['deconv3d', 'deconv3dBackwardData', 'deconv3dBackwardWeights'] as const;

export const upconv3d: LayerDef<typeof schema, Weighted3dFields, (typeof OPS)[number]> = {
  type: 'upconv3d',
  schema,
  arity: 'one',
  dims: 3,
  plan(layer, ctx) {
    refuseDense(ctx);
    const { c, dhw, z: zIn } = inputDhw(ctx);
    const first = ctx.inputs[0]!;
    const kernel = toTriple(layer.kernel);
    const stride = toTriple(layer.stride);
    const out = dhw.map((size, a) => (size - 1) * stride[a]! + kernel[a]!);
    return {
      out: [layer.out, out[1]!, out[2]!],
      fields: { wShape: [layer.out, c, ...kernel], bias: layer.bias, init: layer.init,
        params: { stride, padding: [0, 0, 0, 0, 0, 0], dilation: [1, 1, 1] } },
      jump: first.jump / stride[1],
      z: { size: out[0]!, field: zIn.field, jump: zIn.jump / stride[0] },
    };
  },
  // One multiply-add per weight and input voxel (the input's depth follows from the output's).
  flops: (node, [input]) => weighted3dFlops(node,
    ((node.z!.size - node.wShape[2]) / node.params.stride[0] + 1) * input![1] * input![2]),
  params: weighted3dParams,
  ops: OPS,
  forward(node, [x], ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    return { out: ctx.backend.deconv3d(x!, w.data, w.shape, b?.data ?? null, { ...node.params, training: ctx.training }) };
  },
  backward(node, dy, ctx) {
    const { backend } = ctx;
    const { w, b } = weightsOf(node, ctx.params);
    const x = ctx.inputs[0]!;
    const grads = backend.deconv3dBackwardWeights(x, dy, w.shape, node.params, b !== null);
    accumulate(w.grad, grads.dw);
    if (b && grads.db) accumulate(b.grad, grads.db);
    if (!ctx.needInputGrad[0]) return [null];
    return [backend.deconv3dBackwardData(dy, w.data, w.shape, x.shape, node.params)];
  },
  onnx(node, ctx) {
    const { g, name } = ctx;
    const { w, b } = exportedWeights(node, ctx.params);
    const [o, i, ...k] = node.wShape;
    // emseg's deconvolution weights are [out, in, kd, kh, kw] (oneDNN's); ONNX ConvTranspose wants [in, out, ...].
    const inputs = [ctx.inputs[0]!, g.floats(`${name}_weight`, [i, o, ...k], transposeOI3d(Float32Array.from(w.data), w.shape))];
    if (b) inputs.push(g.floats(`${name}_bias`, [o], b.data));
    return g.op('ConvTranspose', inputs, onnx3dAttrs(node, ctx), name);
  },
  memory: {
    training: (node) => valuesOf(node),
    inference: (node) => valuesOf(node),
  },
  tiling: {
    // Upsamples; the tile grid follows the poolings before it.
    stride: () => 1,
    aligned: () => true,
  },
};
