import { layerDef } from '../../nn/layers/index.js';
import type { ParamSet } from '../../nn/params.js';
import type { Plan } from '../../nn/plan.js';
import type { ModelSpec } from '../../nn/spec.js';
import { attr, type GraphBuilder } from './graph.js';

/**
 * Emits the nodes of one planned network reading `input`, naming values under `prefix`; returns the name of the
 * softmax output. The graph does what emseg's Network does with the same plan (dense-scanning dilations and
 * paddings included); each layer's ONNX form is its def's `onnx` (src/nn/layers/; training-only layers such as
 * dropout pass their input on).
 */
export function emitNetwork(g: GraphBuilder, spec: ModelSpec, plan: Plan, params: ParamSet, input: string,
  prefix: string): string {
  const values: string[] = [];
  const byName = new Map(plan.nodes.map((n) => [n.name, n.index]));
  for (const node of plan.nodes) {
    values[node.index] = layerDef(node.type).onnx(node, {
      g, attr, params, layer: spec.layers[node.index]!, name: `${prefix}${node.name}`,
      inputs: node.inputs.map((i) => (i < 0 ? input : values[i]!)),
      valueOf: (name) => values[byName.get(name) ?? -1],
    });
  }
  return values[plan.nodes.length - 1]!;
}
