import type { ConvParams, LrnParams, Padding, Pair, PoolParams } from '../backend/backend.js';
import { type LayerSpec, type ModelSpec, SpecError } from './spec.js';

/**
 * Shape inference: turns a validated spec into a plan of resolved nodes for one input size.
 * Two modes:
 * - 'strided': layers as written (training tiles; a patch classifier then outputs one pixel per stride);
 * - 'dense': "fast scanning" of a patch classifier: every stride-s pooling becomes stride 1 and all later
 *   kernels are dilated by s, so the net outputs the class of every pixel's window in one pass.
 */

export type PlanMode = 'strided' | 'dense';
/** [channels, height, width] of one sample. */
export type Chw = [number, number, number];

interface NodeBase {
  index: number;
  name: string;
  inputs: number[]; // node indices; -1 = the image
  out: Chw;
  /** Receptive field (pixels) of one output pixel on the image, and the output grid's step on the image in
   *  strided mode (dense mode outputs every pixel, but fields are computed alike). */
  field: number;
  jump: number;
  flops: number; // forward FLOPs for one sample (2 per multiply-add)
}

export type PlanNode = NodeBase & (
  | { type: 'conv' | 'dense' | 'upconv'; wShape: [number, number, number, number]; bias: boolean;
      init: 'he' | 'xavier'; params: ConvParams }
  | { type: 'pool'; params: PoolParams }
  | { type: 'lrn'; params: LrnParams }
  | { type: 'dropout'; rate: number }
  | { type: 'crop'; top: number; left: number }
  | { type: 'upsample'; factor: number }
  | { type: 'relu' | 'concat' | 'add' | 'softmax' }
);

export interface Plan {
  mode: PlanMode;
  input: Chw;
  nodes: PlanNode[];
  output: Chw;
  /** Receptive field of the output and its stride on the image. */
  field: number;
  jump: number;
  flops: number;
  /** Dense mode reproduces sliding-window classification only if no layer pads. */
  paddingFree: boolean;
}

export function toPair(v: number | readonly [number, number]): Pair {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function outputSize(size: number, kernel: number, stride: number, padBefore: number, padAfter: number,
  dilation: number): number {
  return Math.floor((size + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

function resolvePadding(p: 'valid' | 'same' | number | readonly number[], kernel: Pair, dilation: Pair,
  stride: Pair, where: string): Padding {
  if (p === 'valid') return [0, 0, 0, 0];
  if (p === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw new SpecError(`${where}, field "padding": 'same' needs stride 1`);
    const th = dilation[0] * (kernel[0] - 1);
    const tw = dilation[1] * (kernel[1] - 1);
    return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
  }
  if (typeof p === 'number') return [p, p, p, p];
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

function layerName(layer: LayerSpec, i: number): string {
  return layer.name ?? `${layer.type}${i}`;
}

function where(layer: LayerSpec, i: number): string {
  return `layer ${i}${layer.name ? ` "${layer.name}"` : ''} (${layer.type})`;
}

export interface PlanOptions {
  mode?: PlanMode;
  /** Dense layers' kernel sizes (from planning at the window); computed when absent. */
  denseKernels?: Map<number, Pair>;
}

/** Plan the spec for one input of height x width. Throws SpecError naming the layer and field when shapes don't fit. */
export function planModel(spec: ModelSpec, height: number, width: number, options: PlanOptions = {}): Plan {
  const plan = planNodes(spec, height, width, options);
  const last = plan.nodes[plan.nodes.length - 1]!;
  if (last.type !== 'softmax') throw new SpecError(`the last layer must be "softmax" (got "${last.type}")`);
  if (last.out[0] !== spec.classes) {
    throw new SpecError(`the output has ${last.out[0]} channels but the spec declares ${spec.classes} classes`);
  }
  return plan;
}

function planNodes(spec: ModelSpec, height: number, width: number, options: PlanOptions): Plan {
  const mode = options.mode ?? 'strided';
  const denseKernels = options.denseKernels ?? denseKernelsAtWindow(spec);
  const names = new Map<string, number>([['input', -1]]);
  const nodes: PlanNode[] = [];
  const image: NodeBase = { index: -1, name: 'input', inputs: [], out: [spec.input.channels, height, width],
    field: 1, jump: 1, flops: 0 };
  let dilationScale = 1; // dense mode: accumulated stride turned into dilation
  let paddingFree = true;

  spec.layers.forEach((layer, i) => {
    const at = where(layer, i);
    const name = layerName(layer, i);
    if (names.has(name)) throw new SpecError(`${at}, field "name": "${name}" is used twice`);
    const inputs = (layer.inputs ?? [i === 0 ? 'input' : layerName(spec.layers[i - 1]!, i - 1)]).map((n) => {
      const idx = names.get(n);
      if (idx === undefined) throw new SpecError(`${at}, field "inputs": no earlier layer named "${n}"`);
      return idx;
    });
    const ins = inputs.map((k) => (k < 0 ? image : nodes[k]!));
    const first = ins[0]!;
    const [c, h, w] = first.out;
    const base = { index: i, name, inputs, field: first.field, jump: first.jump, flops: 0 };
    const needOne = () => {
      if (ins.length !== 1) throw new SpecError(`${at}, field "inputs": takes exactly one input, got ${ins.length}`);
    };
    const checkSize = (oh: number, ow: number) => {
      if (oh < 1 || ow < 1) {
        throw new SpecError(`${at}: input ${c}x${h}x${w} is too small (output would be ${oh}x${ow})`);
      }
    };
    let node: PlanNode;
    switch (layer.type) {
      case 'conv':
      case 'dense': {
        needOne();
        const kernel = layer.type === 'conv' ? toPair(layer.kernel) : denseKernels.get(i);
        if (!kernel) throw new SpecError(`${at}: dense layers need the spec's "window"`);
        const stride = layer.type === 'conv' ? toPair(layer.stride) : ([1, 1] as Pair);
        const dil0 = layer.type === 'conv' ? toPair(layer.dilation) : ([1, 1] as Pair);
        const dilation: Pair = [dil0[0] * dilationScale, dil0[1] * dilationScale];
        if (mode === 'dense' && (stride[0] > 1 || stride[1] > 1)) {
          throw new SpecError(`${at}, field "stride": dense scanning supports strided pooling, not strided convolution`);
        }
        const pad0 = layer.type === 'conv' ? resolvePadding(layer.padding, kernel, dil0, stride, at) : [0, 0, 0, 0];
        if (pad0.some((p) => p > 0)) paddingFree = false;
        const padding = pad0.map((p) => p * dilationScale) as unknown as Padding;
        const oh = outputSize(h, kernel[0], stride[0], padding[0], padding[2], dilation[0]);
        const ow = outputSize(w, kernel[1], stride[1], padding[1], padding[3], dilation[1]);
        checkSize(oh, ow);
        node = { ...base, type: layer.type, out: [layer.out, oh, ow], wShape: [layer.out, c, kernel[0], kernel[1]],
          bias: layer.bias, init: layer.init, params: { stride, padding, dilation },
          field: first.field + dil0[0] * (kernel[0] - 1) * first.jump, jump: first.jump * stride[0], flops: 2 * c * kernel[0] * kernel[1] * layer.out * oh * ow };
        break;
      }
      case 'upconv': {
        needOne();
        if (mode === 'dense') throw new SpecError(`${at}: dense scanning applies to patch classifiers only`);
        const kernel = toPair(layer.kernel);
        const stride = toPair(layer.stride);
        const oh = (h - 1) * stride[0] + kernel[0];
        const ow = (w - 1) * stride[1] + kernel[1];
        node = { ...base, type: 'upconv', out: [layer.out, oh, ow], wShape: [layer.out, c, kernel[0], kernel[1]],
          bias: layer.bias, init: layer.init, params: { stride, padding: [0, 0, 0, 0], dilation: [1, 1] },
          jump: first.jump / stride[0], flops: 2 * c * kernel[0] * kernel[1] * layer.out * h * w };
        break;
      }
      case 'pool': {
        needOne();
        const kernel = toPair(layer.kernel);
        const stride0 = layer.stride === undefined ? kernel : toPair(layer.stride);
        const dil0 = toPair(layer.dilation);
        const pad0 = resolvePadding(layer.padding, kernel, dil0, [1, 1], at);
        if (pad0.some((p) => p > 0)) paddingFree = false;
        const dense = mode === 'dense';
        const stride: Pair = dense ? [1, 1] : stride0;
        const dilation: Pair = [dil0[0] * dilationScale, dil0[1] * dilationScale];
        const padding = pad0.map((p) => p * dilationScale) as unknown as Padding;
        const oh = outputSize(h, kernel[0], stride[0], padding[0], padding[2], dilation[0]);
        const ow = outputSize(w, kernel[1], stride[1], padding[1], padding[3], dilation[1]);
        checkSize(oh, ow);
        node = { ...base, type: 'pool', out: [c, oh, ow], params: { kernel, stride, padding, dilation },
          field: first.field + dil0[0] * (kernel[0] - 1) * first.jump, jump: first.jump * stride0[0] };
        if (dense) dilationScale *= stride0[0];
        break;
      }
      case 'lrn':
        needOne();
        node = { ...base, type: 'lrn', out: [c, h, w],
          params: { region: layer.region, size: layer.size, alpha: layer.alpha, beta: layer.beta, k: layer.k } };
        break;
      case 'relu':
      case 'softmax':
        needOne();
        node = { ...base, type: layer.type, out: [c, h, w] };
        break;
      case 'dropout':
        needOne();
        node = { ...base, type: 'dropout', out: [c, h, w], rate: layer.rate };
        break;
      case 'upsample':
        needOne();
        node = { ...base, type: 'upsample', out: [c, h * layer.factor, w * layer.factor], factor: layer.factor,
          jump: first.jump / layer.factor };
        break;
      case 'crop': {
        needOne();
        const target = names.get(layer.to);
        if (target === undefined || target < 0) throw new SpecError(`${at}, field "to": no earlier layer named "${layer.to}"`);
        const [, th, tw] = nodes[target]!.out;
        if (th > h || tw > w) throw new SpecError(`${at}: cannot crop ${h}x${w} to the larger ${th}x${tw} of "${layer.to}"`);
        node = { ...base, type: 'crop', out: [c, th, tw], top: Math.floor((h - th) / 2), left: Math.floor((w - tw) / 2) };
        break;
      }
      case 'concat':
      case 'add': {
        if (ins.length < 2) throw new SpecError(`${at}, field "inputs": needs at least two inputs`);
        for (const other of ins) {
          if (other.out[1] !== h || other.out[2] !== w || (layer.type === 'add' && other.out[0] !== c)) {
            throw new SpecError(`${at}: input "${other.name}" is ${other.out.join('x')}, but "${first.name}" is ${c}x${h}x${w}`);
          }
        }
        const channels = layer.type === 'concat' ? ins.reduce((s, n) => s + n.out[0], 0) : c;
        node = { ...base, type: layer.type, out: [channels, h, w], field: Math.max(...ins.map((n) => n.field)) };
        break;
      }
    }
    names.set(name, i);
    nodes.push(node);
  });

  const last = nodes[nodes.length - 1]!;
  return { mode, input: image.out, nodes, output: last.out, field: last.field, jump: last.jump,
    flops: nodes.reduce((s, n) => s + n.flops, 0), paddingFree };
}

/** Dense layers are convolutions covering their whole input when the model sees exactly its window. */
export function denseKernelsAtWindow(spec: ModelSpec): Map<number, Pair> {
  const kernels = new Map<number, Pair>();
  const denseAt = spec.layers.flatMap((l, i) => (l.type === 'dense' ? [i] : []));
  if (denseAt.length === 0) return kernels;
  if (spec.window === undefined) throw new SpecError(`layer ${denseAt[0]} (dense): dense layers need the spec's "window"`);
  // Plan layer by layer at the window: a dense layer's kernel is its input's spatial size there.
  for (const i of denseAt) {
    const prefix = { ...spec, layers: spec.layers.slice(0, i) };
    const [, h, w] = i === 0 ? [0, spec.window, spec.window]
      : planNodes(prefix, spec.window, spec.window, { denseKernels: kernels, mode: 'strided' }).output;
    kernels.set(i, [h, w]);
  }
  return kernels;
}
