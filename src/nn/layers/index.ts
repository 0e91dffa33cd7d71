import type { PlanNode } from '../plan.js';
import { convKernel } from './conv.js';
import { addKernel, dropoutKernel, reluKernel } from './elementwise.js';
import { lrnKernel, poolKernel } from './pool.js';
import { concatKernel, cropKernel, softmaxKernel, upsampleKernel } from './shape.js';
import type { LayerKernel } from './types.js';

const kernels: Record<PlanNode['type'], LayerKernel<never>> = {
  conv: convKernel, dense: convKernel, upconv: convKernel, pool: poolKernel, lrn: lrnKernel, relu: reluKernel,
  dropout: dropoutKernel, add: addKernel, crop: cropKernel, concat: concatKernel, upsample: upsampleKernel,
  softmax: softmaxKernel,
};

export function kernelFor(node: PlanNode): LayerKernel<PlanNode> {
  return kernels[node.type] as unknown as LayerKernel<PlanNode>;
}

export type { LayerKernel } from './types.js';
