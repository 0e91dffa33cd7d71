import { layerDef, type LayerType } from './layers/index.js';
import type { Plan } from './plan.js';

/** The activation a layer with `fusesRelu` runs inside its own primitive. */
const FUSED: LayerType = 'relu';

/**
 * Nodes that run the relu after them fused into their primitive (conv + ReLU): a layer whose def `fusesRelu` and
 * whose only consumer is a relu. That relu then shares the node's output tensor. The network (which runs them so)
 * and the training-memory estimate (which counts that tensor once) both ask here.
 */
export function fusedProducers(plan: Plan): Set<number> {
  const consumers: number[][] = plan.nodes.map(() => []);
  for (const node of plan.nodes) for (const i of node.inputs) if (i >= 0) consumers[i]!.push(node.index);
  const fused = new Set<number>();
  for (const node of plan.nodes) {
    const next = consumers[node.index]!;
    if (layerDef(node.type).fusesRelu && next.length === 1 && plan.nodes[next[0]!]!.type === FUSED) fused.add(node.index);
  }
  return fused;
}

/** The nodes the plan's output (its last node) depends on. */
export function liveNodes(plan: Plan): Set<number> {
  const live = new Set<number>();
  const stack = [plan.nodes.length - 1];
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (k < 0 || live.has(k)) continue;
    live.add(k);
    stack.push(...plan.nodes[k]!.inputs);
  }
  return live;
}
