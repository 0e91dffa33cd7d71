import type { Pair } from '../backend/backend.js';
import type { AnyLayerDef, Chw, NodeBase, PlanMode } from './layers/def.js';
import { layerDef, type PlanNode } from './layers/index.js';
import { SpecError } from './spec-error.js';
import type { LayerSpec, ModelSpec } from './spec.js';

export { outputSize, toPair } from './layers/planning.js';
export type { Chw, PlanMode, PlanNode };

/**
 * Shape inference: turns a validated spec into a plan of resolved nodes for one input size; each layer's own
 * shape rules are its def's `plan` (./layers/). Two modes:
 * - 'strided': layers as written (training tiles; a patch classifier then outputs one pixel per stride);
 * - 'dense': "fast scanning" of a patch classifier: every stride-s pooling becomes stride 1 and all later
 *   kernels are dilated by s, so the net outputs the class of every pixel's window in one pass.
 */

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

function layerName(layer: LayerSpec, i: number): string {
  return layer.name ?? `${layer.type}${i}`;
}

function where(layer: LayerSpec, i: number): string {
  return `layer ${i}${layer.name ? ` "${layer.name}"` : ''} (${layer.type})`;
}

/** Merges (add, concat) take two or more inputs; every other layer exactly one. */
function checkArity(def: AnyLayerDef, inputs: number, at: string): void {
  if (def.arity === 'one' && inputs !== 1) throw new SpecError(`${at}, field "inputs": takes exactly one input, got ${inputs}`);
  if (def.arity === 'several' && inputs < 2) throw new SpecError(`${at}, field "inputs": needs at least two inputs`);
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
    const def = layerDef(layer.type);
    checkArity(def, ins.length, at);
    const planned = def.plan(layer, { at, mode, inputs: ins, dilationScale, windowKernel: denseKernels.get(i),
      earlier: (n) => {
        const k = names.get(n);
        return k === undefined || k < 0 ? undefined : nodes[k]!.out;
      } });
    if (planned.pads) paddingFree = false;
    if (planned.dilates !== undefined) dilationScale *= planned.dilates;
    const first = ins[0]!;
    const node = { index: i, name, inputs, type: layer.type, out: planned.out, ...planned.fields as object,
      field: planned.field ?? first.field, jump: planned.jump ?? first.jump, flops: 0 } as PlanNode;
    node.flops = def.flops(node, ins.map((n) => n.out));
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
  const denseAt = spec.layers.flatMap((l, i) => (layerDef(l.type).sizedAtWindow ? [i] : []));
  if (denseAt.length === 0) return kernels;
  if (spec.window === undefined) {
    const type = spec.layers[denseAt[0]!]!.type;
    throw new SpecError(`layer ${denseAt[0]} (${type}): ${type} layers need the spec's "window"`);
  }
  // Plan layer by layer at the window: a dense layer's kernel is its input's spatial size there.
  for (const i of denseAt) {
    const prefix = { ...spec, layers: spec.layers.slice(0, i) };
    const [, h, w] = i === 0 ? [0, spec.window, spec.window]
      : planNodes(prefix, spec.window, spec.window, { denseKernels: kernels, mode: 'strided' }).output;
    kernels.set(i, [h, w]);
  }
  return kernels;
}
