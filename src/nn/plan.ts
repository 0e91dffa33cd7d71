import type { Pair } from '../backend/backend.js';
import type { AnyLayerDef, Chw, NodeBase, PlanInput, PlanMode, ZAxis } from './layers/def.js';
import { layerDef, type PlanNode } from './layers/index.js';
import { SpecError } from './spec-error.js';
import type { LayerSpec, ModelSpec } from './spec.js';

export { outputSize, toPair } from './layers/planning.js';
export type { Chw, PlanMode, PlanNode, ZAxis };

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
  /** 3-d networks (spec input dims 3): the input's depth, and the output's depth axis (size, field, step). `input`
   *  and `output` are then [C, H, W] of every section, `field` and `jump` the in-plane (height) ones. */
  inputDepth?: number;
  z?: ZAxis;
}

function layerName(layer: LayerSpec, i: number): string {
  return layer.name ?? `${layer.type}${i}`;
}

function where(layer: LayerSpec, i: number): string {
  return `layer ${i}${layer.name ? ` "${layer.name}"` : ''} (${layer.type})`;
}

/** A layer reads values of its own dimensionality (a def without `dims` is 2-d). */
function checkDims(def: AnyLayerDef, ins: readonly PlanInput[], at: string): void {
  const dims = def.dims ?? 2;
  if (dims === 'any') return;
  for (const input of ins) {
    const is3d = input.z !== undefined;
    if (is3d !== (dims === 3)) {
      throw new SpecError(`${at}, field "inputs": a ${dims}-d layer cannot read the ${is3d ? 3 : 2}-d value "${input.name}"` +
        ` (${is3d ? '3-d networks use conv3d, pool3d and upconv3d' : '3-d layers need a spec whose input has "dims": 3'})`);
    }
  }
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
  /** The input's depth: required for a 3-d spec (input dims 3), refused for a 2-d one. */
  depth?: number;
}

/** Plan the spec for one input of height x width. Throws SpecError naming the layer and field when shapes don't fit. */
export function planModel(spec: ModelSpec, height: number, width: number, options: PlanOptions = {}): Plan {
  const plan = planNodes(spec, height, width, options);
  const last = plan.nodes[plan.nodes.length - 1]!;
  // A sigmoid head gives one independent probability per channel (affinities); `classes` counts softmax classes.
  if (last.type === 'sigmoid') {
    if (spec.targets && spec.targets.length !== last.out[0]) {
      throw new SpecError(`field "targets": names ${spec.targets.length} channels but the output has ${last.out[0]}`);
    }
    return plan;
  }
  if (last.type !== 'softmax') throw new SpecError(`the last layer must be "softmax" or "sigmoid" (got "${last.type}")`);
  if (spec.targets) throw new SpecError('field "targets": only a sigmoid head has per-channel targets (this one is a softmax)');
  if (last.out[0] !== spec.classes) {
    throw new SpecError(`the output has ${last.out[0]} channels but the spec declares ${spec.classes} classes`);
  }
  return plan;
}

/** The image a plan reads: [C, H, W], and its depth axis for a 3-d spec. */
function imageNode(spec: ModelSpec, height: number, width: number, depth: number | undefined): NodeBase {
  const image: NodeBase = { index: -1, name: 'input', inputs: [], out: [spec.input.channels, height, width],
    field: 1, jump: 1, flops: 0 };
  const is3d = spec.input.dims === 3;
  if (is3d && depth === undefined) throw new SpecError('field "input.dims": a 3-d network is planned for an input depth; none was given');
  if (!is3d && depth !== undefined) throw new SpecError(`field "input.dims": a 2-d network has no input depth (got ${depth})`);
  if (depth !== undefined) {
    if (!Number.isInteger(depth) || depth < 1) throw new SpecError(`field "input.dims": the input depth must be a positive integer (got ${depth})`);
    image.z = { size: depth, field: 1, jump: 1 };
  }
  return image;
}

function planNodes(spec: ModelSpec, height: number, width: number, options: PlanOptions): Plan {
  const mode = options.mode ?? 'strided';
  const denseKernels = options.denseKernels ?? denseKernelsAtWindow(spec);
  const names = new Map<string, number>([['input', -1]]);
  const nodes: PlanNode[] = [];
  const image = imageNode(spec, height, width, options.depth);
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
    checkDims(def, ins, at);
    const planned = def.plan(layer, { at, mode, inputs: ins, dilationScale, windowKernel: denseKernels.get(i),
      earlier: (n) => {
        const k = names.get(n);
        return k === undefined || k < 0 ? undefined : nodes[k]!.out;
      },
      earlierDepth: (n) => {
        const k = names.get(n);
        return k === undefined || k < 0 ? undefined : nodes[k]!.z?.size;
      } });
    if (planned.pads) paddingFree = false;
    if (planned.dilates !== undefined) dilationScale *= planned.dilates;
    const first = ins[0]!;
    const node = { index: i, name, inputs, type: layer.type, out: planned.out, ...planned.fields as object,
      field: planned.field ?? first.field, jump: planned.jump ?? first.jump, flops: 0 } as PlanNode;
    const z = planned.z ?? first.z;
    if (z) node.z = z;
    node.flops = def.flops(node, ins.map((n) => n.out));
    names.set(name, i);
    nodes.push(node);
  });

  const last = nodes[nodes.length - 1]!;
  const plan: Plan = { mode, input: image.out, nodes, output: last.out, field: last.field, jump: last.jump,
    flops: nodes.reduce((s, n) => s + n.flops, 0), paddingFree };
  if (image.z) Object.assign(plan, { inputDepth: image.z.size, z: last.z });
  return plan;
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

/** Largest input extent (voxels per axis) the valid-size search tries before giving up. */
const MAX_SEARCH_EXTENT = 1024;

/**
 * Whether every node covers its input exactly (no row, column or section dropped by flooring; crops centred), so
 * that outputs align with the input. `alongDepth`: check the depth axis too (3-d plans).
 */
export function planAligned(plan: Plan, alongDepth = true): boolean {
  return plan.nodes.every((n) => {
    const i = n.inputs[0]!;
    const input = i < 0 ? plan.input : plan.nodes[i]!.out;
    const depth = !alongDepth ? undefined : i < 0 ? plan.inputDepth : plan.nodes[i]!.z?.size;
    return layerDef(n.type).tiling.aligned(n, input, depth);
  });
}

function tryPlan3d(spec: ModelSpec, depth: number, size: number, alongDepth: boolean): Plan | undefined {
  try {
    const plan = planModel(spec, size, size, { depth });
    return planAligned(plan, alongDepth) ? plan : undefined;
  } catch (err) {
    if (err instanceof SpecError) return undefined; // too small at this size
    throw err;
  }
}

/**
 * The smallest exact input of a 3-d network with at least `minOutput` voxels of output along every axis: the
 * in-plane size first (at a depth too large to fail), then the depth at that size; the axes plan independently
 * (anisotropic networks differ per axis). Throws SpecError when none exists up to MAX_SEARCH_EXTENT.
 */
export function smallestInput3d(spec: ModelSpec, minOutput = 1): { depth: number; size: number; plan: Plan } {
  if (spec.input.dims !== 3) throw new SpecError('field "input.dims": only 3-d networks have a 3-d input size');
  // Errors that no size cures (fields, merges, heads) show at the largest size: surfaced as they are.
  planModel(spec, MAX_SEARCH_EXTENT, MAX_SEARCH_EXTENT, { depth: MAX_SEARCH_EXTENT });
  const fits = (p: Plan | undefined, axis: 'plane' | 'depth') =>
    p !== undefined && (axis === 'plane' ? Math.min(p.output[1], p.output[2]) : p.z!.size) >= minOutput;
  let size = 1;
  while (size <= MAX_SEARCH_EXTENT && !fits(tryPlan3d(spec, MAX_SEARCH_EXTENT, size, false), 'plane')) size++;
  let depth = 1;
  let plan: Plan | undefined;
  while (depth <= MAX_SEARCH_EXTENT && !fits(plan = tryPlan3d(spec, depth, size, true), 'depth')) depth++;
  if (size > MAX_SEARCH_EXTENT || !plan) {
    throw new SpecError(`${spec.name}: no input up to ${MAX_SEARCH_EXTENT} voxels per axis fits the network exactly`);
  }
  return { depth, size, plan };
}
