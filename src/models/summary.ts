import { paramShapes } from '../nn/params.js';
import { planModel, smallestInput3d } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { numel } from '../tensor/tensor.js';
import { probePlan } from './model-dir.js';

export interface ModelSummary {
  name: string;
  window: number | null;
  receptiveField: number;
  params: number;
  /** Forward FLOPs per output pixel of dense whole-image inference (512x512 output); per output voxel for 3-d
   *  networks (at their smallest exact input with at least SUMMARY_OUTPUT_3D voxels of output per axis). */
  flopsPerPixel: number;
  description: string;
  /** 3-d networks: the receptive field per axis [depth, height, width], and the input that plan was made for. */
  receptiveField3d?: [number, number, number];
  input3d?: [number, number, number];
}

/** Output voxels per axis at which a 3-d network's FLOPs per voxel are counted (its valid borders amortised). */
export const SUMMARY_OUTPUT_3D = 64;

function summarize3d(spec: ModelSpec): ModelSummary {
  const probe = smallestInput3d(spec).plan;
  const params = paramShapes(probe).reduce((s, p) => s + numel(p.shape), 0);
  const { depth, size, plan } = smallestInput3d(spec, SUMMARY_OUTPUT_3D);
  const voxels = plan.z!.size * plan.output[1] * plan.output[2];
  // In-plane fields are per row (height); the zoo's kernels are square in-plane, so width's equals it.
  return { name: spec.name, window: null, receptiveField: probe.field, params, flopsPerPixel: plan.flops / voxels,
    description: spec.description ?? '', receptiveField3d: [probe.z!.field, probe.field, probe.field],
    input3d: [depth, size, size] };
}

export function summarize(spec: ModelSpec): ModelSummary {
  if (spec.input.dims === 3) return summarize3d(spec);
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
