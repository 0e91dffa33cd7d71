import { paramShapes } from '../nn/params.js';
import { planModel } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { numel } from '../tensor/tensor.js';
import { probePlan } from './model-dir.js';

export interface ModelSummary {
  name: string;
  window: number | null;
  receptiveField: number;
  params: number;
  /** Forward FLOPs per output pixel of dense whole-image inference (512x512 output). */
  flopsPerPixel: number;
  description: string;
}

export function summarize(spec: ModelSpec): ModelSummary {
  const probe = probePlan(spec);
  const params = paramShapes(probe).reduce((s, p) => s + numel(p.shape), 0);
  const out = 512;
  const mode = spec.window ? 'dense' : 'strided';
  const size = spec.window ? out + spec.window - 1 : out;
  const plan = planModel(spec, size, size, { mode });
  const pixels = plan.output[1] * plan.output[2];
  return { name: spec.name, window: spec.window ?? null, receptiveField: probe.field, params,
    flopsPerPixel: plan.flops / pixels, description: spec.description ?? '' };
}
