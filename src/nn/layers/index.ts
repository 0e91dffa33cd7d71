import { add } from './add.js';
import { concat } from './concat.js';
import { conv } from './conv.js';
import { conv3d } from './conv3d.js';
import { crop } from './crop.js';
import type { AnyLayerDef, BackendOp, LayerDef, LayerNode, LayerSchema, TypeOf } from './def.js';
import { dense } from './dense.js';
import { dropout } from './dropout.js';
import { lrn } from './lrn.js';
import { pool } from './pool.js';
import { pool3d } from './pool3d.js';
import { relu } from './relu.js';
import { sigmoid } from './sigmoid.js';
import { softmax } from './softmax.js';
import { upconv } from './upconv.js';
import { upconv3d } from './upconv3d.js';
import { upsample } from './upsample.js';

/**
 * The layer registry: the one list of layer types. The spec's layer union (src/nn/spec.ts), the plan's node types,
 * autograd, ONNX export, FLOPs, parameters and memory estimates all come from these defs; see docs/ARCHITECTURE.md,
 * "Adding a layer". The order is the spec schema's (it shows in "expected 'conv' | 'dense' | ..." errors).
 */
export const LAYERS = registry({
  conv, dense, upconv, pool, lrn, relu, dropout, crop, concat, add, upsample, softmax, conv3d, pool3d, upconv3d, sigmoid,
});

/** Each key must be its def's `type` (a def registered under another name does not compile). */
function registry<R extends { [K in keyof R]: AnyLayerDef & { type: K } }>(defs: R): R {
  return defs;
}

type Defs = typeof LAYERS;
export type LayerType = keyof Defs;

/** The planned node of a def: the common fields, its type and the fields its plan resolves. */
type NodeOf<D> = D extends LayerDef<infer Z extends LayerSchema, infer F, BackendOp>
  ? LayerNode<TypeOf<Z>, F> : never;

/** A planned layer: one variant per layer type. */
export type PlanNode = { [K in LayerType]: NodeOf<Defs[K]> }[LayerType];

type Schema = Defs[LayerType]['schema'];

/** The layers' spec schemas, in registry order (the spec's discriminated union is made of them). */
export function layerSchemas(): [Schema, ...Schema[]] {
  return Object.values(LAYERS).map((d) => d.schema) as [Schema, ...Schema[]];
}

/** The def of a layer type, as generic code holds it. */
export function layerDef(type: LayerType): AnyLayerDef {
  return LAYERS[type];
}

export type { AnyLayerDef, BackendOp, Chw, ForwardContext, BackwardContext, LayerDef, PlanMode } from './def.js';
