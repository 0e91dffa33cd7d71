import type { FloatArray } from '../tensor/tensor.js';

/**
 * Parameters as layers see them: names, host arrays and the shapes a layer asks for. A leaf module, so layer
 * definitions (./layers/) can use it without importing the planner or the registry (./params.ts builds on both).
 */

/** A trainable parameter: plain host array (fp32 master copy, also under bf16), with its gradient. */
export interface Param {
  name: string;
  shape: number[];
  data: FloatArray;
  grad: FloatArray;
}

export type ParamSet = Map<string, Param>;

/** A parameter a layer owns: its name, shape and how it is initialised (fans for He / Xavier). */
export interface ParamShape {
  name: string;
  shape: number[];
  fanIn: number;
  fanOut: number;
  init: 'he' | 'xavier' | 'zero';
}

export function weightName(layer: string): string {
  return `${layer}.weight`;
}

export function biasName(layer: string): string {
  return `${layer}.bias`;
}
