import type { z } from 'zod';
import type { Backend, Int8Input, Pair } from '../../backend/backend.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ParamSet, ParamShape } from '../param-set.js';

/**
 * What a layer type is (model: tfjs's kernel registry, tinygrad's op table): one `LayerDef` per type, in its own
 * module under src/nn/layers/, registered in ./index.ts. Every part is required (except the few marked optional,
 * whose absence is the right default), so a layer type the planner, autograd, export or memory estimates do not
 * know cannot compile. The backends keep their kernels; a def names the backend ops it calls (`ops`), and its
 * forward/backward see only those.
 */

/** 'strided': layers as written; 'dense': patch classifiers scanned densely (strided pooling run at stride 1). */
export type PlanMode = 'strided' | 'dense';
/** [channels, height, width] of one sample. */
export type Chw = [number, number, number];

/**
 * The depth axis of a 3-d network's value (absent in 2-d networks, whose values are [C, H, W]): its size, and the
 * receptive field and grid step along it (the in-plane `field` / `jump` are per axis too: anisotropic nets differ).
 */
export interface ZAxis {
  size: number;
  field: number;
  jump: number;
}

/** Which values a layer reads: 2-d [C, H, W] (the default), 3-d [C, D, H, W], or either (elementwise, merges). */
export type LayerDims = 2 | 3 | 'any';

/** What every planned node has, whatever its type. */
export interface NodeBase {
  index: number;
  name: string;
  inputs: number[]; // node indices; -1 = the image
  out: Chw;
  /** Receptive field (pixels) of one output pixel on the image, and the output grid's step on the image in
   *  strided mode (dense mode outputs every pixel, but fields are computed alike). */
  field: number;
  jump: number;
  flops: number; // forward FLOPs for one sample (2 per multiply-add)
  /** 3-d networks: the output's depth axis (out is then [C, H, W] of each of its z.size sections). */
  z?: ZAxis;
}

/** A planned node of one layer type: the common fields, its type and what the layer's plan resolved. */
export type LayerNode<T extends string, F> = NodeBase & { type: T } & F;

/** A layer's spec schema: a strict zod object whose `type` is the layer type's literal. */
export type LayerSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.ZodRawShape, 'strict'>;

/** The layer type a schema accepts (its `type` literal). */
export type TypeOf<Z extends LayerSchema> = z.output<Z> extends { type: infer T extends string } ? T : string;

/** The backend ops a layer may call (storage is the graph's business). */
export type BackendOp = Exclude<keyof Backend, 'name' | 'precision' | 'fromArray' | 'toArray' | 'release'>;

// ------------------------------------------------------------------ planning

/** A value a layer reads while it is planned: the image or an earlier layer's output. */
export interface PlanInput {
  name: string;
  out: Chw;
  field: number;
  jump: number;
  /** Its depth axis when it is a 3-d value. */
  z?: ZAxis;
}

export interface PlanContext {
  /** 'layer 3 "c1" (conv)': how planning errors start. */
  at: string;
  mode: PlanMode;
  /** The layer's inputs, as many as its `arity` allows (checked before `plan` is called). */
  inputs: readonly PlanInput[];
  /** Dense mode: the stride of earlier poolings, run as dilation by every later kernel. */
  dilationScale: number;
  /** Layers `sizedAtWindow`: their kernel (their input's size when the model sees its window). */
  windowKernel: Pair | undefined;
  /** The output of an earlier layer (not the image) by name. */
  earlier(name: string): Chw | undefined;
  /** The depth of an earlier layer's 3-d output by name (undefined for 2-d values and unknown names). */
  earlierDepth(name: string): number | undefined;
}

export interface LayerPlan<F> {
  out: Chw;
  /** The node's type-specific fields. */
  fields: F;
  /** Receptive field and grid step of the output; the first input's when absent. */
  field?: number;
  jump?: number;
  /** The layer pads its input (dense scanning then no longer equals sliding-window classification). */
  pads?: boolean;
  /** Dense mode: later layers' dilation is multiplied by this (a strided pooling run at stride 1). */
  dilates?: number;
  /** 3-d layers: the output's depth axis; the first input's when absent. */
  z?: ZAxis;
}

// ------------------------------------------------------------------ forward and backward

/** What a layer's forward needs besides its inputs. */
export interface ForwardContext<O extends BackendOp = BackendOp> {
  backend: Pick<Backend, O>;
  params: ParamSet;
  training: boolean;
  /** conv + ReLU fused into one primitive (the following relu node then passes its input through). */
  fuseRelu: boolean;
  nextSeed: () => number;
  /** Inference of a convolution in int8 (nn/int8.ts): how its input is quantized. */
  int8?: Int8Input;
}

export interface ForwardResult {
  out: Tensor;
  /** Tensors kept for backward (workspaces, masks); the graph disposes them after backward. */
  saved?: Tensor[];
}

export interface BackwardContext<O extends BackendOp = BackendOp> {
  backend: Pick<Backend, O>;
  params: ParamSet;
  inputs: Tensor[];
  out: Tensor;
  saved: Tensor[];
  fuseRelu: boolean;
  /** Which inputs need a gradient (the image never does). */
  needInputGrad: boolean[];
}

// ------------------------------------------------------------------ ONNX export

/** An ONNX attribute value (onnx.proto's AttributeProto without its name). */
export interface OnnxAttrValue {
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

/** The graph being written (src/export/onnx/graph.ts's GraphBuilder). */
export interface OnnxGraph {
  /** Adds a node with one output; returns the output's name. */
  op(opType: string, inputs: readonly string[], attrs?: Record<string, OnnxAttrValue>, base?: string): string;
  /** A float32 initialiser. */
  floats(base: string, dims: readonly number[], data: ArrayLike<number>): string;
  /** An int64 initialiser (a 1-d list). */
  int64s(base: string, values: readonly number[]): string;
}

/** Typed attribute constructors (ONNX tells float 1.0 from int 1). */
export interface OnnxAttrs {
  int(i: number): OnnxAttrValue;
  float(f: number): OnnxAttrValue;
  ints(ints: readonly number[]): OnnxAttrValue;
  string(s: string): OnnxAttrValue;
}

export interface OnnxContext<S> {
  g: OnnxGraph;
  attr: OnnxAttrs;
  /** The layer as the spec wrote it. */
  layer: S;
  params: ParamSet;
  /** Value names of the node's inputs. */
  inputs: string[];
  /** Name for the node's output value. */
  name: string;
  /** The value an earlier layer produced, by layer name. */
  valueOf(layerName: string): string | undefined;
}

// ------------------------------------------------------------------ memory

/** Sizes (values per sample) a training-memory cost is computed from. */
export interface TrainingSizes {
  /** The node's output. */
  out: number;
  /** Its first input (the image's size when it reads the image). */
  input: number;
  /** The node runs fused into the layer before it and shares its output tensor (a relu after a conv). */
  fused: boolean;
}

export interface MemoryCost<N> {
  /** Values per sample the node keeps alive through a training step: its output and what it saves for backward. */
  training(node: N, sizes: TrainingSizes): number;
  /** Values per sample the node allocates in one forward pass (the oneDNN pool ends up holding all of them). */
  inference(node: N): number;
}

// ------------------------------------------------------------------ the definition

/**
 * One layer type. Z: its spec schema; F: its node's type-specific fields; O: the backend ops it calls.
 * Methods (not function properties) so that generic code can hold any def as an `AnyLayerDef`.
 */
export interface LayerDef<Z extends LayerSchema, F, O extends BackendOp,
  N extends LayerNode<TypeOf<Z>, F> = LayerNode<TypeOf<Z>, F>> {
  type: TypeOf<Z>;
  /** The spec's JSON for this layer, validated (defaults filled in). */
  schema: Z;
  /** 'one' input, or 'several' (two or more: merges). */
  arity: 'one' | 'several';
  /** The values it reads: 2-d when absent (the planner refuses a 3-d input), 3-d, or either. */
  dims?: LayerDims;
  /** Its kernel covers its whole input when the model sees exactly its window (dense layers); needs `window`. */
  sizedAtWindow?: boolean;
  /** Shape inference: throws SpecError (naming `ctx.at` and the field) when the layer does not fit its inputs. */
  plan(layer: z.output<Z>, ctx: PlanContext): LayerPlan<F>;
  /** Forward FLOPs for one sample (2 per multiply-add; 0 for layers that only move or compare values). */
  flops(node: N, inputs: readonly Chw[]): number;
  /** The parameters the layer owns, in order (weights before bias). */
  params(node: N): ParamShape[];
  /** Backend ops forward and backward call (each backend implements them; see src/backend/backend.ts). */
  ops: readonly O[];
  forward(node: N, inputs: Tensor[], ctx: ForwardContext<O>): ForwardResult;
  /** One gradient per input (null where not needed); accumulates parameter gradients into params[*].grad. */
  backward(node: N, dy: Tensor, ctx: BackwardContext<O>): (Tensor | null)[];
  /** Emits the node's ONNX ops (what forward computes at inference); returns its output value's name. */
  onnx(node: N, ctx: OnnxContext<z.output<Z>>): string;
  /** Why this node's ONNX form, written for one input size, would be wrong at another (null when it is not). */
  onnxSizeDependence?(node: N, atOtherSize: N): string | null;
  memory: MemoryCost<N>;
  tiling: {
    /** The step of the layer's output grid on its input, from the spec (1 for layers that do not subsample). */
    stride(layer: z.output<Z>): number;
    /** Whether the node covers its input exactly (no row or column dropped by flooring, crops centred); 3-d
     *  layers also along the input's depth, `inputDepth`. */
    aligned(node: N, input: Chw, inputDepth?: number): boolean;
  };
  /** A relu right after it runs fused into its primitive (conv and dense). */
  fusesRelu?: boolean;
}

/** Any def, as generic code (planner, network, memory, export) holds it: node and spec types widened. */
export type AnyLayerDef = LayerDef<LayerSchema, unknown, BackendOp, LayerNode<string, unknown>>;
