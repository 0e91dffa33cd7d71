import { z } from 'zod';
import type { LrnParams } from '../../backend/backend.js';
import type { LayerDef, OnnxContext } from './def.js';
import { numelOf, shapeKept } from './planning.js';
import { common, positiveInt } from './schema.js';

/** Local response normalisation, across channels or within each channel (oneDNN's definition). */
const schema = z.object({
  ...common,
  type: z.literal('lrn'),
  region: z.enum(['across', 'within']).default('across'),
  size: positiveInt.default(5),
  alpha: z.number().positive().default(1e-4),
  beta: z.number().positive().default(0.75),
  k: z.number().positive().default(1),
}).strict();

const OPS = ['lrn', 'lrnBackward'] as const;

export const lrn: LayerDef<typeof schema, { params: LrnParams }, (typeof OPS)[number]> = {
  type: 'lrn',
  schema,
  arity: 'one',
  plan: (layer, ctx) =>
    shapeKept(ctx, { params: { region: layer.region, size: layer.size, alpha: layer.alpha, beta: layer.beta, k: layer.k } }),
  // Counted as free: a few operations per value, negligible next to the convolutions.
  flops: () => 0,
  params: () => [],
  ops: OPS,
  forward(node, [x], ctx) {
    const { y, workspace } = ctx.backend.lrn(x!, node.params, ctx.training);
    return { out: y, saved: workspace ? [workspace] : [] };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.lrnBackward(ctx.inputs[0]!, dy, ctx.saved[0] ?? null, node.params)];
  },
  onnx: (node, ctx) => emitLrn(ctx, node.params, node.out[0]),
  memory: {
    training: (_node, s) => s.out + s.input, // output + scale
    inference: (node) => numelOf(node.out),
  },
  tiling: { stride: () => 1, aligned: () => true },
};

/**
 * LRN with emseg's definition (src/backend/reference/lrn.ts): window [c - half, c + half], half = floor((size-1)/2),
 * divisor `size` (across) or size^2 (within), clipped at borders. ONNX's LRN op is the same for an odd size across
 * channels; its window is asymmetric for an even size and it has no within-channel form, so those are written as
 * y = x * (k + conv(x^2, W))^-beta, W holding alpha/S at the taps of emseg's window (zero padding = clipping).
 */
function emitLrn({ g, attr, inputs, name }: OnnxContext<unknown>, p: LrnParams, channels: number): string {
  const x = inputs[0]!;
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
