import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Precision } from '../backend/backend.js';
import { checkParamsFit, type ParamSet } from '../nn/params.js';
import { planModel, type Plan } from '../nn/plan.js';
import { parseModelSpec, type ModelSpec } from '../nn/spec.js';
import { writeFileAtomic } from '../util/atomic.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';

/**
 * A model directory: spec.json (the declarative spec), weights.safetensors, meta.json (training config,
 * versions, validation scores). Loading checks that the weights fit the spec.
 */

export const SPEC_FILE = 'spec.json';
export const WEIGHTS_FILE = 'weights.safetensors';
export const META_FILE = 'meta.json';

export interface LoadedModel {
  dir: string;
  spec: ModelSpec;
  params: ParamSet;
  meta: Record<string, unknown>;
}

/** A plan at a size every zoo model accepts, for checking parameter shapes (which don't depend on size). */
export function probePlan(spec: ModelSpec): Plan {
  const size = spec.window ?? 572;
  return planModel(spec, size, size);
}

export function saveModel(dir: string, spec: ModelSpec, params: ParamSet, meta: Record<string, unknown>): void {
  const tensors = new Map<string, NamedTensor>();
  for (const p of params.values()) tensors.set(p.name, { shape: p.shape, data: p.data });
  writeFileAtomic(join(dir, WEIGHTS_FILE), encodeSafetensors(tensors, { format: 'emseg', model: spec.name }));
  writeFileAtomic(join(dir, SPEC_FILE), `${JSON.stringify(spec, null, 2)}\n`);
  writeFileAtomic(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

export function loadModel(dir: string, precision: Precision = 'float32'): LoadedModel {
  for (const f of [SPEC_FILE, WEIGHTS_FILE]) {
    if (!existsSync(join(dir, f))) throw new Error(`${dir}: not a model directory (missing ${f})`);
  }
  const specPath = join(dir, SPEC_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(specPath, 'utf8'));
  } catch (err) {
    throw new Error(`${specPath}: not valid JSON (${(err as Error).message})`);
  }
  const spec = parseModelSpec(json, specPath);
  const weightsPath = join(dir, WEIGHTS_FILE);
  const { tensors } = decodeSafetensors(readFileSync(weightsPath), weightsPath);
  const params: ParamSet = new Map();
  for (const [name, t] of tensors) {
    const data = precision === 'float64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
    params.set(name, { name, shape: t.shape, data, grad: new (data.constructor as Float32ArrayConstructor)(data.length) });
  }
  checkParamsFit(probePlan(spec), params, weightsPath);
  const metaPath = join(dir, META_FILE);
  const meta = existsSync(metaPath) ? (JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>) : {};
  return { dir, spec, params, meta };
}
