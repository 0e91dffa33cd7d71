import { EmsegError } from '../../errors.js';
import type { PlanNode } from '../plan.js';
import type { LayerKernel } from './types.js';

type Node<T extends PlanNode['type']> = Extract<PlanNode, { type: T }>;

export const cropKernel: LayerKernel<Node<'crop'>> = {
  forward(node, [x], ctx) {
    return { out: ctx.backend.crop(x!, node.top, node.left, node.out[1], node.out[2]) };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.cropBackward(dy, ctx.inputs[0]!.shape, node.top, node.left)];
  },
};

export const concatKernel: LayerKernel<Node<'concat'>> = {
  forward(_node, inputs, ctx) {
    return { out: ctx.backend.concat(inputs) };
  },
  backward(_node, dy, ctx) {
    return ctx.backend.concatBackward(dy, ctx.inputs.map((x) => x.shape[1]!));
  },
};

export const upsampleKernel: LayerKernel<Node<'upsample'>> = {
  forward(node, [x], ctx) {
    return { out: ctx.backend.upsampleNearest(x!, node.factor) };
  },
  backward(node, dy, ctx) {
    return [ctx.backend.upsampleNearestBackward(dy, node.factor)];
  },
};

export const softmaxKernel: LayerKernel<Node<'softmax'>> = {
  forward(_node, [x], ctx) {
    return { out: ctx.backend.softmax(x!) };
  },
  backward() {
    throw new EmsegError('internal', 'softmax', 'is trained through softmaxCrossEntropy, not back-propagated on its own');
  },
};
