import { z } from 'zod';
import type { Conv3dParams } from '../../backend/backend.js';
import { biasName, weightName, type ParamShape } from '../param-set.js';
import { exportedWeights, weightedBackward, weightsOf } from './conv.js';
import type { LayerDef, LayerNode, OnnxContext } from './def.js';
import { valuesOf } from './planning.js';
import {
  inputDhw, refuseDense, resolvePadding3, toTriple, windowAligned3d, windowFields, windowOutput,
} from './planning3d.js';
import { common, init, padding3, positiveInt, triple } from './schema.js';

/** 3-d convolution over [C, D, H, W] values; anisotropic kernels ([1, 3, 3] in-plane, [3, 3, 3], ...). */

const schema = z.object({
  ...common,
  type: z.literal('conv3d'),
  out: positiveInt,
  kernel: triple,
  stride: triple.default(1),
  padding: padding3.default('valid'),
  dilation: triple.default(1),
  bias: z.boolean().default(true),
  init: init.default('he'),
}).strict();

/** What a planned 3-d layer with weights holds: weights [out, in, kd, kh, kw] (OIDHW, also for upconv3d). */
export interface Weighted3dFields {
  wShape: [number, number, number, number, number];
  bias: boolean;
  init: 'he' | 'xavier';
  params: Conv3dParams;
}

type Weighted3dNode = LayerNode<string, Weighted3dFields>;

const OPS = ['conv3d', 'conv3dBackwardData', 'conv3dBackwardWeights', 'reluBackward'] as const;

/** Weight (He/Xavier fans over the 3-d kernel) and zero-initialised bias. */
export function weighted3dParams(node: Weighted3dNode): ParamShape[] {
  const [o, i, kd, kh, kw] = node.wShape;
  const k = kd * kh * kw;
  const out: ParamShape[] = [{ name: weightName(node.name), shape: [...node.wShape], fanIn: i * k, fanOut: o * k,
    init: node.init }];
  if (node.bias) out.push({ name: biasName(node.name), shape: [o], fanIn: 0, fanOut: 0, init: 'zero' });
  return out;
}

/** Multiply-adds of a 3-d convolution over `voxels` positions of its input or output grid (2 FLOPs each). */
export function weighted3dFlops(node: Weighted3dNode, voxels: number): number {
  const [o, c, kd, kh, kw] = node.wShape;
  return 2 * c * kd * kh * kw * o * voxels;
}

/** ONNX Conv / ConvTranspose attributes of a 3-d node (ONNX pads are begins then ends, as emseg's). */
export function onnx3dAttrs(node: Weighted3dNode, { attr }: OnnxContext<unknown>) {
  const p = node.params;
  return { kernel_shape: attr.ints(node.wShape.slice(2)), strides: attr.ints(p.stride), pads: attr.ints(p.padding),
    dilations: attr.ints(p.dilation) };
}

export const conv3d: LayerDef<typeof schema, Weighted3dFields, (typeof OPS)[number]> = {
  type: 'conv3d',
  schema,
  arity: 'one',
  dims: 3,
  fusesRelu: true,
  plan(layer, ctx) {
    refuseDense(ctx);
    const { c, dhw } = inputDhw(ctx);
    const kernel = toTriple(layer.kernel);
    const stride = toTriple(layer.stride);
    const dilation = toTriple(layer.dilation);
    const padding = resolvePadding3(layer.padding, kernel, dilation, stride, ctx.at);
    const out = windowOutput(ctx, dhw, kernel, stride, padding, dilation);
    return {
      out: [layer.out, out[1], out[2]], pads: padding.some((p) => p > 0),
      fields: { wShape: [layer.out, c, ...kernel], bias: layer.bias, init: layer.init, params: { stride, padding, dilation } },
      ...windowFields(ctx, out, kernel, stride, dilation),
    };
  },
  flops: (node) => weighted3dFlops(node, valuesOf(node) / node.out[0]),
  params: weighted3dParams,
  ops: OPS,
  forward(node, [x], ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    return { out: ctx.backend.conv3d(x!, w.data, w.shape, b?.data ?? null,
      { ...node.params, relu: ctx.fuseRelu, training: ctx.training }) };
  },
  backward(node, dy, ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    const x = ctx.inputs[0]!;
    return weightedBackward(ctx, dy, w, b, (dz) => ctx.backend.conv3dBackwardWeights(x, dz, w.shape, node.params, b !== null),
      (dz) => ctx.backend.conv3dBackwardData(dz, w.data, w.shape, x.shape, node.params));
  },
  onnx(node, ctx) {
    const { g, name } = ctx;
    const { w, b } = exportedWeights(node, ctx.params);
    const inputs = [ctx.inputs[0]!, g.floats(`${name}_weight`, node.wShape, w.data)];
    if (b) inputs.push(g.floats(`${name}_bias`, [node.wShape[0]], b.data));
    return g.op('Conv', inputs, onnx3dAttrs(node, ctx), name);
  },
  memory: {
    training: (node) => valuesOf(node),
    inference: (node) => valuesOf(node),
  },
  tiling: {
    stride: (layer) => toTriple(layer.stride)[1],
    aligned: (node, input, inputDepth) => windowAligned3d(input, inputDepth, [node.wShape[2], node.wShape[3],
      node.wShape[4]], node.params.stride, node.params.padding, node.params.dilation),
  },
};
