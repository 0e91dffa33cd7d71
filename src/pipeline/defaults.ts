import type { BackendKind } from '../backend/index.js';
import { DEFAULT_TILE } from '../infer/predict.js';
import { AUTO_TILE, PREDICT_MEMORY_BUDGET } from '../infer/tile-choice.js';
import { DEFAULT_POLARITY, type LabelPolarity } from '../io/index.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../segment/index.js';
import { DEFAULT_MERGE_AFFINITY, DEFAULT_MIN_OVERLAP, DEFAULT_SEED_BOUNDARY } from '../segment/affinity/index.js';
import { BORDER_SIGMA_DEFAULT } from '../train/border-weight.js';

/** The values `emseg train` accepts for its enumerated options (checked by pipeline/train's checkTrainChoices). */
export const TRAIN_CHOICES = {
  optimizer: ['sgd', 'adam'], schedule: ['constant', 'step', 'cosine'], balance: ['weights', 'subsample', 'none'],
  select: ['v_rand', 'pixel_error'],
} as const;

type Choice<K extends keyof typeof TRAIN_CHOICES> = (typeof TRAIN_CHOICES)[K][number];

/**
 * One source of option defaults. The `emseg` flags (src/cli/) and the study files' zod schema (src/study/schema.ts)
 * both read the value and the help text of an option here, so `emseg train --tile` and a study's "training.tile"
 * cannot drift apart.
 */
export interface OptionDefault<T> {
  readonly value: T;
  readonly help: string;
}

function option<T>(value: T, help: string): OptionDefault<T> {
  return Object.freeze({ value, help });
}

/** Options every stack command shares. */
export const COMMON_DEFAULTS = Object.freeze({
  polarity: option<LabelPolarity>(DEFAULT_POLARITY, 'label polarity'),
  backend: option<BackendKind>('auto', 'auto, onednn or reference'),
});

/** `emseg bench` of a 3-d model: output voxels per axis (at least; the network's smallest exact input gives them). */
export const BENCH_3D_DEFAULTS = Object.freeze({
  trainSize: option(16, '3-d models: training output voxels per axis (at least)'),
  forwardSize: option(32, '3-d models: forward output voxels per axis (at least)'),
});

/** `emseg train` flags; a study's "training" object takes the same names and defaults (where it has them). */
export const TRAIN_DEFAULTS = Object.freeze({
  model: option('fakhry-b', 'zoo name or spec file'),
  intensity: option('auto', 'how stored values become the input in [0,1]'),
  val: option<string | undefined>(undefined, 'held-back validation sections (e.g. 20-24, or none); default: chosen from the data, '
    + 'the last fifth of the sections (at least one), and said so'),
  tile: option(64, 'output tile edge per sample'),
  batch: option(2, 'tiles per step'),
  steps: option(2000, 'training steps'),
  epochSteps: option(250, 'steps between validations'),
  optimizer: option<Choice<'optimizer'>>('adam', 'sgd or adam'),
  lr: option(1e-3, 'peak learning rate'),
  momentum: option(0.9, 'SGD momentum'),
  weightDecay: option(0, 'L2 weight decay'),
  schedule: option<Choice<'schedule'>>('cosine', 'constant, step or cosine'),
  warmup: option(50, 'linear warm-up steps'),
  balance: option<Choice<'balance'>>('weights', 'class balance: weights, subsample or none'),
  borderWeight: option(0, 'U-Net border weight w0 added on thin membranes between touching cells (0: off; U-Net used 10)'),
  borderSigma: option(BORDER_SIGMA_DEFAULT, 'width in pixels of the border weight (sigma of its Gaussian in d1 + d2)'),
  malisWeight: option(0, 'MALIS weight: extra loss on the pixels that decide which cells the map joins or splits (0: off)'),
  select: option<Choice<'select'>>('v_rand', 'best checkpoint by v_rand or pixel_error'),
  seed: option(1, 'random seed (runs are repeatable)'),
  checkpointMinutes: option(3, 'minutes between checkpoints'),
  patience: option(0, 'stop early after this many validations in a row without a better score (0: never)'),
});

/**
 * Without --val, the validation sections are the last this fraction of the sections not held out (at least one):
 * held back from the end, so that neighbouring sections, which look alike, are not split between the two sets more than once.
 */
export const VALIDATION_FRACTION = 0.2;

/**
 * `emseg train --init` (fine-tuning a trained model, usually on a few sections of the user's own data): these replace
 * the TRAIN_DEFAULTS of the options not given. A trained model needs fewer and smaller steps than one trained from
 * scratch (the shipped models were fine-tuned at 3e-4), and a small stack overfits quickly, hence the early stop.
 */
export const FINE_TUNE_DEFAULTS = Object.freeze({
  steps: option(500, 'training steps'),
  epochSteps: option(50, 'steps between validations'),
  lr: option(3e-4, 'peak learning rate'),
  warmup: option(20, 'linear warm-up steps'),
  patience: option(4, 'validations in a row without a better score before stopping'),
});

/** `emseg predict` flags. */
export const PREDICT_DEFAULTS = Object.freeze({
  format: option('isbi', 'isbi (multi-page float TIFF, 1 = non-membrane), tiff, png-folder, tiff-folder'),
  tile: option(DEFAULT_TILE, `output tile edge in pixels (bounds memory), or ${AUTO_TILE}: the fewest FLOPs within ${PREDICT_MEMORY_BUDGET / 2 ** 30} GiB`),
});

/** The watershed options of `emseg segment` and `emseg predict --close-gaps` (values: DEFAULT_SEGMENT_OPTIONS). */
export const SEGMENT_DEFAULTS = Object.freeze({
  sigma: option(DEFAULT_SEGMENT_OPTIONS.sigma, 'Gaussian smoothing of the map before the watershed'),
  seedThreshold: option(DEFAULT_SEGMENT_OPTIONS.seedThreshold, 'seeds where the smoothed P(membrane) is below this'),
  minSeedArea: option(DEFAULT_SEGMENT_OPTIONS.minSeedArea, 'smaller seed regions are dropped'),
  mergeThreshold: option(DEFAULT_SEGMENT_OPTIONS.mergeThreshold,
    'merge neighbours whose boundary (mean of each pixel pair\'s higher P(membrane)) is below this (0: never)'),
  extraSeedThreshold: option(DEFAULT_SEGMENT_OPTIONS.extraSeedThreshold,
    'also seed each region of the unsmoothed map below this P(membrane) that has no seed (thin and small cells; 0: off)'),
});

/** The 3-D neuron methods of `emseg segment --method` (pipeline/neurons.ts). */
export const NEURON_METHODS = ['watershed-agglomerate', 'mutex', 'link'] as const;
export type NeuronMethod = (typeof NEURON_METHODS)[number];
export const NEURON_ID_TYPES = ['uint32', 'uint64'] as const;
export type NeuronIdType = (typeof NEURON_ID_TYPES)[number];

/** `emseg segment --method` options (values: segment/affinity/). */
export const NEURON_DEFAULTS = Object.freeze({
  mergeAffinity: option(DEFAULT_MERGE_AFFINITY, '--method watershed-agglomerate: merge fragments whose boundary\'s mean affinity reaches this'),
  seedBoundary: option(DEFAULT_SEED_BOUNDARY, '--method watershed-agglomerate: seeds lie where 1 - the weakest nearest affinity is below this'),
  minOverlap: option(DEFAULT_MIN_OVERLAP, '--method link: link cells of neighbouring sections that overlap by at least this fraction of each'),
  ids: option('uint32' as NeuronIdType, '--method: the type of the neuron ids written: uint32 (the neuron count of one run always fits), or uint64 (for tools that expect 64-bit ids, as CREMI\'s neuron_ids)'),
  halo: option([4, 8, 8] as readonly [number, number, number], '--method watershed-agglomerate --block: voxels of context (z, y, x) around each block for its fragments'),
  maxBytes: option(4 * 2 ** 30, 'working memory above which --method refuses a volume (it segments the whole volume in one piece)'),
});

/** Study-file fields that have no `emseg train` flag. */
export const STUDY_DEFAULTS = Object.freeze({
  evaluationTile: option(256, 'output tile edge for the dense prediction of the validation sections'),
  seeds: option(2, 'seeds, or a count n meaning seeds 1..n'),
});

/** `emseg submit / worker / status / cancel` (the block queue on Redis, src/queue/). */
export const QUEUE_DEFAULTS = Object.freeze({
  redis: option('redis://127.0.0.1:6379', 'Redis URL: redis://[:password@]host:port[/db], rediss:// for TLS'),
  concurrency: option(1, 'blocks computed at once by this worker (one child process each)'),
  attempts: option(3, 'attempts per block before it is reported as failed'),
  backoffMs: option(1000, 'delay before the first retry of a failed block, doubled at each retry (ms)'),
  lockMs: option(30_000, 'job lock (ms): renewed every half while a block computes; a dead worker\'s block is retried after it'),
  stalledMs: option(30_000, 'how often (ms) workers look for blocks of dead workers'),
  maxStalled: option(3, 'times a block may be taken back from a dead worker before it is failed'),
  logSeconds: option(10, 'seconds between progress lines when stderr is not a terminal'),
  outageSeconds: option(60, 'seconds a worker keeps reconnecting to a Redis it lost (restart, failover) before it exits non-zero'),
});
