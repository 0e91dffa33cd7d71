import { z } from 'zod';
import type { ConvParams, Padding, Pair } from '../../backend/backend.js';
import { EmsegError } from '../../errors.js';
import type { FloatArray, Tensor } from '../../tensor/tensor.js';
import { biasName, weightName, type Param, type ParamSet, type ParamShape } from '../param-set.js';
import { SpecError } from '../spec-error.js';
import type { BackwardContext, Chw, LayerDef, LayerNode, LayerPlan, LayerSchema, OnnxContext, PlanContext } from './def.js';
import { checkSize, coversExactly, numelOf, outputSize, resolvePadding, toPair } from './planning.js';
import { common, init, padding, pair, positiveInt } from './schema.js';

/** 2D convolution; also the shared parts of the layers with weights (dense is a conv, upconv its transpose). */

const schema = z.object({
  ...common,
  type: z.literal('conv'),
  out: positiveInt,
  kernel: pair,
  stride: pair.default(1),
  padding: padding.default('valid'),
  dilation: pair.default(1),
  bias: z.boolean().default(true),
  init: init.default('he'),
}).strict();

/** What a planned layer with weights holds: weights [out, in, kh, kw] (OIHW, also for upconv), bias, init. */
export interface WeightedFields {
  wShape: [number, number, number, number];
  bias: boolean;
  init: 'he' | 'xavier';
  params: ConvParams;
}

type WeightedNode = LayerNode<string, WeightedFields>;

/** Ops of a convolution with an optional fused ReLU (conv and dense). */
export const CONV_OPS = ['conv2d', 'conv2dBackwardData', 'conv2dBackwardWeights', 'reluBackward'] as const;
type ConvOp = (typeof CONV_OPS)[number];

/** How a conv or dense layer is planned, once its kernel, stride, dilation and padding are known. */
export interface ConvLayout {
  out: number;
  kernel: Pair;
  stride: Pair;
  /** Dilation as written (dense scanning multiplies it by the stride of earlier poolings). */
  dilation: Pair;
  /** Resolved once the stride is known to be allowed ('same' needs stride 1). */
  padding: (stride: Pair) => Padding;
  bias: boolean;
  init: 'he' | 'xavier';
}

/** Plans a convolution (conv, and dense with its window-sized kernel); dense scanning dilates and pads it. */
export function planConvolution(ctx: PlanContext, l: ConvLayout): LayerPlan<WeightedFields> {
  const first = ctx.inputs[0]!;
  const [c, h, w] = first.out;
  const scale = ctx.dilationScale;
  const dilation: Pair = [l.dilation[0] * scale, l.dilation[1] * scale];
  if (ctx.mode === 'dense' && (l.stride[0] > 1 || l.stride[1] > 1)) {
    throw new SpecError(`${ctx.at}, field "stride": dense scanning supports strided pooling, not strided convolution`);
  }
  const pad0 = l.padding(l.stride);
  const pads = pad0.some((p) => p > 0);
  const pad = pad0.map((p) => p * scale) as unknown as Padding;
  const oh = outputSize(h, l.kernel[0], l.stride[0], pad[0], pad[2], dilation[0]);
  const ow = outputSize(w, l.kernel[1], l.stride[1], pad[1], pad[3], dilation[1]);
  checkSize(ctx, oh, ow);
  return {
    out: [l.out, oh, ow], pads,
    fields: { wShape: [l.out, c, l.kernel[0], l.kernel[1]], bias: l.bias, init: l.init,
      params: { stride: l.stride, padding: pad, dilation } },
    field: first.field + l.dilation[0] * (l.kernel[0] - 1) * first.jump, jump: first.jump * l.stride[0],
  };
}

/** The weights (and bias, when the layer has one) of a node; refuses a node whose weights were not loaded. */
export function weightsOf(node: Pick<WeightedNode, 'name' | 'bias'>, params: ParamSet): { w: Param; b: Param | null } {
  const w = params.get(weightName(node.name));
  if (!w) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no weights loaded');
  return { w, b: node.bias ? params.get(biasName(node.name)) ?? null : null };
}

export function accumulate(into: FloatArray, g: FloatArray): void {
  for (let i = 0; i < into.length; i++) into[i] += g[i]!;
}

/** Weight (He/Xavier fans over the kernel) and zero-initialised bias. */
export function weightedParams(node: WeightedNode): ParamShape[] {
  const [o, i, kh, kw] = node.wShape;
  const out: ParamShape[] = [{ name: weightName(node.name), shape: [...node.wShape], fanIn: i * kh * kw,
    fanOut: o * kh * kw, init: node.init }];
  if (node.bias) out.push({ name: biasName(node.name), shape: [o], fanIn: 0, fanOut: 0, init: 'zero' });
  return out;
}

/** Multiply-adds of a convolution over `pixels` positions of its input or output grid (2 FLOPs each). */
export function weightedFlops(node: WeightedNode, pixels: number): number {
  const [o, c, kh, kw] = node.wShape;
  return 2 * c * kh * kw * o * pixels;
}

/** emseg pads [top, left, bottom, right], which is ONNX's order too (x1_begin, x2_begin, x1_end, x2_end). */
export function onnxPads(p: readonly number[]): number[] {
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** The exported weight and bias initialisers; refuses a node whose weights were not loaded. */
export function exportedWeights(node: Pick<WeightedNode, 'name' | 'bias'>, params: ParamSet): { w: Param; b: Param | undefined } {
  const w = params.get(weightName(node.name));
  if (!w) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no weights loaded');
  const b = node.bias ? params.get(biasName(node.name)) : undefined;
  if (node.bias && !b) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no bias loaded');
  return { w, b };
}

/** ONNX Conv of a conv or dense node (weights OIHW, as emseg keeps them). */
export function emitConv(node: WeightedNode, ctx: OnnxContext<unknown>): string {
  const { g, attr, name } = ctx;
  const { w, b } = exportedWeights(node, ctx.params);
  const [o, i, kh, kw] = node.wShape;
  const p = node.params;
  const inputs = [ctx.inputs[0]!, g.floats(`${name}_weight`, [o, i, kh, kw], w.data)];
  if (b) inputs.push(g.floats(`${name}_bias`, [o], b.data));
  return g.op('Conv', inputs, { kernel_shape: attr.ints([kh, kw]), strides: attr.ints(p.stride),
    pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
}

/** Whether a convolution or pooling covers its input exactly (see LayerDef.tiling.aligned). */
export function kernelAligned(params: ConvParams, kernel: readonly number[], input: Chw): boolean {
  const { stride, padding: pad, dilation } = params;
  return coversExactly(input[1], kernel[0]!, stride[0], pad[0], pad[2], dilation[0])
    && coversExactly(input[2], kernel[1]!, stride[1], pad[1], pad[3], dilation[1]);
}

/**
 * The backward pass of a weighted layer (convolution or transposed one, 2-d or 3-d; its kernels given): through its
 * fused ReLU first when it runs one, then the weights' gradients (accumulated) and, where wanted, the input's.
 */
export function weightedBackward(ctx: Pick<BackwardContext<'reluBackward'>, 'backend' | 'out' | 'fuseRelu' | 'needInputGrad'>, dy: Tensor,
  w: Param, b: Param | null, weights: (dz: Tensor) => { dw: FloatArray; db: FloatArray | null }, data: (dz: Tensor) => Tensor): (Tensor | null)[] {
  const dz = ctx.fuseRelu ? ctx.backend.reluBackward(ctx.out, dy) : dy;
  try {
    const grads = weights(dz);
    accumulate(w.grad, grads.dw);
    if (b && grads.db) accumulate(b.grad, grads.db);
    return [ctx.needInputGrad[0] ? data(dz) : null];
  } finally {
    if (dz !== dy) dz.dispose();
  }
}

/** The forward, backward and costs conv and dense share (dense is a conv sized by the plan). */
export const convolution: Pick<LayerDef<LayerSchema, WeightedFields, ConvOp, WeightedNode>,
  'ops' | 'forward' | 'backward' | 'params' | 'memory' | 'fusesRelu'> = {
  ops: CONV_OPS,
  fusesRelu: true,
  forward(node, [x], ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    return { out: ctx.backend.conv2d(x!, w.data, w.shape, b?.data ?? null,
      { ...node.params, relu: ctx.fuseRelu, training: ctx.training, ...(ctx.int8 ? { int8: ctx.int8 } : {}) }) };
  },
  backward(node, dy, ctx) {
    const { w, b } = weightsOf(node, ctx.params);
    const x = ctx.inputs[0]!;
    return weightedBackward(ctx, dy, w, b, (dz) => ctx.backend.conv2dBackwardWeights(x, dz, w.shape, node.params, b !== null),
      (dz) => ctx.backend.conv2dBackwardData(dz, w.data, w.shape, x.shape, node.params));
  },
  params: weightedParams,
  memory: {
    training: (_node, s) => s.out,
    inference: (node) => numelOf(node.out),
  },
};

export const conv: LayerDef<typeof schema, WeightedFields, ConvOp> = {
  type: 'conv',
  schema,
  arity: 'one',
  ...convolution,
  plan(layer, ctx) {
    const kernel = toPair(layer.kernel);
    const dilation = toPair(layer.dilation);
    return planConvolution(ctx, { out: layer.out, kernel, stride: toPair(layer.stride), dilation,
      padding: (stride) => resolvePadding(layer.padding, kernel, dilation, stride, ctx.at), bias: layer.bias,
      init: layer.init });
  },
  flops: (node) => weightedFlops(node, node.out[1] * node.out[2]),
  onnx: emitConv,
  tiling: {
    stride: (layer) => (typeof layer.stride === 'number' ? layer.stride : layer.stride[0]),
    aligned: (node, input) => kernelAligned(node.params, [node.wShape[2], node.wShape[3]], input),
  },
};
