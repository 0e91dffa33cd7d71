import { EmsegError } from '../../errors.js';
import type { FloatArray } from '../../tensor/tensor.js';
import { biasName, weightName, type Param, type ParamSet } from '../params.js';
import type { PlanNode } from '../plan.js';
import type { LayerKernel } from './types.js';

type ConvNode = Extract<PlanNode, { type: 'conv' | 'dense' | 'upconv' }>;

function paramsOf(node: ConvNode, params: ParamSet): { w: Param; b: Param | null } {
  const w = params.get(weightName(node.name));
  if (!w) throw new EmsegError('weights-mismatch', `layer "${node.name}"`, 'no weights loaded');
  return { w, b: node.bias ? params.get(biasName(node.name)) ?? null : null };
}

function accumulate(into: FloatArray, g: FloatArray): void {
  for (let i = 0; i < into.length; i++) into[i] += g[i]!;
}

/** conv and dense (dense is a conv sized by the plan) and upconv (transposed conv). */
export const convKernel: LayerKernel<ConvNode> = {
  forward(node, [x], ctx) {
    const { w, b } = paramsOf(node, ctx.params);
    const out = node.type === 'upconv'
      ? ctx.backend.deconv2d(x!, w.data, w.shape, b?.data ?? null, { ...node.params, training: ctx.training })
      : ctx.backend.conv2d(x!, w.data, w.shape, b?.data ?? null,
        { ...node.params, relu: ctx.fuseRelu, training: ctx.training });
    return { out };
  },

  backward(node, dy, ctx) {
    const { backend } = ctx;
    const { w, b } = paramsOf(node, ctx.params);
    const x = ctx.inputs[0]!;
    const dz = ctx.fuseRelu ? backend.reluBackward(ctx.out, dy) : dy;
    try {
      const grads = node.type === 'upconv'
        ? backend.deconv2dBackwardWeights(x, dz, w.shape, node.params, b !== null)
        : backend.conv2dBackwardWeights(x, dz, w.shape, node.params, b !== null);
      accumulate(w.grad, grads.dw);
      if (b && grads.db) accumulate(b.grad, grads.db);
      if (!ctx.needInputGrad[0]) return [null];
      return [node.type === 'upconv'
        ? backend.deconv2dBackwardData(dz, w.data, w.shape, x.shape, node.params)
        : backend.conv2dBackwardData(dz, w.data, w.shape, x.shape, node.params)];
    } finally {
      if (dz !== dy) dz.dispose();
    }
  },
};
