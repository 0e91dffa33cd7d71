/**
 * `emseg worker`: takes block jobs from the queue, on any machine that sees the outputs' storage. BullMQ runs each
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
import { QUEUE_NAME, safeUrl, workerConnection } from './connection.js';
import {
  BLOCK_JOB, describeBlock, FINISH_JOB, WORKER_ENV,
  type BlockJobData, type BlockResult, type FinishJobData, type PathMap,
} from './jobs.js';

/** Compiled next to this file. */
const PROCESSOR = fileURLToPath(new URL('./processor.js', import.meta.url));

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
}

type AnyJob = Job<BlockJobData | FinishJobData>;

export async function startWorker(options: WorkerOptions, report: (e: WorkerEvent) => void): Promise<WorkerHandle> {
  const connection = workerConnection(options.redis);
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
    useWorkerThreads: false, // child processes: one oneDNN runtime each, killed with the worker's process group
    workerForkOptions: { env: childEnv },
    lockDuration: options.lockMs ?? QUEUE_DEFAULTS.lockMs.value,
    stalledInterval: options.stalledMs ?? QUEUE_DEFAULTS.stalledMs.value,
    maxStalledCount: options.maxStalled ?? QUEUE_DEFAULTS.maxStalled.value,
  });
  worker.on('completed', (job: AnyJob, value: unknown) => {
    if (job.name === FINISH_JOB) return report({ type: 'finished', jobset: job.data.jobset });
    report({ type: 'block', result: value as BlockResult }); // its job set's bookkeeping was done by the job itself
  });
  worker.on('failed', (job: AnyJob | undefined, err: Error) => {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    const where = job.name === BLOCK_JOB ? describeBlock((job.data as BlockJobData).grid, (job.data as BlockJobData).write) : 'pyramid';
    report({ type: 'failed', jobset: job.data.jobset, where, attempt: job.attemptsMade, attempts, final: job.attemptsMade >= attempts, message: err.message });
  });
  worker.on('error', (err) => report({ type: 'error', message: err.message }));
  await worker.waitUntilReady();
  report({ type: 'ready', url: safeUrl(options.redis), concurrency });
  return {
    async close() {
      await worker.close();
    },
  };
}

