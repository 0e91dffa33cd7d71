import { EmsegError } from '../errors.js';
import type { FloatArray } from '../tensor/tensor.js';
import type { ParamSet } from './params.js';

/** Optimisers update parameters in place from their accumulated gradients. State is exportable for checkpoints. */
export interface Optimizer {
  readonly kind: 'sgd' | 'adam';
  step(params: ParamSet, lr: number): void;
  state(): Record<string, FloatArray>;
  loadState(state: Record<string, FloatArray>): void;
  stepCount: number;
}

export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
}

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

abstract class BaseOptimizer {
  protected slots = new Map<string, FloatArray>();
  stepCount = 0;

  protected slot(key: string, like: FloatArray): FloatArray {
    let s = this.slots.get(key);
    if (s && s.length !== like.length) throw new EmsegError('checkpoint-mismatch', `optimiser state "${key}"`, `has ${s.length} values, expected ${like.length}`);
    if (!s) {
      s = new (like.constructor as Float32ArrayConstructor)(like.length);
      this.slots.set(key, s);
    }
    return s;
  }

  state(): Record<string, FloatArray> {
    return Object.fromEntries(this.slots);
  }

  loadState(state: Record<string, FloatArray>): void {
    this.slots = new Map(Object.entries(state));
  }
}

/** SGD with (heavy-ball) momentum and L2 weight decay on weights (not biases): v = m v + g + wd w; w -= lr v. */
export class Sgd extends BaseOptimizer implements Optimizer {
  readonly kind = 'sgd' as const;
  constructor(private readonly options: SgdOptions = {}) {
    super();
  }

  step(params: ParamSet, lr: number): void {
    const m = this.options.momentum ?? 0.9;
    const decay = this.options.weightDecay ?? 0;
    for (const p of params.values()) {
      const wd = p.name.endsWith('.bias') ? 0 : decay;
      const v = this.slot(`${p.name}.momentum`, p.data);
      const { data, grad } = p;
      for (let i = 0; i < data.length; i++) {
        const vi = m * v[i]! + grad[i]! + wd * data[i]!;
        v[i] = vi;
        data[i] -= lr * vi;
      }
    }
    this.stepCount++;
  }
}

/** Adam (Kingma & Ba) with decoupled weight decay (AdamW) on weights. */
export class Adam extends BaseOptimizer implements Optimizer {
  readonly kind = 'adam' as const;
  constructor(private readonly options: AdamOptions = {}) {
    super();
  }

  step(params: ParamSet, lr: number): void {
    const b1 = this.options.beta1 ?? 0.9;
    const b2 = this.options.beta2 ?? 0.999;
    const eps = this.options.eps ?? 1e-8;
    const decay = this.options.weightDecay ?? 0;
    const t = ++this.stepCount;
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    for (const p of params.values()) {
      const wd = p.name.endsWith('.bias') ? 0 : decay;
      const m = this.slot(`${p.name}.m`, p.data);
      const v = this.slot(`${p.name}.v`, p.data);
      const { data, grad } = p;
      for (let i = 0; i < data.length; i++) {
        const g = grad[i]!;
        const mi = (m[i] = b1 * m[i]! + (1 - b1) * g);
        const vi = (v[i] = b2 * v[i]! + (1 - b2) * g * g);
        data[i] -= lr * ((mi / c1) / (Math.sqrt(vi / c2) + eps) + wd * data[i]!);
      }
    }
  }
}

export type OptimizerConfig =
  | ({ kind: 'sgd' } & SgdOptions)
  | ({ kind: 'adam' } & AdamOptions);

export function createOptimizer(config: OptimizerConfig): Optimizer {
  return config.kind === 'sgd' ? new Sgd(config) : new Adam(config);
}
