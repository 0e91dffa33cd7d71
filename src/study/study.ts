import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmsegError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { recordedPath, typedPath } from '../util/paths.js';
import { checkpointExists } from '../train/checkpoint.js';
import { executeRun, readFinished, recordFailure, RunInterrupted, type RunResult, type RunTask } from './run.js';
import { checkStudyData } from './check.js';
import { StudyError, type ResolvedStudy } from './schema.js';
import { renderPlots } from './plots.js';
import { studyMarkdown, summarizeStudy, type RunRecord, type StudySummary } from './summary.js';
import { checkExpectations, planVariants, type VariantPlan } from './variants.js';
import type { FromWorker, ToWorker } from './worker.js';

export interface RunStudyOptions {
  /** Output folder: <out>/<variant>/seed-<n>/, study.json, study.md, plots/. */
  out: string;
  /** Runs at once (default 1). */
  jobs?: number;
  /** Cores to share between jobs (default: EMSEG_THREADS, else all); each job gets floor(cores / jobs) threads. */
  cores?: number;
  /** Run each job in a child process (default true); false runs them one by one in this process. */
  fork?: boolean;
  /** Replace the study's budget by this many steps (smoke tests); recorded in the results. */
  steps?: number;
  /** Only check the data and generate and check the variants' specs; train nothing. */
  checkOnly?: boolean;
  /** The study file, recorded in study.json. */
  file?: string;
  /** Once aborted, no new runs start; running ones finish (or die with Ctrl-C and resume next time). */
  signal?: AbortSignal;
  onEvent?: (e: StudyEvent) => void;
}

export interface RunRef {
  variant: string;
  seed: number;
  dir: string;
}

export type StudyEvent =
  /** `problems`: what is wrong with the data (each naming its study field); nothing is trained then. */
  | { type: 'variants'; plans: VariantPlan[]; expectations: string[]; problems: string[] }
  | { type: 'skip'; run: RunRef; result: RunResult }
  /** A run that cannot start (e.g. its folder holds a result from other settings). */
  | { type: 'blocked'; run: RunRef; error: string }
  | { type: 'start'; run: RunRef; /** 0-based index among the runs to do. */ started: number; total: number; threads: number | undefined; resumed: boolean; elapsedMs: number; etaMs: number | null }
  | { type: 'finish'; run: RunRef; result: RunResult; wallMs: number; done: number; total: number; elapsedMs: number; etaMs: number | null }
  | { type: 'fail'; run: RunRef; error: string; interrupted: boolean; done: number; total: number; elapsedMs: number; etaMs: number | null };

export interface StudyOutcome {
  summary: StudySummary;
  plans: VariantPlan[];
  /** Problems with the study's data, each naming its field (the study trains nothing while there are any). */
  problems: string[];
  /** Runs trained in this invocation, reused from earlier ones, failed (incl. interrupted). */
  trained: number;
  reused: number;
  failed: number;
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * Runs a study: checks every variant's spec, then trains and evaluates each variant x seed (skipping finished
 * runs, resuming interrupted ones), `jobs` at a time, and writes the summary after every run.
 */
export async function runStudy(study: ResolvedStudy, options: RunStudyOptions): Promise<StudyOutcome> {
  const out = resolve(options.out);
  const emit = options.onEvent ?? (() => {});
  if (options.steps !== undefined) study = { ...study, budget: { steps: options.steps } };
  const { problems, shape } = await checkStudyData(study);
  const plans = planVariants(study, shape);
  const expectations = checkExpectations(study, plans);
  emit({ type: 'variants', plans, expectations, problems });
  if (options.checkOnly) {
    return { summary: summarizeStudy(study, options.file ?? null, plans, [], expectations), plans, problems, trained: 0, reused: 0, failed: 0 };
  }
  if (problems.length) {
    throw new StudyError(`the study's data does not fit it, so nothing was trained:\n  ${problems.join('\n  ')}`);
  }
  if (expectations.length) {
    throw new StudyError(`the study's expectations do not hold, so nothing was trained:\n  ${expectations.join('\n  ')}`);
  }

  const jobs = Math.max(1, options.jobs ?? 1);
  const envThreads = Number(process.env.EMSEG_THREADS);
  const cores = options.cores ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : availableParallelism());
  const threads = Math.max(1, Math.floor(cores / jobs));
  const records: RunRecord[] = [];
  const tasks: { task: RunTask; record: RunRecord }[] = [];
  for (const p of plans) {
    if (!p.spec) continue;
    for (const seed of study.seeds) {
      const dir = join(out, p.name, `seed-${seed}`);
      const record: RunRecord = { variant: p.name, seed, dir, status: 'pending' };
      records.push(record);
      const task: RunTask = { study: study.name, variant: p.name, seed, dir, spec: p.spec, model: p.model, data: study.data,
        training: study.training, budget: study.budget, metrics: study.metrics, evalTile: study.evaluation.tile, threads };
      try {
        const result = readFinished(task);
        if (result) {
          Object.assign(record, { status: 'done', reused: true, result });
          emit({ type: 'skip', run: ref(task), result });
          continue;
        }
      } catch (err) {
        Object.assign(record, { status: 'failed', error: (err as Error).message });
        emit({ type: 'blocked', run: ref(task), error: (err as Error).message });
        continue;
      }
      tasks.push({ task, record });
    }
  }
  mkdirSync(out, { recursive: true });
  const summarize = () => summarizeStudy(study, options.file ?? null, plans, records, expectations);
  writeSummary(out, summarize());

  const t0 = Date.now();
  const total = tasks.length;
  const durations: number[] = [];
  const running = new Map<RunTask, number>();
  let next = 0;
  let finished = 0;
  const eta = (): number | null => {
    if (durations.length === 0) return null;
    const mean = durations.reduce((s, d) => s + d, 0) / durations.length;
    let work = (total - next) * mean;
    for (const started of running.values()) work += Math.max(0, mean - (Date.now() - started));
    return work / Math.min(jobs, Math.max(1, total - finished));
  };
  let trained = 0;
  let failed = records.filter((r) => r.status === 'failed').length;

  const runOne = async (task: RunTask, record: RunRecord, index: number): Promise<void> => {
    const started = Date.now();
    running.set(task, started);
    emit({ type: 'start', run: ref(task), started: index, total, threads: options.fork === false ? undefined : threads,
      resumed: checkpointExists(join(task.dir, 'checkpoint')), elapsedMs: started - t0, etaMs: eta() });
    try {
      const result = options.fork === false ? await executeRun(task, { shouldStop: () => options.signal?.aborted ?? false })
        : await forkRun(task);
      Object.assign(record, { status: 'done', result });
      durations.push(Date.now() - started);
      trained++;
      running.delete(task);
      finished++;
      emit({ type: 'finish', run: ref(task), result, wallMs: Date.now() - started, done: finished, total, elapsedMs: Date.now() - t0, etaMs: eta() });
    } catch (err) {
      const interrupted = err instanceof RunInterrupted || (options.signal?.aborted ?? false);
      const message = (err as Error).message;
      Object.assign(record, { status: interrupted ? 'interrupted' : 'failed', error: message });
      if (!interrupted) recordFailure(task, message);
      failed++;
      running.delete(task);
      finished++;
      emit({ type: 'fail', run: ref(task), error: message, interrupted, done: finished, total, elapsedMs: Date.now() - t0, etaMs: eta() });
    }
    try {
      writeSummary(out, summarize());
    } catch {
      // Written again at the end; a failure there is reported.
    }
  };

  const lane = async (): Promise<void> => {
    while (next < tasks.length && !options.signal?.aborted) {
      const index = next++;
      const { task, record } = tasks[index]!;
      await runOne(task, record, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, tasks.length)) }, lane));
  const summary = summarize();
  writeSummary(out, summary);
  return { summary, plans, problems, trained, reused: records.filter((r) => r.reused).length, failed };
}

function ref(task: RunTask): RunRef {
  return { variant: task.variant, seed: task.seed, dir: task.dir };
}

/** Runs one task in a child process with EMSEG_THREADS set to its share of the cores. */
function forkRun(task: RunTask): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(WORKER, [], {
      env: { ...process.env, ...(task.threads ? { EMSEG_THREADS: String(task.threads), OMP_NUM_THREADS: String(task.threads) } : {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answer: FromWorker | undefined;
    child.on('message', (m: FromWorker) => {
      answer = m;
    });
    child.on('error', (err) => reject(err));
    child.on('exit', (code, signal) => {
      if (answer?.type === 'done') resolvePromise(answer.result);
      else if (answer?.type === 'failed') reject(new EmsegError('run-failed', '', answer.error));
      else reject(new EmsegError('run-failed', '', `the run's worker process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} before reporting`));
    });
    child.send({ type: 'run', task } satisfies ToWorker);
  });
}

/** Writes study.json, study.md and the SVG plots into the output folder (here, not in summary.ts: plots read the summary). */
function writeSummary(out: string, s: StudySummary): void {
  const plots = renderPlots(s);
  for (const [file, svg] of plots.files) writeFileAtomic(join(out, file), svg);
  // Run folders relative to the study folder, the study file as typed: study.json names no machine's folders.
  const recorded = { ...s, file: s.file === null ? null : typedPath(s.file), runs: s.runs.map((r) => ({ ...r, dir: recordedPath(r.dir, out) })) };
  writeFileAtomic(join(out, 'study.json'), `${JSON.stringify(recorded, null, 2)}\n`);
  writeFileAtomic(join(out, 'study.md'), studyMarkdown(s, plots.index));
}
