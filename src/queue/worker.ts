/**
 * `emseg worker`: takes block jobs from the queue, on any machine that sees the outputs' storage. BullMQ runs each
 * block in a child process (processor.ts), one per `concurrency`, so this process's event loop stays free to renew
 * the jobs' locks while oneDNN computes; a worker that dies (kill -9, a lost machine) stops renewing, and after the
 * lock expires another worker takes the block again (its done marker makes a finished block a no-op). A failing
 * block is retried with exponential backoff (the attempts and delay are set per job by submit). When the last
 * block of a job set completes, a finish job (pyramid) is queued, with an id of its own so it is queued once.
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_DEFAULTS } from '../pipeline/defaults.js';
import { doneKey, jobsetKey, jobsKey, QUEUE_NAME, safeUrl, workerConnection } from './connection.js';
import {
  BLOCK_JOB, describeBlock, FINISH_JOB, finishJobId, WORKER_ENV,
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
  // Bookkeeping of job sets (which blocks completed; the finish job) on a connection of its own.
  const client = new Redis(options.redis, { maxRetriesPerRequest: null });
  client.on('error', () => undefined); // the worker's own 'error' events report an unreachable server
  const queue = new Queue(QUEUE_NAME, { connection: client });
  worker.on('completed', (job: AnyJob, value: unknown) => {
    if (job.name === FINISH_JOB) return report({ type: 'finished', jobset: job.data.jobset });
    report({ type: 'block', result: value as BlockResult });
    blockCompleted(client, queue, job as Job<BlockJobData>).catch((err) => report({ type: 'error', message: String(err) }));
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
      await queue.close();
      client.disconnect();
    },
  };
}

/** Records the block as completed; the worker that sees the set's last block queue the finish job. */
async function blockCompleted(client: Redis, queue: Queue, job: Job<BlockJobData>): Promise<void> {
  const { jobset, spec } = job.data;
  const [, done, total] = (await client.multi().sadd(doneKey(jobset), String(job.data.index)).scard(doneKey(jobset)).scard(jobsKey(jobset)).exec())!
    .map(([, v]) => Number(v));
  if (done! < total! || (await client.hget(jobsetKey(jobset), 'cancelled'))) return;
  const finish: FinishJobData = { kind: 'predict', jobset, spec };
  await queue.add(FINISH_JOB, finish, { jobId: finishJobId(jobset), attempts: job.opts.attempts, backoff: job.opts.backoff });
}
