import type { PlanNode } from '../plan.js';
import type { LayerKernel } from './types.js';

type Node<T extends PlanNode['type']> = Extract<PlanNode, { type: T }>;

/** A relu right after a conv is fused into it; this node then just passes the conv's output on. */
export const reluKernel: LayerKernel<Node<'relu'>> = {
  forward(_node, [x], ctx) {
    return { out: ctx.fuseRelu ? x! : ctx.backend.relu(x!) };
  },
  backward(_node, dy, ctx) {
    return [ctx.fuseRelu ? dy : ctx.backend.reluBackward(ctx.out, dy)];
  },
};

export const dropoutKernel: LayerKernel<Node<'dropout'>> = {
  forward(node, [x], ctx) {
    if (!ctx.training || node.rate === 0) return { out: x! };
    const { y, mask } = ctx.backend.dropout(x!, node.rate, ctx.nextSeed());
    return { out: y, saved: [mask] };
  },
  backward(_node, dy, ctx) {
    return [ctx.saved.length ? ctx.backend.dropoutBackward(dy, ctx.saved[0]!) : dy];
  },
};

export const addKernel: LayerKernel<Node<'add'>> = {
  forward(_node, inputs, ctx) {
    let sum = ctx.backend.add(inputs[0]!, inputs[1]!);
    for (const x of inputs.slice(2)) {
      const next = ctx.backend.add(sum, x);
      sum.dispose();
      sum = next;
    }
    return { out: sum };
  },
  backward(_node, dy, ctx) {
    return ctx.inputs.map(() => dy);
  },
};
