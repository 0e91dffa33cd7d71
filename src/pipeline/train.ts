import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import { loadModel, WEIGHTS_FILE } from '../models/model-dir.js';
import { resolveModelDir } from '../models/shipped.js';
import { resolveSpec } from '../models/zoo.js';
import { withInputSections, type ModelSpec } from '../nn/spec.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { closeGapsOptions, describeCloseGaps } from './close-gaps.js';
import { FINE_TUNE_DEFAULTS, TRAIN_DEFAULTS, VALIDATION_FRACTION } from './defaults.js';
import { loadTrainingData } from './intensity.js';
import { runTrainVolume } from './train-volume.js';
import { buildTrainConfig, checkTrainChoices, chooseValidation, type TrainJob, type TrainJobHooks, type TrainOptions } from './train-job.js';
import { UNKNOWN_CLASS } from '../image/affinities.js';
import type { ImageStack } from '../image/stack.js';

export { buildTrainConfig, checkTrainChoices, chooseValidation, TRAIN_CHOICES, type TrainJob, type TrainJobHooks, type TrainOptions } from './train-job.js';

/** Checks the job, loads the data and trains; the caller supplies the backend and the hooks (progress, stop). */
export async function runTrain(job: TrainJob, backend: Backend, hooks: TrainJobHooks) {
  const o = job.init === undefined ? job : { ...job, init: resolveModelDir(job.init, '--init') }; // a shipped model's name
  if (!o.resume && !o.overwrite && existsSync(join(o.out, WEIGHTS_FILE))) {
    throw new EmsegError('exists', o.out, 'already holds a model; use --resume to continue it or --overwrite to replace it');
  }
  checkTrainChoices(o, (name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  const { spec, model } = modelSpecFor(o);
  if (spec.input.dims === 3) return runTrainVolume({ ...o, model }, spec, backend, hooks);
  const data = await loadTrainingData({ ...o, notice: hooks.onNotice });
  const holdOut = o.holdOut ?? [];
  const { val, chosen } = validationFor(o.val, holdOut, data.images.depth);
  if (chosen) hooks.onNotice?.(`validation sections: ${val.join(', ')}, ${chosen}; choose others with --val, or --val none`);
  const candidates = [...Array(data.images.depth).keys()].filter((z) => !val.includes(z) && !holdOut.includes(z));
  const trainSections = labelledSections(data.labels, candidates, val, o, hooks);
  if (trainSections.length === 0) throw new EmsegError('invalid-option', '--val', 'no section is left to train on');
  const config = { ...buildTrainConfig({ ...o, model, spec, out: o.out, trainSections,
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

/**
 * The spec to train and the model name recorded for it: --init's spec (and its name) or the named one, reading
 * --sections sections when given.
 */
function modelSpecFor(o: TrainJob): { spec: ModelSpec; model: string } {
  const named = resolveSpec(o.model);
  // --init takes its spec, unless --model names a 3-d one: then --init's weights start it (trainer.ts transferWeights).
  const spec = o.init && named.input.dims !== 3 ? loadModel(o.init).spec : named;
  const model = spec === named ? o.model : spec.name;
  if (o.sections === undefined || o.sections === spec.input.sections) return { spec, model };
  if (o.sections % 2 !== 1) {
    throw new EmsegError('invalid-option', '--sections', `must be odd: the labelled section and as many on each side (got ${o.sections})`);
  }
  return { spec: withInputSections(spec, o.sections), model };
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
