import type { Backend } from '../../backend/backend.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ParamSet } from '../params.js';
import type { PlanNode } from '../plan.js';

/** What a layer's forward needs besides its inputs. */
export interface ForwardContext {
  backend: Backend;
  params: ParamSet;
  training: boolean;
  /** conv + ReLU fused into one primitive (the following relu node then passes its input through). */
  fuseRelu: boolean;
  nextSeed: () => number;
}

export interface ForwardResult {
  out: Tensor;
  /** Tensors kept for backward (workspaces, masks); the graph disposes them after backward. */
  saved?: Tensor[];
}

export interface BackwardContext {
  backend: Backend;
  params: ParamSet;
  inputs: Tensor[];
  out: Tensor;
  saved: Tensor[];
  fuseRelu: boolean;
  /** Which inputs need a gradient (the image never does). */
  needInputGrad: boolean[];
}

export interface LayerKernel<N extends PlanNode = PlanNode> {
  forward(node: N, inputs: Tensor[], ctx: ForwardContext): ForwardResult;
  /** Returns one gradient per input (null where not needed) and accumulates parameter gradients. */
  backward(node: N, dy: Tensor, ctx: BackwardContext): (Tensor | null)[];
}
