import type { PlanNode } from '../plan.js';
import type { LayerKernel } from './types.js';

type PoolNode = Extract<PlanNode, { type: 'pool' }>;
type LrnNode = Extract<PlanNode, { type: 'lrn' }>;

export const poolKernel: LayerKernel<PoolNode> = {
  forward(node, [x], ctx) {
    const { y, workspace } = ctx.backend.maxPool2d(x!, node.params, ctx.training);
    return { out: y, saved: workspace ? [workspace] : [] };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.maxPool2dBackward(dy, ctx.saved[0]!, ctx.inputs[0]!.shape, node.params)];
  },
};

export const lrnKernel: LayerKernel<LrnNode> = {
  forward(node, [x], ctx) {
    const { y, workspace } = ctx.backend.lrn(x!, node.params, ctx.training);
    return { out: y, saved: workspace ? [workspace] : [] };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.lrnBackward(ctx.inputs[0]!, dy, ctx.saved[0] ?? null, node.params)];
  },
};
