import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EmsegError } from '../errors.js';
import type { Backend } from '../backend/backend.js';
import type { ImageStack } from '../image/stack.js';
import { neighbourSections } from '../image/mirror.js';
import { ISBI_POLARITY, fromMembrane } from '../image/map-meaning.js';
import { Predictor } from '../infer/predict.js';
import { tileGeometry } from '../infer/tiling.js';
import { evaluateStacks, type EvaluationResult, type MetricName } from '../metrics/index.js';
import { CLOSE_GAPS_META_KEY, loadModel, saveModel } from '../models/model-dir.js';
import { Network, type TrainTarget } from '../nn/network.js';
import { createOptimizer, type Optimizer, type OptimizerConfig } from '../nn/optim.js';
import type { Plan } from '../nn/plan.js';
import { biasName, initParams, weightName, zeroGrads, type Param, type ParamSet } from '../nn/params.js';
import { learningRate, type ScheduleConfig } from '../nn/schedule.js';
import { sectionRadius, type ModelSpec } from '../nn/spec.js';
import { DEFAULT_SEGMENT_OPTIONS, closeMembraneGaps, type SegmentOptions } from '../segment/index.js';
import { Rng } from '../util/rng.js';
import { typedPath } from '../util/paths.js';
import type { ElasticOptions, JitterOptions } from './augment.js';
import { checkpointExists, loadCheckpoint, saveCheckpoint, type CheckpointFaultHook, type TrainState } from './checkpoint.js';
import { extendReference, lossDivergence, nonFiniteParam, TrainingDiverged } from './divergence.js';
import { malisTarget } from './malis.js';
import { checkTrainingMemory } from './memory.js';
import { TileSampler, type Balance, type BorderWeight } from './sampler.js';

export interface TrainConfig {
  /** Zoo name or spec path, recorded in the model's metadata. */
  model: string;
  spec: ModelSpec;
  out: string;
  trainSections: number[];
  validationSections: number[];
  /** Output tile edge: every step classifies batch x tile x tile windows at once. */
  tile: number;
  batch: number;
  steps: number;
  /** Validation (and best-model selection) every this many steps: one "epoch". */
  stepsPerEpoch: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  balance: Balance;
  elastic: ElasticOptions | null;
  jitter: JitterOptions | null;
  /** U-Net's border weight map on top of the class balance (absent: none). */
  border?: BorderWeight;
  /** MALIS weights (src/train/malis.ts, mean 1 per tile) times this, on top of the other weights (absent: none). */
  malis?: { weight: number };
  seed: number;
  /** Checkpoint when this many minutes passed since the last one (0: after every step)... */
  checkpointMinutes: number;
  /** ...or, when set, every this many steps instead of by the clock. */
  checkpointSteps?: number;
  /** Metric that picks the best checkpoint (3-d networks: variation of information of their neurons). */
  select: 'v_rand' | 'pixel_error' | 'voi';
  /** Start from this model directory's weights (fine-tuning) instead of a random initialisation. */
  initFrom?: string;
  /**
   * Validate on maps with their gaps closed, as `emseg predict --close-gaps` makes them: true with the default
   * options, or with these (the `--init` model's tuned record). A record is also written to the trained model's
   * meta.json, since the best checkpoint was chosen with it.
   */
  closeGaps?: true | SegmentOptions;
  /**
   * How the labels were read when not as PNG/TIFF masks (io/training-labels.ts: kind, boundary width, ignore label):
   * part of the configuration hash, so that a resume with other label flags is refused (absent for today's masks).
   */
  labels?: Record<string, unknown>;
  /**
   * Stop early once this many validations in a row gave no better score (absent or 0: never). Only when set, so that
   * the configuration hash of runs without it stays the same.
   */
  patience?: number;
  /** How the validation sections were chosen when the user did not name them (recorded in meta.json). */
  validationChosen?: string;
}

/**
 * The training options as a model's meta.json records them: without the spec (its own file) and the output folder,
 * and with any model path as typed from the working folder, never absolute (util/paths.ts).
 */
export function trainingRecord(config: TrainConfig): Record<string, unknown> {
  return { ...config, spec: undefined, out: undefined, model: typedPath(config.model),
    ...(config.initFrom !== undefined ? { initFrom: typedPath(config.initFrom) } : {}) };
}

export interface TrainData {
  images: ImageStack<Float32Array>;
  labels: ImageStack<Uint8Array>; // 1 = membrane
  /** Where the data came from, for the metadata. */
  source: Record<string, unknown>;
}

export interface StepReport {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  windowsPerSecond: number;
  elapsedMs: number;
}

export interface ValidationReport {
  step: number;
  scores: Record<string, number>;
  best: boolean;
}

export interface TrainHooks {
  onStep?: (r: StepReport) => void;
  onValidation?: (r: ValidationReport) => void;
  onCheckpoint?: (step: number) => void;
  /** Polled between steps (Ctrl-C, SIGTERM): a checkpoint is saved and train() returns. */
  shouldStop?: () => boolean;
  /** Tests only: fails a checkpoint write at the given point, as a crash there would. */
  checkpointFault?: CheckpointFaultHook;
}

export interface TrainOutcome {
  step: number;
  stopped: boolean;
  /** Stopped before `steps` because validation did not improve for `patience` validations. */
  earlyStopped?: boolean;
  best: { step: number; score: number } | null;
}

/**
 * What one kind of training data gives a run: the network's plan for a training sample, batches with their loss
 * targets, and validation scores. Sections of image stacks (2-d and 2.5-d networks, below) and labelled volumes
 * (3-d networks, volume-task.ts) are the two.
 */
export interface TrainingTask {
  plan: Plan;
  /** The batch's input tensor shape. */
  inputShape: number[];
  /** Output windows (pixels, voxels x channels) one sample trains. */
  windowsPerSample: number;
  next(batch: number, rng: Rng): { input: Float32Array; target: TrainTarget };
  /** Scores of the held-back data at these weights and the selection score (higher is better); null: none held back. */
  validate(params: ParamSet): { scores: Record<string, number>; score: number } | null;
  /** What the model's meta.json records about the data and how it was read. */
  source: Record<string, unknown>;
}

const CHECKPOINT_DIR = 'checkpoint';
export const LOG_FILE = 'train-log.jsonl';

function hashConfig(config: TrainConfig): string {
  const { out: _out, steps: _steps, checkpointMinutes: _c, checkpointSteps: _s, ...rest } = config;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/** ISBI polarity for the metrics: 0 = membrane, 255 = interior. */
export function maskToGroundTruth(labels: ImageStack<Uint8Array>, sections: readonly number[]): ImageStack<Uint8Array> {
  const n = labels.width * labels.height;
  const data = new Uint8Array(n * sections.length);
  sections.forEach((z, k) => {
    for (let i = 0; i < n; i++) data[k * n + i] = labels.data[z * n + i] ? 0 : 255;
  });
  return { width: labels.width, height: labels.height, depth: sections.length, data };
}

/** Predict sections and score them with the challenge metrics (proposal: 1 = certainly non-membrane). */
export function validate(predictor: Predictor, data: TrainData, sections: readonly number[], metrics: MetricName[],
  tile = 256, closeGaps?: SegmentOptions): EvaluationResult {
  const { width, height, depth } = data.images;
  const n = width * height;
  const proposal = new Float32Array(n * sections.length);
  sections.forEach((z, k) => {
    const planes = neighbourSections(z, depth, predictor.radius).map((s) => data.images.data.subarray(s * n, (s + 1) * n));
    let p = predictor.predict(planes, height, width, { tile });
    if (closeGaps) p = closeMembraneGaps(p, height, width, closeGaps);
    for (let i = 0; i < n; i++) proposal[k * n + i] = fromMembrane(p[i]!, ISBI_POLARITY); // the metrics score ISBI proposals
  });
  return evaluateStacks(maskToGroundTruth(data.labels, sections),
    { width, height, depth: sections.length, data: proposal }, { metrics });
}

/**
 * Fine-tuning: the starting weights must belong to the same layers. A 2D model may start a 2.5D one (more input
 * sections): see widenInput.
 */
function copyWeightsFrom(dir: string, spec: ModelSpec, plan: Plan, params: ParamSet): void {
  const source = loadModel(dir);
  if (JSON.stringify(source.spec.layers) !== JSON.stringify(spec.layers)) {
    transferWeights(dir, source.params, spec, plan, params);
    return;
  }
  const from = source.spec.input.sections;
  if (from !== spec.input.sections && from !== 1) {
    throw new EmsegError('checkpoint-mismatch', dir, `reads ${from} sections; only a 2D model (1 section) can start one that reads ${spec.input.sections}`);
  }
  const wide = from === 1 && spec.input.sections > 1 ? imageReaders(plan) : new Set<string>();
  for (const [name, p] of params) {
    const src = source.params.get(name)!.data;
    if (wide.has(name)) widenInput(src, p, spec.input.sections);
    else p.data.set(src);
  }
}

/** A shape without its axes of size 1: a 2-d kernel [out, in, 3, 3] is the in-plane 3-d kernel [out, in, 1, 3, 3]. */
const squeezed = (shape: readonly number[]) => shape.filter((d) => d !== 1).join('x');

/**
 * Weights from a model of another kind whose layers are this one's but for the head: a 2-d U-Net into the planar
 * network of its width and levels (unet-w16 into unet2d-affinities-w16), whose in-plane kernels hold the same numbers
 * in the same order. The head (the last layer with weights) starts fresh: it says something else (affinities, not
 * membrane classes). Any other layer missing or shaped otherwise is refused, naming it.
 */
function transferWeights(dir: string, from: ParamSet, spec: ModelSpec, plan: Plan, params: ParamSet): void {
  const head = plan.nodes.filter((node) => 'wShape' in node).at(-1)!.name;
  const fresh = new Set([weightName(head), biasName(head)]);
  for (const [name, p] of params) {
    if (fresh.has(name)) continue;
    const src = from.get(name);
    if (!src || squeezed(src.shape) !== squeezed(p.shape)) {
      throw new EmsegError('checkpoint-mismatch', dir, `its spec differs from the model being trained (${spec.name}) beyond the head: parameter "${name}" `
        + (src ? `has shape ${src.shape.join('x')}, ${p.shape.join('x')} here` : 'is not in it'));
    }
    p.data.set(src.data);
  }
}

/** The weights of the layers that read the image itself (their input channels are the sections). */
function imageReaders(plan: Plan): Set<string> {
  return new Set(plan.nodes.filter((node) => node.inputs.includes(-1) && 'wShape' in node).map((node) => weightName(node.name)));
}

/**
 * A 2D model's image weights [out, 1, kh, kw] placed on the middle section of [out, sections, kh, kw], the others
 * zero: the 2.5D model starts out computing exactly the 2D model's map and learns what the neighbours add.
 */
function widenInput(src: Float32Array | Float64Array, p: Param, sections: number): void {
  const [out, , kh, kw] = p.shape as [number, number, number, number];
  const k = kh * kw;
  const middle = (sections - 1) / 2;
  p.data.fill(0);
  for (let o = 0; o < out; o++) p.data.set(src.subarray(o * k, (o + 1) * k), (o * sections + middle) * k);
}

/** Lets signal handlers (Ctrl-C, SIGTERM) and timers run between steps; each step itself is synchronous native work. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const MS_PER_MINUTE = 60_000;
const VALIDATION_METRICS: MetricName[] = ['pixel_error', 'v_rand'];

/** Periodic checkpoints: every checkpointSteps steps when set, else by the clock; always after the last step. */
function checkpointDue(config: TrainConfig, step: number, lastCheckpointAt: number): boolean {
  if (step === config.steps) return true;
  if (config.checkpointSteps !== undefined) return step % config.checkpointSteps === 0;
  return Date.now() - lastCheckpointAt >= config.checkpointMinutes * MS_PER_MINUTE;
}

/**
 * Whole-tile (fully convolutional) training with checkpoints, validation each epoch, best-model selection,
 * a JSONL log and exact resumption. A diverged run (see divergence.ts) throws TrainingDiverged and leaves the last
 * checkpoint and best model as they were: neither ever holds non-finite weights.
 */
export async function train(config: TrainConfig, data: TrainData, backend: Backend, hooks: TrainHooks = {},
  resume = false): Promise<TrainOutcome> {
  return new TrainingRun(config, sectionTask(config, data, backend), backend, hooks, resume).run();
}

/** train() for any task (volumes: volume-task.ts). */
export async function trainTask(config: TrainConfig, task: TrainingTask, backend: Backend, hooks: TrainHooks = {},
  resume = false): Promise<TrainOutcome> {
  return new TrainingRun(config, task, backend, hooks, resume).run();
}

/**
 * Sections of image stacks: whole tiles (TileSampler), class labels or MALIS targets, and validation by the ISBI
 * metrics of the predicted held-back sections.
 */
function sectionTask(config: TrainConfig, data: TrainData, backend: Backend): TrainingTask {
  const geometry = tileGeometry(config.spec, config.tile, config.tile, config.tile);
  const plan = geometry.plan;
  if (config.malis && config.balance === 'subsample') {
    throw new EmsegError('invalid-option', 'balance', 'MALIS weights need every pixel\'s class, and subsample hides interior pixels; use weights or none');
  }
  const sampler = new TileSampler(data.images, data.labels, config.trainSections, {
    inputSize: geometry.inputH, outputSize: plan.output[1], offset: geometry.offset, balance: config.balance,
    elastic: config.elastic, jitter: config.jitter, border: config.border ?? null, radius: sectionRadius(config.spec),
  });
  const malis = config.malis;
  return {
    plan, inputShape: [config.batch, config.spec.input.sections, plan.input[1], plan.input[2]],
    windowsPerSample: plan.output[1] * plan.output[2], source: data.source,
    next(batch, rng) {
      const b = sampler.next(batch, rng);
      return { input: b.input, target: malis ? (logits) => malisTarget(backend.toArray(logits), b, plan.output[1], malis.weight)
        : { labels: b.labels, weights: b.weights } };
    },
    validate(params) {
      if (config.validationSections.length === 0) return null;
      const result = validate(new Predictor([{ spec: config.spec, params }], backend), data, config.validationSections,
        VALIDATION_METRICS, undefined, config.closeGaps === true ? DEFAULT_SEGMENT_OPTIONS : config.closeGaps);
      const scores = { pixel_error: result.pixel_error!, v_rand: result.v_rand! };
      return { scores, score: config.select === 'v_rand' ? scores.v_rand : -scores.pixel_error };
    },
  };
}

/** One call of train(): the model, optimiser, sampler and RNGs, and the state a checkpoint holds. */
class TrainingRun {
  private readonly plan: Plan;
  private readonly params: ParamSet;
  private readonly optimizer: Optimizer;
  private readonly net: Network;
  private readonly rng: Rng;
  private readonly checkpointDir: string;
  private state: TrainState;
  /** The step of the checkpoint on disk (null: none yet), named when the run diverges. */
  private lastSavedStep: number | null = null;

  constructor(private readonly config: TrainConfig, private readonly task: TrainingTask, private readonly backend: Backend,
    private readonly hooks: TrainHooks, resume: boolean) {
    this.plan = task.plan;
    checkTrainingMemory(this.plan, config.batch, config.optimizer.kind);
    this.params = initParams(this.plan, config.seed);
    if (config.initFrom && !resume) copyWeightsFrom(config.initFrom, config.spec, this.plan, this.params);
    this.optimizer = createOptimizer(config.optimizer);
    this.net = new Network(this.plan, this.params, backend, config.seed + 1);
    this.rng = new Rng(config.seed + 2);
    this.checkpointDir = join(config.out, CHECKPOINT_DIR);
    mkdirSync(config.out, { recursive: true });
    this.state = { step: 0, samplerRng: this.rng.snapshot, dropoutRng: this.net.rng.snapshot, elapsedMs: 0, best: null,
      configHash: hashConfig(config), lossReference: [] };
    if (resume) this.restore();
  }

  private restore(): void {
    if (!checkpointExists(this.checkpointDir)) throw new EmsegError('not-found', this.checkpointDir, 'no checkpoint to resume from');
    const configHash = this.state.configHash;
    this.state = loadCheckpoint(this.checkpointDir, this.params, this.optimizer);
    if (this.state.configHash !== configHash) {
      throw new EmsegError('checkpoint-mismatch', this.checkpointDir, 'was trained with different settings; resume with the same options');
    }
    this.rng.restore(this.state.samplerRng);
    this.net.rng.restore(this.state.dropoutRng);
    this.lastSavedStep = this.state.step;
  }

  async run(): Promise<TrainOutcome> {
    const { config, state } = this;
    const started = Date.now() - state.elapsedMs;
    let lastCheckpoint = Date.now();
    let stopped = false;
    let earlyStopped = false;
    while (this.state.step < config.steps && !earlyStopped) {
      await yieldToEventLoop();
      if (this.hooks.shouldStop?.()) {
        stopped = true;
        break;
      }
      const report = this.step(started);
      this.log({ type: 'step', ...report });
      this.hooks.onStep?.(report);
      if (report.step % config.stepsPerEpoch === 0 || report.step === config.steps) {
        this.validate();
        earlyStopped = this.noLongerImproving();
      }
      if (checkpointDue(config, report.step, lastCheckpoint)) {
        this.checkpoint();
        lastCheckpoint = Date.now();
      }
    }
    // The run ends here: no later loss will vouch for the last validated weights, which are finite (checked).
    this.saveBest();
    if (stopped && this.state.step !== this.lastSavedStep) this.checkpoint();
    return { step: this.state.step, stopped, ...(earlyStopped ? { earlyStopped } : {}), best: this.state.best };
  }

  /** True (and logged) when the last `patience` validations found no better model than the best one. */
  private noLongerImproving(): boolean {
    const { config, state } = this;
    if (!config.patience || !state.best || config.validationSections.length === 0) return false;
    if (state.step - state.best.step < config.patience * config.stepsPerEpoch) return false;
    this.log({ type: 'early-stop', step: state.step, best: state.best.step, patience: config.patience });
    return true;
  }

  /** One optimiser step; a diverged loss stops the run before the optimiser applies its gradients. */
  private step(started: number): StepReport {
    const { config, state, params } = this;
    const t0 = Date.now();
    const batch = this.task.next(config.batch, this.rng);
    const x = this.backend.fromArray(batch.input, this.task.inputShape);
    zeroGrads(params);
    let loss: number;
    try {
      loss = this.net.trainStep(x, batch.target).loss;
    } finally {
      x.dispose();
    }
    const why = lossDivergence(loss, state.lossReference ?? []);
    if (why) this.diverged(state.step + 1, state.step, loss, why);
    this.saveBest(); // the weights still are the validated ones, and this loss shows they did not blow up
    state.lossReference = extendReference(state.lossReference ?? [], loss);
    const lr = learningRate(config.schedule, state.step);
    this.optimizer.step(params, lr);
    state.step++;
    state.elapsedMs = Date.now() - started;
    const windowsPerStep = config.batch * this.task.windowsPerSample;
    return { step: state.step, steps: config.steps, loss, lr,
      windowsPerSecond: windowsPerStep / Math.max(1e-3, (Date.now() - t0) / 1000), elapsedMs: state.elapsedMs };
  }

  private log(record: Record<string, unknown>): void {
    appendFileSync(join(this.config.out, LOG_FILE), `${JSON.stringify(record)}\n`);
  }

  private diverged(step: number, weightsStep: number, loss: number, why: string): never {
    const discardedBest = this.state.pendingBest ? this.state.best?.step : undefined;
    this.log({ type: 'diverged', step, loss: Number.isFinite(loss) ? loss : String(loss), reason: why,
      ...(discardedBest !== undefined ? { discardedBest } : {}) });
    throw new TrainingDiverged(step, weightsStep, loss, why, this.lastSavedStep);
  }

  /** NaN weights give NaN maps and NaN checkpoints: neither may ever be saved. */
  private requireFiniteWeights(): void {
    const bad = nonFiniteParam(this.params);
    if (bad) this.diverged(this.state.step, this.state.step, NaN, `parameter "${bad}" holds NaN or Inf`);
  }

  private checkpoint(): void {
    this.requireFiniteWeights();
    this.state = { ...this.state, samplerRng: this.rng.snapshot, dropoutRng: this.net.rng.snapshot };
    saveCheckpoint(this.checkpointDir, this.params, this.optimizer, this.state, this.hooks.checkpointFault);
    this.lastSavedStep = this.state.step;
    this.hooks.onCheckpoint?.(this.state.step);
  }

  /**
   * Scores the held-back sections; a new best (only ever with a finite score) is written by saveBest() once the next
   * step's loss passes the divergence check: the weights validated at step s are the ones whose loss step s+1
   * computes, and a run blowing up there must not leave them behind as its "best" model.
   */
  private validate(): void {
    const { state, params } = this;
    this.requireFiniteWeights();
    const result = this.task.validate(params);
    const scores = result?.scores ?? {};
    // Nothing held back: the latest model is the one to keep.
    const best = !result || (Number.isFinite(result.score) && (!state.best || result.score > state.best.score));
    const score = result?.score ?? NaN;
    if (best) {
      state.best = { step: state.step, score };
      state.pendingBest = scores;
    }
    this.log({ type: 'validation', step: state.step, ...scores, best });
    this.hooks.onValidation?.({ step: state.step, scores, best });
  }

  /** Writes the best model validated at the current weights, if one is waiting. */
  private saveBest(): void {
    const { config, state } = this;
    if (!state.pendingBest || !state.best) return;
    saveModel(config.out, config.spec, this.params, {
      emseg: { format: 1 }, model: config.model, step: state.best.step,
      validation: { sections: config.validationSections, ...state.pendingBest },
      training: trainingRecord(config), data: this.task.source,
      ...(typeof config.closeGaps === 'object' ? { [CLOSE_GAPS_META_KEY]: config.closeGaps } : {}),
    });
    delete state.pendingBest;
  }
}
