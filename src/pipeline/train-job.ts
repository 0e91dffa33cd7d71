/**
 * `emseg train`'s job: the options it takes (flags or a study file), their checks, and the trainer's configuration
 * built from them; shared by the 2-d (train.ts) and 3-d (train-volume.ts) runs.
 */
import { EmsegError } from '../errors.js';
import type { LabelPolarity } from '../io/index.js';
import type { LabelKind } from '../io/training-labels.js';
import { BORDER_SIGMA_DEFAULT } from '../train/border-weight.js';
import type { TrainConfig, TrainHooks } from '../train/trainer.js';
import { TRAIN_CHOICES, VALIDATION_FRACTION } from './defaults.js';

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
