import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import type { LabelPolarity } from '../io/index.js';
import { loadModel, WEIGHTS_FILE } from '../models/model-dir.js';
import { resolveModelDir } from '../models/shipped.js';
import { resolveSpec } from '../models/zoo.js';
import { withInputSections, type ModelSpec } from '../nn/spec.js';
import { BORDER_SIGMA_DEFAULT } from '../train/border-weight.js';
import { train, type TrainConfig, type TrainHooks } from '../train/trainer.js';
import { closeGapsOptions, describeCloseGaps } from './close-gaps.js';
import { FINE_TUNE_DEFAULTS, TRAIN_CHOICES, TRAIN_DEFAULTS, VALIDATION_FRACTION } from './defaults.js';
import { loadTrainingData } from './intensity.js';
import { runTrainVolume } from './train-volume.js';
import { UNKNOWN_CLASS } from '../image/affinities.js';
import type { ImageStack } from '../image/stack.js';
import type { LabelKind } from '../io/training-labels.js';

/** The training options `emseg train` takes as flags (and `emseg study` files as JSON), before data and model. */
export interface TrainOptions {
  tile: number;
  batch: number;
  steps: number;
  epochSteps: number;
  optimizer: string;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: string;
  warmup: number;
  balance: string;
  elastic?: boolean;
  jitter?: boolean;
  /** U-Net's border weight w0 (absent or 0: off) and its width in pixels (default BORDER_SIGMA_DEFAULT). */
  borderWeight?: number;
  borderSigma?: number;
  /** MALIS weight (absent or 0: off): topological loss weights from each step's own prediction (train/malis.ts). */
  malisWeight?: number;
  select: string;
  closeGaps?: boolean;
  seed: number;
  /** Minutes between checkpoints (0: every step); ignored when checkpointSteps is set. */
  checkpointMinutes: number;
  /** Steps between checkpoints instead of minutes (`--checkpoint-every 500`). */
  checkpointSteps?: number;
  /** Validations in a row without a better score before training stops early (absent or 0: never). */
  patience?: number;
}

export { TRAIN_CHOICES };

/**
 * Refuses unknown optimizer / schedule / balance / select values and combinations the trainer cannot run, before
 * any data is read; `flag` names the option in the message (the trainer's own checks name its config fields).
 */
export function checkTrainChoices(o: Pick<TrainOptions, keyof typeof TRAIN_CHOICES | 'malisWeight'>, flag: (name: string) => string): void {
  for (const [name, allowed] of Object.entries(TRAIN_CHOICES)) {
    const v = o[name as keyof typeof TRAIN_CHOICES];
    if (!(allowed as readonly string[]).includes(v)) {
      throw new EmsegError('invalid-option', flag(name), `must be one of ${allowed.join(', ')} (got "${v}")`);
    }
  }
  if (o.malisWeight && o.balance === 'subsample') {
    throw new EmsegError('invalid-option', flag('balance'), `subsample hides interior pixels, which MALIS weights (${flag('malisWeight')}) need; use weights or none`);
  }
}

/** The TrainConfig for these options (shared by `emseg train` and `emseg study`). */
export function buildTrainConfig(o: TrainOptions & Pick<TrainConfig, 'model' | 'spec' | 'out' | 'trainSections' | 'validationSections'>): TrainConfig {
  return {
    model: o.model, spec: o.spec, out: o.out, trainSections: o.trainSections, validationSections: o.validationSections,
    tile: o.tile, batch: o.batch, steps: o.steps, stepsPerEpoch: o.epochSteps,
    optimizer: o.optimizer === 'sgd' ? { kind: 'sgd', momentum: o.momentum, weightDecay: o.weightDecay }
      : { kind: 'adam', weightDecay: o.weightDecay },
    schedule: o.schedule === 'cosine' ? { kind: 'cosine', lr: o.lr, totalSteps: o.steps, warmupSteps: o.warmup, minLr: o.lr / 100 }
      : o.schedule === 'step' ? { kind: 'step', lr: o.lr, stepSize: Math.max(1, Math.floor(o.steps / 3)), warmupSteps: o.warmup }
        : { kind: 'constant', lr: o.lr, warmupSteps: o.warmup },
    balance: o.balance as TrainConfig['balance'], elastic: o.elastic ? { alpha: 8, sigma: 10 } : null,
    jitter: o.jitter ? { contrast: 0.2, brightness: 0.1, gamma: 0.2 } : null,
    seed: o.seed, checkpointMinutes: o.checkpointMinutes, select: o.select as TrainConfig['select'],
    ...(o.checkpointSteps !== undefined ? { checkpointSteps: o.checkpointSteps } : {}),
    ...(o.closeGaps ? { closeGaps: true } : {}),
    // Only when on, so that checkpoints of runs without it keep their configuration hash.
    ...(o.borderWeight ? { border: { w0: o.borderWeight, sigma: o.borderSigma ?? BORDER_SIGMA_DEFAULT } } : {}),
    ...(o.malisWeight ? { malis: { weight: o.malisWeight } } : {}),
    ...(o.patience ? { patience: o.patience } : {}),
  };
}

/** `emseg train` without its flags: data, model and options in; the trained model directory out. */
export interface TrainJob extends TrainOptions {
  images: string;
  labels: string;
  /** Omitted: the ISBI default, and labels that then read as mostly membrane are refused (they look inverted). */
  polarity?: LabelPolarity;
  out: string;
  /** Zoo name or spec file (ignored with `init`, whose spec is used). */
  model: string;
  /** Held-back validation sections; omitted: chosen from the data (chooseValidation), said through onNotice and recorded. */
  val?: number[];
  /** Sections neither trained on nor validated on (a final test set the run never sees). */
  holdOut?: number[];
  /** Start from this trained model's weights (fine-tuning). */
  init?: string;
  /**
   * Consecutive sections the model reads, centred on the labelled one (odd; 2.5D when above 1); default: the
   * spec's. With `init` of a 2D model, its weights start the middle section's channel (trainer.ts widenInput).
   */
  sections?: number;
  resume: boolean;
  overwrite: boolean;
  /** An --intensity rule (default auto); recorded in the model's meta.json. */
  intensity?: string;
  /** Reduce colour images to their luma instead of refusing them. */
  toGrey?: boolean;
  /** Labels as people have them (io/training-labels.ts); absent: PNG/TIFF masks as always, HDF5 / Zarr ids by their type. */
  labelKind?: LabelKind;
  /** Label value whose pixels give no loss. */
  ignoreLabel?: bigint;
  /** Instance labels: boundary pixels on each side of an id change. */
  boundaryWidth?: number;
}

/** The trainer's hooks plus one for lines the user should read (which gap-closing options validation uses). */
export type TrainJobHooks = TrainHooks & { onNotice?: (line: string) => void };

/** Checks the job, loads the data and trains; the caller supplies the backend and the hooks (progress, stop). */
export async function runTrain(job: TrainJob, backend: Backend, hooks: TrainJobHooks) {
  const o = job.init === undefined ? job : { ...job, init: resolveModelDir(job.init, '--init') }; // a shipped model's name
  if (!o.resume && !o.overwrite && existsSync(join(o.out, WEIGHTS_FILE))) {
    throw new EmsegError('exists', o.out, 'already holds a model; use --resume to continue it or --overwrite to replace it');
  }
  checkTrainChoices(o, (name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  const spec = modelSpecFor(o);
  if (spec.input.dims === 3) return runTrainVolume(o, spec, backend, hooks);
  const data = await loadTrainingData({ ...o, notice: hooks.onNotice });
  const holdOut = o.holdOut ?? [];
  const { val, chosen } = validationFor(o.val, holdOut, data.images.depth);
  if (chosen) hooks.onNotice?.(`validation sections: ${val.join(', ')}, ${chosen}; choose others with --val, or --val none`);
  const candidates = [...Array(data.images.depth).keys()].filter((z) => !val.includes(z) && !holdOut.includes(z));
  const trainSections = labelledSections(data.labels, candidates, val, o, hooks);
  if (trainSections.length === 0) throw new EmsegError('invalid-option', '--val', 'no section is left to train on');
  const config = { ...buildTrainConfig({ ...o, model: o.init ? spec.name : o.model, spec, out: o.out, trainSections,
    validationSections: val }), ...(o.init ? { initFrom: o.init } : {}), ...initCloseGaps(o, hooks),
    ...(chosen ? { validationChosen: chosen } : {}), ...labelRecord(data.source) };
  return train(config, data, backend, hooks, o.resume);
}

/** The validation sections: --val's, checked against the stack, or chosen from the data (`chosen` says how). */
function validationFor(given: number[] | undefined, holdOut: number[], depth: number): { val: number[]; chosen?: string } {
  for (const [flag, list] of [['--val', given ?? []], ['--hold-out', holdOut]] as const) {
    const bad = list.find((z) => z >= depth);
    if (bad !== undefined) throw new EmsegError('invalid-option', flag, `section ${bad} does not exist (the stack has ${depth})`);
  }
  const both = holdOut.find((z) => given?.includes(z));
  if (both !== undefined) throw new EmsegError('invalid-option', '--hold-out', `section ${both} is also a validation section (--val)`);
  if (given) return { val: given };
  const val = chooseValidation(depth, holdOut);
  return { val, chosen: `the last ${Math.round(VALIDATION_FRACTION * 100)}% of the ${depth - holdOut.length} sections, as --val was not given` };
}

/**
 * The last VALIDATION_FRACTION of the sections not held out, at least one; refused when that would leave none to
 * train on (a model validated on the sections it learnt would pick its checkpoint by memory, not by skill).
 */
export function chooseValidation(depth: number, holdOut: readonly number[] = []): number[] {
  const usable = [...Array(depth).keys()].filter((z) => !holdOut.includes(z));
  if (usable.length < 2) {
    throw new EmsegError('invalid-option', '--val', `only ${usable.length} section${usable.length === 1 ? '' : 's'} to use (of ${depth}, `
      + `${holdOut.length} held out): training needs one to train on and another to validate on; label more sections, `
      + 'or give --val none to train without validation (the last model is kept)');
  }
  const count = Math.max(1, Math.round(usable.length * VALIDATION_FRACTION));
  return usable.slice(usable.length - count);
}

/** Which options --init changes when not given: the FINE_TUNE_DEFAULTS keys. */
export type FineTuneOption = keyof typeof FINE_TUNE_DEFAULTS;

/**
 * A fine-tuning job (`init` set) takes FINE_TUNE_DEFAULTS for the options the user did not give (`given` says which
 * they did); `applied` lists them as flags for the notice. A job without `init` is returned as it is.
 */
export function withFineTuneDefaults<J extends Pick<TrainJob, 'init' | FineTuneOption>>(job: J, given: (option: FineTuneOption) => boolean): { job: J; applied: string[] } {
  if (!job.init) return { job, applied: [] };
  const out: J = { ...job };
  const applied: string[] = [];
  for (const [key, d] of Object.entries(FINE_TUNE_DEFAULTS) as [FineTuneOption, { value: number }][]) {
    if (given(key)) continue;
    out[key] = d.value;
    applied.push(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${d.value}`);
  }
  return { job: out, applied };
}

/** The label reading the volume path recorded (io/training-labels.ts), for the configuration hash; none for PNG/TIFF masks. */
function labelRecord(source: Record<string, unknown>): Pick<TrainConfig, 'labels'> {
  if (source.label_kind === undefined) return {};
  const { label_kind: kind, boundary_width: width, ignore_label: ignore, polarity } = source;
  return { labels: { kind, ...(width === undefined ? {} : { boundary_width: width }), ...(ignore === undefined ? {} : { ignore_label: ignore }),
    ...(polarity === undefined ? {} : { polarity }) } };
}

/** Pixels of each section that give no loss (UNKNOWN_CLASS: ignored or unlabelled). */
function unknownPixels(labels: ImageStack<Uint8Array>, z: number): number {
  const n = labels.width * labels.height;
  let unknown = 0;
  for (let i = z * n; i < (z + 1) * n; i++) if (labels.data[i] === UNKNOWN_CLASS) unknown++;
  return unknown;
}

/**
 * Sparse labels: sections without a labelled pixel are left out of training (said), validation sections must be
 * wholly labelled (their scores compare whole sections), and MALIS, which needs every pixel's class, is refused
 * with unlabelled pixels. Labels without unknown pixels (every mask of today) pass unchanged.
 */
function labelledSections(labels: ImageStack<Uint8Array>, candidates: number[], val: readonly number[], o: TrainJob,
  hooks: TrainJobHooks): number[] {
  const n = labels.width * labels.height;
  const partial = val.find((z) => unknownPixels(labels, z) > 0);
  if (partial !== undefined) {
    throw new EmsegError('invalid-option', '--val', `validation section ${partial} has unlabelled or ignored pixels (${unknownPixels(labels, partial)} of ${n}); `
      + 'validate on wholly labelled sections');
  }
  const unknown = candidates.map((z) => unknownPixels(labels, z));
  const empty = candidates.filter((_, k) => unknown[k] === n);
  if (empty.length > 0) hooks.onNotice?.(`labels: ${empty.length} section(s) without labels give no loss and are left out of training: ${formatSections(empty)}`);
  if (o.malisWeight && unknown.some((u) => u > 0)) {
    throw new EmsegError('invalid-option', '--malis-weight', 'MALIS needs every pixel\'s class, and these labels have ignored or unlabelled pixels');
  }
  return candidates.filter((_, k) => unknown[k]! < n);
}

/** Sections as a short list ("0-3, 7"). */
function formatSections(zs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < zs.length; i++) {
    let j = i;
    while (j + 1 < zs.length && zs[j + 1] === zs[j]! + 1) j++;
    parts.push(j === i ? `${zs[i]}` : `${zs[i]}-${zs[j]}`);
    i = j;
  }
  return parts.join(', ');
}

/** The spec to train: --init's or the named one, reading --sections sections when given. */
function modelSpecFor(o: TrainJob): ModelSpec {
  const spec = o.init ? loadModel(o.init).spec : resolveSpec(o.model);
  if (o.sections === undefined || o.sections === spec.input.sections) return spec;
  if (o.sections % 2 !== 1) {
    throw new EmsegError('invalid-option', '--sections', `must be odd: the labelled section and as many on each side (got ${o.sections})`);
  }
  return withInputSections(spec, o.sections);
}

/**
 * With --close-gaps and --init of a model that carries tuned gap-closing options, validation uses them, as predict
 * would for that model: the defaults could pick a checkpoint by a setting the model is never run with.
 */
function initCloseGaps(o: TrainJob, hooks: TrainJobHooks): Pick<TrainConfig, 'closeGaps'> {
  if (!o.closeGaps || !o.init) return {};
  const { options, from } = closeGapsOptions([o.init], {});
  if (from === null) return {};
  hooks.onNotice?.(`validation: ${describeCloseGaps(options, from, "the trained model's meta.json keeps them")}`);
  return { closeGaps: options };
}

/** When checkpoints are written: by the clock, or every so many steps. */
export type CheckpointInterval = Pick<TrainOptions, 'checkpointMinutes' | 'checkpointSteps'>;

export const DEFAULT_CHECKPOINT_MINUTES = TRAIN_DEFAULTS.checkpointMinutes.value;
/** `500` (steps) or `10m` (minutes; fractions allowed, 0m = after every step). */
const CHECKPOINT_EVERY = /^(?:(?<steps>\d+)|(?<minutes>\d+(?:\.\d+)?|\.\d+)m)$/;

/** Parses `--checkpoint-every` (`500` steps, `10m` minutes). */
export function parseCheckpointEvery(value: string, flag = '--checkpoint-every'): CheckpointInterval {
  const match = CHECKPOINT_EVERY.exec(value.trim());
  const steps = match?.groups?.steps === undefined ? undefined : Number(match.groups.steps);
  if (!match || steps === 0) {
    throw new EmsegError('invalid-option', flag, `expected a number of steps (e.g. 500) or of minutes (e.g. 10m), got "${value}"`);
  }
  return steps !== undefined ? { checkpointMinutes: 0, checkpointSteps: steps }
    : { checkpointMinutes: Number(match.groups!.minutes) };
}

/** `--checkpoint-every`, or its older alias `--checkpoint-minutes <m>`, or the default; both at once is refused. */
export function checkpointInterval(every: CheckpointInterval | undefined, minutes: number | undefined): CheckpointInterval {
  if (every && minutes !== undefined) {
    throw new EmsegError('invalid-option', '--checkpoint-minutes', 'is the older name of --checkpoint-every; give only one of them');
  }
  return every ?? { checkpointMinutes: minutes ?? DEFAULT_CHECKPOINT_MINUTES };
}
