import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend, type Backend } from '../backend/index.js';
import { EmsegError, describeError, isEmsegError } from '../errors.js';
import { buildTrainConfig } from '../pipeline/train.js';
import { Predictor } from '../infer/predict.js';
import { loadTrainingData } from '../pipeline/intensity.js';
import type { MetricName } from '../metrics/index.js';
import { loadModel, probePlan, saveModel } from '../models/model-dir.js';
import { createOptimizer } from '../nn/optim.js';
import { initParams, type ParamSet } from '../nn/params.js';
import type { ModelSpec } from '../nn/spec.js';
import { checkpointExists, loadCheckpoint, readCheckpointState } from '../train/checkpoint.js';
import { train, trainingRecord, validate, type TrainConfig, type TrainData } from '../train/trainer.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { ResolvedStudy } from './schema.js';

/** One training + evaluation run of a study: a variant's spec with one seed, in its own folder. */
export interface RunTask {
  study: string;
  variant: string;
  seed: number;
  /** <out>/<variant>/seed-<n>: the model dir, checkpoint, log and result.json. */
  dir: string;
  spec: ModelSpec;
  /** Where the spec came from (for the model's metadata). */
  model: string;
  data: ResolvedStudy['data'];
  training: ResolvedStudy['training'];
  budget: ResolvedStudy['budget'];
  metrics: MetricName[];
  evalTile: number;
  /** CPU threads for oneDNN (default: EMSEG_THREADS, else all cores). */
  threads?: number;
}

export interface RunResult {
  study: string;
  variant: string;
  seed: number;
  /** Hash of everything that determines the result; a finished run is reused only when it matches. */
  fingerprint: string;
  metrics: Partial<Record<MetricName, number>>;
  steps: number;
  /** Training-loop time, summed over resumptions. */
  trainingMs: number;
  /** 'steps' or 'minutes': which budget ended training. */
  stoppedBy: 'steps' | 'minutes';
  evaluationMs: number;
  validationSections: number[];
  trainSections: number[];
  resumed: boolean;
  backend: string;
  threads: number | null;
  finishedAt: string;
}

export const RESULT_FILE = 'result.json';
export const ERROR_FILE = 'error.json';
const CHECKPOINT_DIR = 'checkpoint';

/** Stopped on request (Ctrl-C): the checkpoint is saved and the run resumes next time. */
export class RunInterrupted extends EmsegError {
  constructor(readonly step: number) {
    super('interrupted', '', `interrupted at step ${step}; checkpoint saved`);
    this.name = 'RunInterrupted';
  }
}

export function runFingerprint(task: RunTask): string {
  const { spec, data, training, budget, metrics, evalTile, seed } = task;
  const { backend: _b, checkpointMinutes: _c, borderWeight, borderSigma, malisWeight, ...rest } = training;
  // Without a border or MALIS weight the run is what it was before these options existed: studies finished then
  // stay valid.
  const options = { ...rest, ...(borderWeight ? { borderWeight, borderSigma } : {}), ...(malisWeight ? { malisWeight } : {}) };
  return createHash('sha256').update(JSON.stringify({ spec, data, options, budget, metrics, evalTile, seed })).digest('hex').slice(0, 16);
}

/** The finished result in the run folder, or null. A result from different settings is an error, not a reuse. */
export function readFinished(task: RunTask): RunResult | null {
  const path = join(task.dir, RESULT_FILE);
  if (!existsSync(path)) return null;
  let result: RunResult;
  try {
    result = JSON.parse(readFileSync(path, 'utf8')) as RunResult;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new EmsegError('corrupt', path, `is not a readable run result (${describeError(err)}); delete ${task.dir} to rerun it`, { cause: err });
  }
  if (result.fingerprint !== runFingerprint(task)) {
    throw new EmsegError('resume-mismatch', path, `holds a result for different settings (the study file changed since); delete ${task.dir} to rerun it, or use another --out`);
  }
  return result;
}

const datasets = new Map<string, Promise<TrainData>>();

/** Loads (once per process) the study's images and membrane masks. */
export function loadStudyData(data: RunTask['data']): Promise<TrainData> {
  const key = JSON.stringify([data.images, data.labels, data.polarity, data.intensity, data.toGrey]);
  let p = datasets.get(key);
  if (!p) {
    p = loadTrainingData({ ...data, intensityPath: 'data.intensity' });
    p.catch(() => datasets.delete(key));
    datasets.set(key, p);
  }
  return p;
}

function sections(task: RunTask, depth: number): { trainSections: number[]; validationSections: number[] } {
  const validationSections = task.data.validation;
  const bad = [...validationSections, ...(task.data.train ?? [])].find((z) => z >= depth);
  if (bad !== undefined) throw new EmsegError('invalid-study', 'data', `section ${bad} does not exist (the stack has ${depth})`);
  const trainSections = task.data.train ?? [...Array(depth).keys()].filter((z) => !validationSections.includes(z));
  if (trainSections.length === 0) throw new EmsegError('invalid-study', 'data', 'no sections left to train on');
  return { trainSections, validationSections };
}

/** The TrainConfig of a run: all validation happens after training, on the final weights. */
export function runTrainConfig(task: RunTask, trainSections: number[]): TrainConfig {
  const t = task.training;
  // A minutes-only budget trains until the clock runs out; the step cap only bounds the loop.
  const steps = task.budget.steps ?? 1_000_000_000;
  return buildTrainConfig({
    ...t, steps, epochSteps: steps, select: 'pixel_error', seed: task.seed,
    model: task.model, spec: task.spec, out: task.dir, trainSections, validationSections: [],
  });
}

export interface RunContext {
  backend?: Backend;
  /** Polled between steps: true stops the run (RunInterrupted), keeping its checkpoint. */
  shouldStop?: () => boolean;
  onStep?: (step: number, steps: number | null, elapsedMs: number, loss: number) => void;
}

/** Trains (resuming from <dir>/checkpoint when present), evaluates the final weights, writes result.json. */
export async function executeRun(task: RunTask, ctx: RunContext = {}): Promise<RunResult> {
  const fingerprint = runFingerprint(task);
  const data = await loadStudyData(task.data);
  const { trainSections, validationSections } = sections(task, data.images.depth);
  const config = runTrainConfig(task, trainSections);
  const checkpointDir = join(task.dir, CHECKPOINT_DIR);
  const resumed = checkpointExists(checkpointDir);
  if (!resumed && existsSync(task.dir)) {
    // Leftovers of a run that never reached its first checkpoint: start clean.
    for (const f of readdirSync(task.dir)) rmSync(join(task.dir, f), { recursive: true, force: true });
  }
  const backend = ctx.backend ?? createBackend({ kind: task.training.backend, precision: task.training.bf16 ? 'bfloat16' : 'float32',
    threads: task.threads });

  const limitMs = task.budget.minutes === undefined ? Infinity : task.budget.minutes * 60_000;
  let elapsedMs = resumed ? previousElapsed(checkpointDir) : 0;
  let userStop = false;
  let outcome: Awaited<ReturnType<typeof train>>;
  try {
    outcome = await train(config, data, backend, {
      onStep: (r) => {
        elapsedMs = r.elapsedMs;
        ctx.onStep?.(r.step, task.budget.steps ?? null, r.elapsedMs, r.loss);
      },
      shouldStop: () => {
        if (ctx.shouldStop?.()) userStop = true;
        return userStop || elapsedMs >= limitMs;
      },
    }, resumed);
  } catch (err) {
    if (resumed && isEmsegError(err, 'checkpoint-mismatch')) {
      throw new EmsegError('checkpoint-mismatch', err.path, `${err.message.slice(err.path.length + 2)} (the study's settings for this run changed since it started; delete ${task.dir} to restart it)`);
    }
    throw err;
  }
  if (outcome.stopped && userStop) throw new RunInterrupted(outcome.step);

  let params: ParamSet;
  if (outcome.stopped) {
    // The minutes ran out before the step cap: the checkpoint holds the final weights; save them as the model.
    params = initParams(probePlan(task.spec), 0);
    loadCheckpoint(checkpointDir, params, createOptimizer(config.optimizer));
    saveModel(task.dir, task.spec, params, {
      emseg: { format: 1 }, model: task.model, step: outcome.step, validation: { sections: [] },
      training: trainingRecord(config), data: data.source,
    });
  } else {
    params = loadModel(task.dir).params;
  }

  const t0 = Date.now();
  const scores = validate(new Predictor([{ spec: task.spec, params }], backend), data, validationSections, task.metrics, task.evalTile);
  const metrics: Partial<Record<MetricName, number>> = {};
  for (const m of task.metrics) metrics[m] = scores[m];
  const result: RunResult = {
    study: task.study, variant: task.variant, seed: task.seed, fingerprint, metrics, steps: outcome.step,
    trainingMs: elapsedMs, stoppedBy: outcome.stopped ? 'minutes' : 'steps', evaluationMs: Date.now() - t0,
    validationSections, trainSections, resumed, backend: backend.name, threads: task.threads ?? null,
    finishedAt: new Date().toISOString(),
  };
  rmSync(join(task.dir, ERROR_FILE), { force: true });
  writeFileAtomic(join(task.dir, RESULT_FILE), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function previousElapsed(checkpointDir: string): number {
  try {
    return readCheckpointState(checkpointDir).elapsedMs ?? 0;
  } catch {
    return 0;
  }
}

/** Records a failed run in its folder (result.json stays absent, so the next invocation retries it). */
export function recordFailure(task: RunTask, message: string): void {
  try {
    writeFileAtomic(join(task.dir, ERROR_FILE), `${JSON.stringify({ variant: task.variant, seed: task.seed, error: message,
      at: new Date().toISOString() }, null, 2)}\n`);
  } catch {
    // Best effort: the failure is in study.json anyway (the run folder may be what failed).
  }
}
