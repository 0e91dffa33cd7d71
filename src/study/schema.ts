import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LABEL_POLARITIES } from '../io/index.js';
import { METRIC_NAMES, type MetricName } from '../metrics/index.js';
import { EmsegError, isEmsegError } from '../errors.js';
import { parseIntensity } from '../image/intensity.js';
import { COMMON_DEFAULTS as C, STUDY_DEFAULTS, TRAIN_DEFAULTS as T } from '../pipeline/defaults.js';
import { TRAIN_CHOICES } from '../pipeline/train.js';
import { parseSections } from '../util/sections.js';

/**
 * Study files (`emseg study <study.json>`): one base model, named variants of it (edits of the base spec or
 * whole specs), the data, a fixed training budget per run, seeds, training options and metrics.
 * Relative paths (data, spec files) are resolved against the current directory, like every emseg command.
 */

const positiveInt = z.number().int().positive();
const layerRef = z.union([z.string().min(1), z.number().int().nonnegative()]);
/** A layer as in a model spec; checked in full when the variant's spec is parsed. */
const layerJson = z.record(z.unknown()).refine((l) => typeof l.type === 'string', { message: 'a layer needs a "type"' });
/** A whole spec: zoo name, spec file, or an inline spec object. */
const modelRef = z.union([z.string().min(1), z.record(z.unknown())]);

const EDIT_ACTIONS = ['set', 'replace', 'remove', 'insertBefore', 'insertAfter', 'window'] as const;

/**
 * One edit of a spec. With `layer` (a layer's name, its automatic name `<type><index>` as in plans, or its index):
 * `set` fields of it (null deletes a field), `replace` it with a list of layers, `remove` it, or
 * `insertBefore`/`insertAfter` it a list of layers; `count` extends replace/remove to that many consecutive layers.
 * Without `layer`: `window` sets the spec's window, `set` sets top-level spec fields.
 */
export const editSchema = z.object({
  layer: layerRef.optional(),
  set: z.record(z.unknown()).optional(),
  replace: z.array(layerJson).min(1).optional(),
  remove: z.literal(true).optional(),
  insertBefore: z.array(layerJson).min(1).optional(),
  insertAfter: z.array(layerJson).min(1).optional(),
  count: positiveInt.optional(),
  window: positiveInt.optional(),
  comment: z.string().optional(),
}).strict().superRefine((e, ctx) => {
  const actions = EDIT_ACTIONS.filter((a) => e[a] !== undefined);
  if (actions.length !== 1) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: actions.length === 0
      ? `an edit needs one of ${EDIT_ACTIONS.join(', ')}` : `an edit does one thing; got ${actions.join(' and ')}` });
    return;
  }
  const action = actions[0]!;
  const needsLayer = action === 'replace' || action === 'remove' || action === 'insertBefore' || action === 'insertAfter';
  if (needsLayer && e.layer === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['layer'], message: `"${action}" needs the "layer" it applies to` });
  }
  if (action === 'window' && e.layer !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['layer'], message: '"window" is a spec field, not a layer field; drop "layer"' });
  }
  if (e.count !== undefined && action !== 'replace' && action !== 'remove') {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['count'], message: '"count" applies to "replace" and "remove" only' });
  }
});

export type SpecEdit = z.infer<typeof editSchema>;

const variantSchema = z.object({
  /** Folder-safe: the run folders are <out>/<variant>/seed-<n>. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" and "-" (it names a folder)'),
  description: z.string().optional(),
  /** Start from this spec (zoo name, file, inline spec) instead of the study's base. */
  model: modelRef.optional(),
  edits: z.array(editSchema).default([]),
}).strict();

export type StudyVariant = z.infer<typeof variantSchema>;

const sections = z.union([
  z.array(z.number().int().nonnegative()).min(1),
  z.string().regex(/^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$/, 'a section list such as "20-24" or "0,3,5-7"'),
]);

const dataSchema = z.object({
  images: z.string().min(1),
  labels: z.string().min(1),
  polarity: z.enum(LABEL_POLARITIES).default(C.polarity.value),
  /** An --intensity rule of `emseg train` (default auto); absent stays absent so older studies keep their run hashes. */
  intensity: z.string().superRefine((v, ctx) => {
    try {
      parseIntensity(v, '');
    } catch (err) {
      if (!isEmsegError(err, 'invalid-option')) throw err;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: err.message });
    }
  }).optional(),
  /** Reduce colour images to their luma (`emseg train --to-grey`). */
  toGrey: z.boolean().optional(),
  /** Held-back sections every run is scored on (never trained on). */
  validation: sections,
  /** Training sections (default: all the others). */
  train: sections.optional(),
  /** What data the study needs and where to get it: said when its images or labels cannot be read (a fresh clone). */
  needs: z.string().min(1).optional(),
}).strict();

const budgetSchema = z.object({
  /** Training steps per run. */
  steps: positiveInt.optional(),
  /** Training minutes per run (wall clock of the training loop; stops at whichever of steps/minutes comes first). */
  minutes: z.number().positive().optional(),
}).strict().refine((b) => b.steps !== undefined || b.minutes !== undefined, { message: 'give "steps" or "minutes" (or both)' });

/** Training options, as `emseg train` flags (same defaults). */
const trainingSchema = z.object({
  tile: positiveInt.default(T.tile.value),
  batch: positiveInt.default(T.batch.value),
  optimizer: z.enum(TRAIN_CHOICES.optimizer).default(T.optimizer.value),
  lr: z.number().nonnegative().default(T.lr.value),
  momentum: z.number().nonnegative().default(T.momentum.value),
  weightDecay: z.number().nonnegative().default(T.weightDecay.value),
  /** Default as `emseg train` (cosine) over the step budget; constant when the budget is minutes only. */
  schedule: z.enum(TRAIN_CHOICES.schedule).optional(),
  warmup: positiveInt.default(T.warmup.value),
  balance: z.enum(TRAIN_CHOICES.balance).default(T.balance.value),
  borderWeight: z.number().nonnegative().default(T.borderWeight.value),
  borderSigma: z.number().positive().default(T.borderSigma.value),
  malisWeight: z.number().nonnegative().default(T.malisWeight.value),
  elastic: z.boolean().default(false),
  jitter: z.boolean().default(false),
  checkpointMinutes: z.number().nonnegative().default(T.checkpointMinutes.value),
  backend: z.enum(['auto', 'onednn', 'reference']).default(C.backend.value),
  bf16: z.boolean().default(false),
}).strict().default({});

const evaluationSchema = z.object({
  /** Output tile edge for the dense prediction of the validation sections. */
  tile: positiveInt.default(STUDY_DEFAULTS.evaluationTile.value),
}).strict().default({});

const expectSchema = z.object({
  /** Every valid variant must have the same receptive field (planModel's `field`). */
  sameReceptiveField: z.boolean().optional(),
  /** Every valid variant's dense FLOPs per pixel within this fraction of the first valid variant's (0.25 = ±25 %). */
  flopsWithin: z.number().positive().optional(),
}).strict().default({});

export const studySchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" and "-"'),
  description: z.string().optional(),
  /** The base model: zoo name, spec file or inline spec. */
  base: modelRef,
  variants: z.array(variantSchema).min(1),
  data: dataSchema,
  budget: budgetSchema,
  /** Seeds, or a count n meaning seeds 1..n. */
  seeds: z.union([z.array(positiveInt).min(1), positiveInt]).default(STUDY_DEFAULTS.seeds.value),
  training: trainingSchema,
  metrics: z.array(z.enum(METRIC_NAMES as [MetricName, ...MetricName[]])).min(1).optional(),
  evaluation: evaluationSchema,
  expect: expectSchema,
}).strict().superRefine((s, ctx) => {
  const seen = new Set<string>();
  s.variants.forEach((v, i) => {
    if (seen.has(v.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['variants', i, 'name'], message: `variant "${v.name}" is named twice` });
    seen.add(v.name);
  });
  if (Array.isArray(s.seeds) && new Set(s.seeds).size !== s.seeds.length) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['seeds'], message: 'seeds repeat' });
  }
  if (s.training.schedule === 'cosine' && s.budget.steps === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['training', 'schedule'],
      message: 'a cosine schedule needs a step budget ("budget.steps"); use "constant" for a minutes-only budget' });
  }
});

export type StudyInput = z.input<typeof studySchema>;
export type Study = z.output<typeof studySchema>;

/** Resolved study: seeds and metrics expanded, sections as lists. */
export interface ResolvedStudy extends Omit<Study, 'seeds' | 'metrics' | 'data' | 'training'> {
  seeds: number[];
  training: Study['training'] & { schedule: 'constant' | 'step' | 'cosine' };
  metrics: MetricName[];
  data: Omit<Study['data'], 'validation' | 'train'> & { validation: number[]; train?: number[] };
}

export class StudyError extends EmsegError {
  constructor(message: string, path = '') {
    super('invalid-study', path, message);
    this.name = 'StudyError';
  }
}

function sectionsOf(v: number[] | string): number[] {
  return Array.isArray(v) ? [...new Set(v)].sort((a, b) => a - b) : parseSections(v);
}

/** Validates a study; errors name the field ("study.json: field "variants.1.edits.0.layer": ..."). */
export function parseStudy(json: unknown, source = 'study'): ResolvedStudy {
  const result = studySchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? `field "${issue.path.join('.')}"` : 'study';
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    throw new StudyError(`${source}: ${where}: ${issue.message}${more}`);
  }
  const s = result.data;
  const validation = sectionsOf(s.data.validation);
  const trainSections = s.data.train === undefined ? undefined : sectionsOf(s.data.train);
  if (trainSections?.some((z) => validation.includes(z))) {
    throw new StudyError(`${source}: field "data.train": overlaps the validation sections`);
  }
  return {
    ...s,
    seeds: typeof s.seeds === 'number' ? Array.from({ length: s.seeds }, (_, i) => i + 1) : s.seeds,
    metrics: s.metrics ?? [...METRIC_NAMES],
    data: { images: s.data.images, labels: s.data.labels, polarity: s.data.polarity, validation,
      ...(s.data.intensity !== undefined ? { intensity: s.data.intensity } : {}), ...(s.data.toGrey ? { toGrey: true } : {}),
      ...(trainSections ? { train: trainSections } : {}), ...(s.data.needs ? { needs: s.data.needs } : {}) },
    training: { ...s.training, schedule: s.training.schedule ?? (s.budget.steps === undefined ? 'constant' : T.schedule.value) },
  };
}

export function readStudyFile(path: string): ResolvedStudy {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new StudyError(`${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(err as Error).message})`}`);
  }
  return parseStudy(json, path);
}
