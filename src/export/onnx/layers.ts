import { EmsegError } from '../../errors.js';
import { transposeOI } from '../../backend/reference/deconv.js';
import type { LrnParams } from '../../backend/backend.js';
import { biasName, weightName, type ParamSet } from '../../nn/params.js';
import type { Plan, PlanNode } from '../../nn/plan.js';
import type { ModelSpec } from '../../nn/spec.js';
import { attr, type GraphBuilder } from './graph.js';

type ConvNode = Extract<PlanNode, { type: 'conv' | 'dense' | 'upconv' }>;

/** Axes of an NCHW tensor's spatial dimensions. */
const SPATIAL_AXES = [2, 3];
/** Channel axis of NCHW. */
const CHANNEL_AXIS = 1;

/**
 * Emits the nodes of one planned network reading `input`, naming values under `prefix`; returns the name of the
 * softmax output. The graph does what emseg's Network does with the same plan (dense-scanning dilations and
 * paddings included); training-only layers (dropout) pass their input on.
 */
export function emitNetwork(g: GraphBuilder, spec: ModelSpec, plan: Plan, params: ParamSet, input: string,
  prefix: string): string {
  const values: string[] = [];
  const byName = new Map(plan.nodes.map((n) => [n.name, n.index]));
  for (const node of plan.nodes) {
    const ins = node.inputs.map((i) => (i < 0 ? input : values[i]!));
    const layer = spec.layers[node.index]!;
    const cropTarget = layer.type === 'crop' ? values[byName.get(layer.to) ?? -1] : undefined;
    values[node.index] = emitNode(g, node, ins, cropTarget, params, `${prefix}${node.name}`);
  }
  return values[plan.nodes.length - 1]!;
}

function emitNode(g: GraphBuilder, node: PlanNode, ins: string[], cropTarget: string | undefined, params: ParamSet,
  name: string): string {
  const x = ins[0]!;
  switch (node.type) {
    case 'conv':
    case 'dense':
    case 'upconv':
      return emitConv(g, node, x, params, name);
    case 'pool': {
      const p = node.params;
      return g.op('MaxPool', [x], { kernel_shape: attr.ints(p.kernel), strides: attr.ints(p.stride),
        pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
    }
    case 'lrn':
      return emitLrn(g, x, node.params, node.out[0], name);
    case 'relu':
      return g.op('Relu', [x], {}, name);
    case 'dropout':
      return x;
    case 'softmax':
      return g.op('Softmax', [x], { axis: attr.int(CHANNEL_AXIS) }, name);
    case 'concat':
      return g.op('Concat', ins, { axis: attr.int(CHANNEL_AXIS) }, name);
    case 'add':
      return g.op('Sum', ins, {}, name);
    case 'upsample': {
      const scales = g.floats(`${name}_scales`, [4], [1, 1, node.factor, node.factor]);
      // Nearest neighbour, out[i] = in[floor(i / factor)]: emseg's upsampleNearest.
      return g.op('Resize', [x, '', scales], { mode: attr.string('nearest'),
        coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') }, name);
    }
    case 'crop': {
      // The offset is fixed (checked by exportGeometry); the size follows the target layer's output.
      if (cropTarget === undefined) throw new EmsegError('internal', `layer "${node.name}"`, 'crop target not resolved');
      const starts = g.int64s(`${name}_starts`, [node.top, node.left]);
      const size = g.op('Shape', [cropTarget], { start: attr.int(2), end: attr.int(4) }, `${name}_size`);
      const ends = g.op('Add', [starts, size], {}, `${name}_ends`);
      return g.op('Slice', [x, starts, ends, g.int64s(`${name}_axes`, SPATIAL_AXES)], {}, name);
    }
  }
}

/** emseg pads [top, left, bottom, right], which is ONNX's order too (x1_begin, x2_begin, x1_end, x2_end). */
function onnxPads(p: readonly number[]): number[] {
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

function emitConv(g: GraphBuilder, node: ConvNode, x: string, params: ParamSet, name: string): string {
  const w = params.get(weightName(node.name));
  if (!w) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no weights loaded');
  const b = node.bias ? params.get(biasName(node.name)) : undefined;
  if (node.bias && !b) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no bias loaded');
  const [o, i, kh, kw] = node.wShape;
  const inputs = [x];
  const p = node.params;
  if (node.type === 'upconv') {
    // emseg's deconvolution weights are [out, in, kh, kw] (oneDNN's); ONNX ConvTranspose wants [in, out, kh, kw].
    inputs.push(g.floats(`${name}_weight`, [i, o, kh, kw], transposeOI(Float32Array.from(w.data), w.shape)));
    if (b) inputs.push(g.floats(`${name}_bias`, [o], b.data));
    return g.op('ConvTranspose', inputs, { kernel_shape: attr.ints([kh, kw]), strides: attr.ints(p.stride),
      pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
  }
  inputs.push(g.floats(`${name}_weight`, [o, i, kh, kw], w.data));
  if (b) inputs.push(g.floats(`${name}_bias`, [o], b.data));
  return g.op('Conv', inputs, { kernel_shape: attr.ints([kh, kw]), strides: attr.ints(p.stride),
    pads: attr.ints(onnxPads(p.padding)), dilations: attr.ints(p.dilation) }, name);
}

/**
 * LRN with emseg's definition (src/backend/reference/lrn.ts): window [c - half, c + half], half = floor((size-1)/2),
 * divisor `size` (across) or size^2 (within), clipped at borders. ONNX's LRN op is the same for an odd size across
 * channels; its window is asymmetric for an even size and it has no within-channel form, so those are written as
 * y = x * (k + conv(x^2, W))^-beta, W holding alpha/S at the taps of emseg's window (zero padding = clipping).
 */
function emitLrn(g: GraphBuilder, x: string, p: LrnParams, channels: number, name: string): string {
  if (p.region === 'across' && p.size % 2 === 1) {
    return g.op('LRN', [x], { size: attr.int(p.size), alpha: attr.float(p.alpha), beta: attr.float(p.beta),
      bias: attr.float(p.k) }, name);
  }
  const half = Math.floor((p.size - 1) / 2);
  const taps = 2 * half + 1;
  const sq = g.op('Mul', [x, x], {}, `${name}_square`);
  let sum: string;
  if (p.region === 'across') {
    const scale = p.alpha / p.size;
    const band = new Float32Array(channels * channels);
    for (let c = 0; c < channels; c++) {
      for (let d = Math.max(c - half, 0); d <= Math.min(c + half, channels - 1); d++) band[c * channels + d] = scale;
    }
    sum = g.op('Conv', [sq, g.floats(`${name}_window`, [channels, channels, 1, 1], band)], { kernel_shape: attr.ints([1, 1]) },
      `${name}_sum`);
  } else {
    const scale = p.alpha / (p.size * p.size);
    const window = new Float32Array(channels * taps * taps).fill(scale);
    sum = g.op('Conv', [sq, g.floats(`${name}_window`, [channels, 1, taps, taps], window)], {
      kernel_shape: attr.ints([taps, taps]), pads: attr.ints([half, half, half, half]), group: attr.int(channels) },
    `${name}_sum`);
  }
  const omega = g.op('Add', [sum, g.floats(`${name}_k`, [], [p.k])], {}, `${name}_omega`);
  const factor = g.op('Pow', [omega, g.floats(`${name}_negbeta`, [], [-p.beta])], {}, `${name}_factor`);
  return g.op('Mul', [x, factor], {}, name);
}
