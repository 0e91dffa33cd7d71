import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EmsegError, describeError } from '../errors.js';
import type { Precision } from '../backend/backend.js';
import { checkParamsFit, type ParamSet } from '../nn/params.js';
import { planModel, smallestInput3d, type Plan } from '../nn/plan.js';
import { parseModelSpec, type ModelSpec } from '../nn/spec.js';
import { writeFileAtomic } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor, type StoredPrecision } from './safetensors.js';

/**
 * A model directory: spec.json (the declarative spec), weights.safetensors, meta.json (training config,
 * versions, validation scores). Loading checks that the weights fit the spec. An ensemble directory holds
 * ensemble.json (its member folders) and meta.json instead; each member is a model directory inside it.
 */

export const SPEC_FILE = 'spec.json';
export const WEIGHTS_FILE = 'weights.safetensors';
export const META_FILE = 'meta.json';
export const ENSEMBLE_FILE = 'ensemble.json';

export interface LoadedModel {
  dir: string;
  spec: ModelSpec;
  params: ParamSet;
  meta: Record<string, unknown>;
}

/** A plan at a size every zoo model accepts, for checking parameter shapes (which don't depend on size). */
export function probePlan(spec: ModelSpec): Plan {
  if (spec.input.dims === 3) return smallestInput3d(spec).plan;
  const size = spec.window ?? 572;
  return planModel(spec, size, size);
}

export function saveModel(dir: string, spec: ModelSpec, params: ParamSet, meta: Record<string, unknown>,
  precision: StoredPrecision = 'as-is'): void {
  const tensors = new Map<string, NamedTensor>();
  for (const p of params.values()) tensors.set(p.name, { shape: p.shape, data: p.data });
  writeFileAtomic(join(dir, WEIGHTS_FILE), encodeSafetensors(tensors, { format: 'emseg', model: spec.name }, precision));
  writeFileAtomic(join(dir, SPEC_FILE), `${JSON.stringify(spec, null, 2)}\n`);
  writeFileAtomic(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

/** The members of an ensemble directory, or null for a plain model directory. */
export function ensembleMembers(dir: string): string[] | null {
  const path = join(dir, ENSEMBLE_FILE);
  if (!existsSync(path)) return null;
  const members = (readJson(path) as { members?: unknown }).members;
  if (!Array.isArray(members) || members.length === 0 || !members.every((m) => typeof m === 'string' && /^[\w.-]+$/.test(m))) {
    throw new EmsegError('invalid-model', path, `"members" must be a non-empty list of folder names inside ${dir}`);
  }
  return members as string[];
}

/** The models a directory holds: an ensemble's members, or the one model. */
export function loadModels(dir: string, precision: Precision = 'float32'): LoadedModel[] {
  const members = ensembleMembers(dir);
  return members ? members.map((m) => loadModel(join(dir, m), precision)) : [loadModel(dir, precision)];
}

/** A directory's meta.json (a model's or an ensemble's), or {} when it has none. */
export function readModelMeta(dir: string): Record<string, unknown> {
  const path = join(dir, META_FILE);
  return existsSync(path) ? (readJson(path) as Record<string, unknown>) : {};
}

/**
 * Writes an ensemble directory: each model as a member folder (named after its source folder), stored in
 * `precision`, plus ensemble.json and `meta`.
 */
export function saveEnsemble(dir: string, models: readonly LoadedModel[], meta: Record<string, unknown>,
  precision: StoredPrecision = 'as-is'): string[] {
  const names: string[] = [];
  for (const m of models) {
    const base = basename(m.dir).replace(/[^\w.-]/g, '_') || 'member';
    let name = base;
    for (let k = 2; names.includes(name); k++) name = `${base}-${k}`;
    names.push(name);
    saveModel(join(dir, name), m.spec, m.params, m.meta, precision);
  }
  writeFileAtomic(join(dir, ENSEMBLE_FILE), `${JSON.stringify({ members: names }, null, 2)}\n`);
  writeFileAtomic(join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
  return names;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new EmsegError('invalid-model', path, `not valid JSON (${describeError(err)})`);
  }
}

/** The meta.json key of a model's tuned gap-closing options (pipeline/close-gaps.ts reads it). */
export const CLOSE_GAPS_META_KEY = 'close_gaps';
/** The meta.json key of a model's tuned 3-D neuron segmentation (method, thresholds, scores: pipeline/tuned-neurons.ts). */
export const NEURONS_META_KEY = 'segment_neurons';

/** Meta fields (under "data") that record how the training images became [0,1]. */
export const INTENSITY_FIELD = 'intensity';
export const SAMPLE_TYPE_FIELD = 'sample_type';

/** How a model's training images were normalised; models from before the record were trained on 8-bit data divided by 255. */
export interface IntensityRecord {
  /** An --intensity rule (parsed by image/intensity). */
  intensity: string;
  /** Sample type of the training images, when recorded. */
  sampleType?: string;
  /** False for a model without a record (treated as 'dtype'). */
  recorded: boolean;
}

export function intensityRecord(meta: Record<string, unknown>): IntensityRecord {
  const data = meta.data as Record<string, unknown> | undefined;
  const intensity = data?.[INTENSITY_FIELD];
  const sampleType = data?.[SAMPLE_TYPE_FIELD];
  if (typeof intensity !== 'string') return { intensity: 'dtype', recorded: false };
  return { intensity, ...(typeof sampleType === 'string' ? { sampleType } : {}), recorded: true };
}

export function loadModel(dir: string, precision: Precision = 'float32'): LoadedModel {
  const members = ensembleMembers(dir);
  if (members) throw new EmsegError('invalid-model', dir, `an ensemble of ${members.join(', ')}; give one member here (e.g. ${join(dir, members[0]!)})`);
  for (const f of [SPEC_FILE, WEIGHTS_FILE]) {
    if (!existsSync(join(dir, f))) throw new EmsegError('not-found', dir, `not a model directory (missing ${f})`);
  }
  const specPath = join(dir, SPEC_FILE);
  const spec = parseModelSpec(readJson(specPath), specPath);
  const weightsPath = join(dir, WEIGHTS_FILE);
  const { tensors } = decodeSafetensors(readFileSync(weightsPath), weightsPath);
  const params: ParamSet = new Map();
  for (const [name, t] of tensors) {
    const data = precision === 'float64' ? Float64Array.from(t.data) : Float32Array.from(t.data);
    params.set(name, { name, shape: t.shape, data, grad: new (data.constructor as Float32ArrayConstructor)(data.length) });
  }
  checkParamsFit(probePlan(spec), params, weightsPath);
  return { dir, spec, params, meta: readModelMeta(dir) };
}
