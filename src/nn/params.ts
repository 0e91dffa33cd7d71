import { EmsegError } from '../errors.js';
import type { Precision } from '../backend/backend.js';
import type { FloatArray } from '../tensor/tensor.js';
import { numel } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { layerDef } from './layers/index.js';
import type { ParamSet, ParamShape } from './param-set.js';
import type { Plan } from './plan.js';

export { biasName, weightName, type Param, type ParamSet, type ParamShape } from './param-set.js';

function allocate(precision: Precision, n: number): FloatArray {
  return precision === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/** The parameter shapes a plan needs, in layer order (each layer's def says which it owns). */
export function paramShapes(plan: Plan): ParamShape[] {
  return plan.nodes.flatMap((node) => layerDef(node.type).params(node));
}

/** He (Kaiming normal, for ReLU nets) or Xavier (Glorot uniform) initialisation, zero biases; seeded. */
export function initParams(plan: Plan, seed: number, precision: Precision = 'float32'): ParamSet {
  const rng = new Rng(seed);
  const params: ParamSet = new Map();
  for (const p of paramShapes(plan)) {
    const n = numel(p.shape);
    const data = allocate(precision, n);
    if (p.init === 'he') {
      const std = Math.sqrt(2 / p.fanIn);
      for (let k = 0; k < n; k++) data[k] = rng.normal() * std;
    } else if (p.init === 'xavier') {
      const limit = Math.sqrt(6 / (p.fanIn + p.fanOut));
      for (let k = 0; k < n; k++) data[k] = (2 * rng.next() - 1) * limit;
    }
    params.set(p.name, { name: p.name, shape: p.shape, data, grad: allocate(precision, n) });
  }
  return params;
}

/** Check that loaded weights match a plan exactly: names, shapes; errors name the parameter. */
export function checkParamsFit(plan: Plan, params: ParamSet, source: string): void {
  const wanted = paramShapes(plan);
  for (const p of wanted) {
    const got = params.get(p.name);
    if (!got) throw new EmsegError('weights-mismatch', source, `missing parameter "${p.name}" (shape ${p.shape.join('x')})`);
    if (got.shape.join('x') !== p.shape.join('x')) {
      throw new EmsegError('weights-mismatch', source, `parameter "${p.name}" has shape ${got.shape.join('x')}, the spec needs ${p.shape.join('x')}`);
    }
  }
  const extra = [...params.keys()].filter((k) => !wanted.some((p) => p.name === k));
  if (extra.length) throw new EmsegError('weights-mismatch', source, `parameters not in the spec: ${extra.join(', ')}`);
}

export function zeroGrads(params: ParamSet): void {
  for (const p of params.values()) p.grad.fill(0);
}
