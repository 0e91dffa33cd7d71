/**
 * `emseg status --redis` and `emseg cancel`: what the queue knows of a job set. Counts come from the states of the
 * set's jobs (ids are known: the set plus each block index), throughput and ETA from their start and finish times.
 * Blocks done before the submit had no job and count as done. The output's done markers stay the truth of what is
 * written; this is the queue's view, readable from any machine that reaches Redis, without the storage.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { EmsegError } from '../errors.js';
import { isStalled } from '../pipeline/progress.js';
import { connectOnce, jobsetKey, jobsKey, JOBSETS_KEY, QUEUE_NAME } from './connection.js';
import { blockJobId, describeBlock, finishJobId, type BlockJobData } from './jobs.js';

export interface JobsetFailure {
  index: number;
  where: string;
  attempts: number;
  message: string;
}

export interface JobsetStatus {
  jobset: string;
  out: string;
  total: number;
  done: number;
  active: number;
  waiting: number;
  failed: JobsetFailure[];
  /** Jobs removed by cancel (their blocks are not done). */
  cancelled: number;
  /** Blocks per second over the completed jobs (first start to last finish); undefined before one completed. */
  blocksPerSecond?: number;
  /**
   * Seconds until the queued blocks are done at that rate; undefined when nothing is queued, and when no block is
   * being computed and none finished recently (isStalled: no worker seems to take the jobs).
   */
  etaSeconds?: number;
  /** Seconds since the last block job finished (undefined before the first). */
  idleSeconds?: number;
  /** State of the finish job that builds the pyramid ('none' before the last block). */
  pyramid: string;
}

const MS_PER_S = 1000;
/** Jobs looked up per round of parallel requests (ioredis pipelines them). */
const LOOKUP_BATCH = 200;

async function jobsOf(queue: Queue, jobset: string, indices: number[]): Promise<{ index: number; job?: Job<BlockJobData>; state: string }[]> {
  const out = [];
  for (let i = 0; i < indices.length; i += LOOKUP_BATCH) {
    out.push(...await Promise.all(indices.slice(i, i + LOOKUP_BATCH).map(async (index) => {
      const job = await queue.getJob(blockJobId(jobset, index)) as Job<BlockJobData> | undefined;
      return { index, job, state: job ? await job.getState() : 'removed' };
    })));
  }
  return out;
}

async function statusOf(client: Redis, queue: Queue, jobset: string): Promise<JobsetStatus> {
  const record = await client.hgetall(jobsetKey(jobset));
  if (!record.total) throw new EmsegError('not-found', jobset, 'no such job set on this Redis (emseg status --redis URL lists them)');
  const indices = (await client.smembers(jobsKey(jobset))).map(Number).sort((a, b) => a - b);
  const jobs = await jobsOf(queue, jobset, indices);
  const count = (...states: string[]) => jobs.filter((j) => states.includes(j.state)).length;
  const total = Number(record.total);
  const completed = jobs.filter((j) => j.state === 'completed');
  const failed = jobs.filter((j) => j.state === 'failed').map((j) => ({ index: j.index,
    where: describeBlock(j.job!.data.grid, j.job!.data.write), attempts: j.job!.attemptsMade, message: j.job!.failedReason ?? '' }));
  const s: JobsetStatus = { jobset, out: record.out ?? '', total, done: total - indices.length + completed.length,
    active: count('active'), waiting: count('waiting', 'wait', 'delayed', 'prioritized', 'waiting-children'),
    failed, cancelled: count('removed'), pyramid: await queue.getJobState(finishJobId(jobset)).then((st) => (st === 'unknown' ? 'none' : st)) };
  if (completed.length > 0) {
    const first = Math.min(...completed.map((j) => j.job!.processedOn ?? Infinity));
    const last = Math.max(...completed.map((j) => j.job!.finishedOn ?? 0));
    s.idleSeconds = Math.max(0, (Date.now() - last) / MS_PER_S);
    if (last > first) {
      s.blocksPerSecond = (MS_PER_S * completed.length) / (last - first);
      const queued = s.active + s.waiting;
      const working = s.active > 0 || !isStalled(s.idleSeconds, 1 / s.blocksPerSecond);
      if (queued > 0 && working) s.etaSeconds = queued / s.blocksPerSecond;
    }
  }
  return s;
}

/** The status of one job set, or of every job set recorded on this Redis. */
export async function queueStatus(url: string, jobset?: string): Promise<JobsetStatus[]> {
  const client = await connectOnce(url);
  const queue = new Queue(QUEUE_NAME, { connection: client });
  try {
    const sets = jobset ? [jobset] : (await client.smembers(JOBSETS_KEY)).sort();
    const out = [];
    for (const id of sets) out.push(await statusOf(client, queue, id));
    return out;
  } finally {
    await queue.close();
    client.disconnect();
  }
}

export interface CancelResult {
  jobset: string;
  removed: number;
  /** Blocks being computed now: they finish (their output is valid) but nothing new starts. */
  active: number;
}

/** Removes the set's jobs that have not started (waiting, delayed for a retry, failed); running blocks finish. */
export async function cancelJobset(url: string, jobset: string): Promise<CancelResult> {
  const client = await connectOnce(url);
  const queue = new Queue(QUEUE_NAME, { connection: client });
  try {
    if (!(await client.exists(jobsetKey(jobset)))) throw new EmsegError('not-found', jobset, 'no such job set on this Redis');
    await client.hset(jobsetKey(jobset), 'cancelled', new Date().toISOString());
    const indices = (await client.smembers(jobsKey(jobset))).map(Number);
    const result: CancelResult = { jobset, removed: 0, active: 0 };
    for (const j of await jobsOf(queue, jobset, indices)) {
      if (j.state === 'active') result.active++;
      else if (j.state !== 'completed' && j.state !== 'removed') result.removed += await queue.remove(blockJobId(jobset, j.index));
    }
    return result;
  } finally {
    await queue.close();
    client.disconnect();
  }
}
