/**
 * A model's tuned 3-D neuron segmentation, recorded in its meta.json under "segment_neurons" as its gap-closing
 * options are under "close_gaps" (close-gaps.ts): `emseg tune-segment --method M --model-dir DIR` records the best
 * row (method, thresholds, its scores, the labels it was tuned on); `emseg segment --method` on maps whose record
 * names that one model (`emseg.models`, as emseg predict writes it) takes the thresholds not given as flags from
 * it, and `--method auto` the method too. Flags win, then the record, then the defaults; the notice says which
 * option came from where. A damaged record is refused naming the file and field, never half used.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { EmsegError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { isUrl, openVolume } from '../io/registry.js';
import { ENSEMBLE_FILE, META_FILE, NEURONS_META_KEY, SPEC_FILE, readModelMeta } from '../models/model-dir.js';
import { recordedPath } from '../util/paths.js';
import { NEURON_DEFAULTS, type NeuronMethod } from './defaults.js';
import type { NeuronSegmentJob } from './neurons-input.js';

export { NEURONS_META_KEY };
/** `--method auto`: the method (and thresholds) tuned for the model the maps name. */
export const AUTO_METHOD = 'auto';

const probability = z.number().min(0).max(1);
const recordSchema = z.object({
  method: z.enum(['watershed-agglomerate', 'mutex']),
  mergeAffinity: probability.optional(),
  seedBoundary: probability.optional(),
  scores: z.record(z.string(), z.number()).optional(),
  labels: z.string().optional(),
}).strict();
export type TunedNeurons = z.infer<typeof recordSchema>;

/** The thresholds a record may carry, with their flags. */
const TUNED_OPTIONS = [['mergeAffinity', '--merge-affinity'], ['seedBoundary', '--seed-boundary']] as const;

/** A "segment_neurons" record, refused as corrupt naming `file` and the field. */
export function parseTunedNeurons(value: unknown, file: string): TunedNeurons {
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new EmsegError('corrupt', file, `"${NEURONS_META_KEY}.${issue.path.join('.')}": ${issue.message}`);
  }
  return parsed.data;
}

/** Refuses a `--model-dir` that is not a model directory (plain or ensemble). */
export function checkModelDir(dir: string): void {
  if (!existsSync(join(dir, SPEC_FILE)) && !existsSync(join(dir, ENSEMBLE_FILE))) {
    throw new EmsegError('not-found', dir, `--model-dir: not a model directory (no ${SPEC_FILE} or ${ENSEMBLE_FILE})`);
  }
}

/** Records `tuned` in the meta.json of model directory `dir` (plain or ensemble), keeping its other keys; returns the file. */
export function recordTunedNeurons(dir: string, tuned: TunedNeurons): string {
  checkModelDir(dir);
  const file = join(dir, META_FILE);
  const meta = readModelMeta(dir);
  const record = parseTunedNeurons({ ...tuned, ...(tuned.labels ? { labels: recordedPath(tuned.labels, dir) } : {}) }, file);
  writeFileAtomic(file, `${JSON.stringify({ ...meta, [NEURONS_META_KEY]: record }, null, 2)}\n`);
  return file;
}

/** The one model the maps' record names (`emseg.models`, relative to the maps' folder), or why there is none. */
async function namedModel(pred: string): Promise<{ dir?: string; why: string }> {
  if (isUrl(pred)) return { why: `${pred} is read over the network (a model folder beside it cannot be read)` };
  const base = pred.replace(/[/\\]\d+[/\\]?$/, '');
  const reader = await openVolume(pred, { channel: 0 }).catch(() => openVolume(pred));
  let models: unknown;
  try {
    models = (reader.attributes.emseg as Record<string, unknown> | undefined)?.models;
  } finally {
    await reader.close();
  }
  if (!Array.isArray(models) || models.length !== 1 || typeof models[0] !== 'string') {
    return { why: `${pred} records ${Array.isArray(models) ? `${models.length} models` : 'no model'} ("emseg.models"; one model's maps name it)` };
  }
  return { dir: resolve(base, models[0]), why: '' };
}

/** The tuned record of the model the maps name, with where it was read; or why there is none. */
export async function tunedForMaps(pred: string): Promise<{ tuned?: TunedNeurons; file: string; why: string }> {
  const { dir, why } = await namedModel(pred);
  if (!dir) return { file: '', why };
  const file = join(dir, META_FILE);
  if (!existsSync(dir)) return { file, why: `the model ${dir} named by ${pred} is not there` };
  const value = readModelMeta(dir)[NEURONS_META_KEY];
  if (value === undefined) return { file, why: `${file} has no "${NEURONS_META_KEY}" (emseg tune-segment --method ... --model-dir records one)` };
  return { tuned: parseTunedNeurons(value, file), file, why: '' };
}

/**
 * The job with the model's tuned choice filled in where the user gave none (`--method auto`: the method too); the
 * notice names each option's source. A job whose method differs from the record's keeps its own options.
 */
export async function applyTunedNeurons(job: NeuronSegmentJob): Promise<NeuronSegmentJob> {
  const auto = job.method === AUTO_METHOD;
  if (!auto && job.method === 'link') return job; // link reads a membrane map's own record (its 2-D options)
  const { tuned, file, why } = await tunedForMaps(job.pred);
  if (!tuned) {
    if (auto) throw new EmsegError('invalid-option', '--method', `auto takes the method tuned for the model the maps name, but ${why}; give --method watershed-agglomerate or mutex`);
    return job;
  }
  const method: NeuronMethod = auto ? tuned.method : job.method as NeuronMethod;
  const from = `${file} "${NEURONS_META_KEY}"`;
  if (tuned.method !== method) {
    job.notice?.(`the model's tuned record (${from}) is for --method ${tuned.method}; --method ${method} runs with its flags and defaults`);
    return job;
  }
  const filled: NeuronSegmentJob = { ...job, method };
  const parts = [`--method ${method} (${auto ? 'the model\'s record' : 'flag'})`];
  for (const [key, flag] of TUNED_OPTIONS) {
    if (method === 'mutex') break; // the mutex watershed has no thresholds
    const source = job[key] !== undefined ? 'flag' : tuned[key] !== undefined ? 'the model\'s record' : 'default';
    filled[key] = job[key] ?? tuned[key] ?? NEURON_DEFAULTS[key].value;
    parts.push(`${flag} ${filled[key]} (${source})`);
  }
  job.notice?.(`segmenting with ${parts.join(', ')}; the model's record: ${from}, the model named by ${job.pred}; flags override`);
  return filled;
}
