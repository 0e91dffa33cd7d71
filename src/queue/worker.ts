/**
 * `emseg worker`: takes jobs of any registered kind (predict, segment: kinds.ts) from the queue, on any machine that
 * sees the outputs' storage. BullMQ runs each
 * block in a child process (processor.ts), one per `concurrency`, so this process's event loop stays free to renew
 * the jobs' locks while oneDNN computes; a worker that dies (kill -9, a lost machine) stops renewing, and after the
 * lock expires another worker takes the block again (its done marker makes a finished block a no-op). A failing
 * block is retried with exponential backoff (the attempts and delay are set per job by submit). Each block job
 * records itself in its job set and queues the finish job (pyramid) when it is the last (bookkeeping.ts).
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker, type Job } from 'bullmq';
import { QUEUE_DEFAULTS } from '../pipeline/defaults.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmsegError } from '../errors.js';
import { connectOnce, isAuthError, QUEUE_NAME, redisError, safeUrl, workerConnection } from './connection.js';
import {
  BLOCK_JOB, describeBlock, FINISH_JOB, WORKER_ENV,
  type BlockJobData, type BlockResult, type FinishResult, type PathMap, type StageJobData,
} from './jobs.js';

/** Compiled next to this file. */
const PROCESSOR = fileURLToPath(new URL('./processor.js', import.meta.url));
const MS_PER_S = 1000;

export interface WorkerOptions {
  redis: string;
  concurrency?: number;
  threads?: number;
  pathMaps?: readonly PathMap[];
  /** JSONL file: one line per block computed (timings), appended by the processor children. */
  journal?: string;
  /** Name in logs and journal lines (default host:pid). */
  name?: string;
  lockMs?: number;
  stalledMs?: number;
  maxStalled?: number;
  /** Seconds of reconnecting to a lost Redis before the worker gives up (QUEUE_DEFAULTS.outageSeconds). */
  outageSeconds?: number;
}

export type WorkerEvent =
  | { type: 'ready'; url: string; concurrency: number }
  | { type: 'block'; result: BlockResult }
  | { type: 'failed'; jobset: string; where: string; attempt: number; attempts: number; final: boolean; message: string }
  | { type: 'finished'; jobset: string }
  | { type: 'error'; message: string };

export interface WorkerHandle {
  /** Stops taking jobs and waits for the blocks in progress (a graceful stop; SIGTERM does this). */
  close(): Promise<void>;
  /**
   * Rejects, once the worker is closed, when Redis is lost for good: `redis-unreachable` after the outage budget,
   * `redis-auth` when the server refuses the credentials. Never resolves.
   */
  readonly lost: Promise<never>;
}

/** How long closing a worker that lost Redis may take (its connections are gone; nothing is left to wait for). */
const LOST_CLOSE_MS = 5000;

type AnyJob = Job<BlockJobData | StageJobData>;

/**
 * Starts a worker once Redis answers (connectOnce: a wrong password or a Redis that never answers fails here, at
 * once or after a short bounded retry). A running worker that loses Redis reconnects with backoff for
 * `outageSeconds`, then closes and rejects `lost`; errors are reported once each, not once per reconnect.
 */
export async function startWorker(options: WorkerOptions, report: (e: WorkerEvent) => void): Promise<WorkerHandle> {
  (await connectOnce(options.redis)).disconnect();
  let fail!: (err: EmsegError) => void;
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  failed.catch(() => undefined); // observed through `lost`, which is awaited by the caller
  let lastError: unknown;
  let reported: string | undefined;
  const outageS = options.outageSeconds ?? QUEUE_DEFAULTS.outageSeconds.value;
  const connection = workerConnection(options.redis, outageS * MS_PER_S, {
    outage: () => { reported = undefined; }, // a new outage: its first error is said again
    giveUp: () => fail(redisError(options.redis, lastError ?? 'connection lost', `lost Redis and could not reconnect within ${outageS} s`)),
  });
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const childEnv = {
    ...process.env,
    [WORKER_ENV.threads]: options.threads ? String(options.threads) : '',
    [WORKER_ENV.pathMap]: JSON.stringify(options.pathMaps ?? []),
    [WORKER_ENV.journal]: options.journal ?? '',
    [WORKER_ENV.worker]: name,
    [WORKER_ENV.redis]: options.redis,
  };
  const concurrency = options.concurrency ?? QUEUE_DEFAULTS.concurrency.value;
  const worker = new Worker(QUEUE_NAME, PROCESSOR, {
    connection, concurrency, name,
    useWorkerThreads: false, // child processes: one oneDNN runtime each; they exit when the worker dies (processor.ts)
    workerForkOptions: { env: childEnv },
    lockDuration: options.lockMs ?? QUEUE_DEFAULTS.lockMs.value,
    stalledInterval: options.stalledMs ?? QUEUE_DEFAULTS.stalledMs.value,
    maxStalledCount: options.maxStalled ?? QUEUE_DEFAULTS.maxStalled.value,
  });
  worker.on('completed', (job: AnyJob, value: unknown) => {
    if (job.name === FINISH_JOB) {
      if ((value as FinishResult).last) report({ type: 'finished', jobset: job.data.jobset });
      return;
    }
    if (job.name === BLOCK_JOB) report({ type: 'block', result: value as BlockResult }); // bookkeeping was done by the job itself
  });
  worker.on('failed', (job: AnyJob | undefined, err: Error) => {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    const where = job.name === BLOCK_JOB ? `${job.data.task} ${describeBlock((job.data as BlockJobData).grid, (job.data as BlockJobData).write)}`
      : `${job.data.task} (${job.name === FINISH_JOB ? 'finish' : 'start'})`;
    // An UnrecoverableError (disk full, read-only, permission: processor.ts) is final whatever attempts are left.
    const final = job.attemptsMade >= attempts || err.name === 'UnrecoverableError';
    report({ type: 'failed', jobset: job.data.jobset, where, attempt: job.attemptsMade, attempts, final, message: err.message });
  });
  worker.on('error', (err) => {
    if (isAuthError(err)) fail(redisError(options.redis, err, 'refused'));
    // A lost connection errs on every command and reconnect: each message is said once per outage.
    if (err.message !== reported) report({ type: 'error', message: err.message });
    reported = err.message;
    lastError = err;
  });
  // Force: blocks in progress cannot be reported to a Redis that is gone (their children are killed; their jobs
  // run again elsewhere once the locks expire). Bounded, as a close may wait on a dead connection.
  const closeLost = () => Promise.race([worker.close(true).catch(() => undefined), sleep(LOST_CLOSE_MS, undefined, { ref: false })]);
  try {
    await Promise.race([worker.waitUntilReady(), failed]);
  } catch (err) {
    await closeLost();
    throw err;
  }
  report({ type: 'ready', url: safeUrl(options.redis), concurrency });
  const lost = failed.catch(async (err: unknown) => {
    await closeLost();
    throw err;
  });
  lost.catch(() => undefined);
  return {
    async close() {
      await worker.close();
    },
    lost,
  };
}

