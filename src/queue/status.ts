/**
 * `emseg status --redis` and `emseg cancel`: what the queue knows of a job set, task by task and in all. Counts come
 * from the states of the set's jobs (ids are known: the set, the task and each block index), throughput and ETA from their start and finish times.
 * Blocks done before the submit had no job and count as done. The output's done markers stay the truth of what is
 * written; this is the queue's view, readable from any machine that reaches Redis, without the storage.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { EmsegError } from '../errors.js';
import { isStalled } from '../pipeline/progress.js';
import { connectOnce, jobsetKey, jobsKey, JOBSETS_KEY, QUEUE_NAME } from './connection.js';
import { enqueuedField } from './enqueue.js';
import { blockJobId, describeBlock, finishJobId, startJobId, type BlockJobData } from './jobs.js';

export interface JobsetFailure {
  index: number;
  where: string;
  attempts: number;
  message: string;
}

/** The queue's view of one task of a job set. */
export interface TaskStatus {
  task: string;
  total: number;
  done: number;
  active: number;
  waiting: number;
  /** Blocks of a task whose blocks are not queued yet (it waits for the tasks before it). */
  pending: number;
  cancelled: number;
  /** State of the task's finish job ('none' before its last block). */
  finish: string;
}

export interface JobsetStatus {
  jobset: string;
  /** The job's kind (predict, segment). */
  kind: string;
  out: string;
  /** Over every task of the job (segmentation: two passes of the same blocks). */
  total: number;
  done: number;
  active: number;
  /** Queued blocks and blocks of tasks not queued yet. */
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
  /** State of the finish job of the job's last task, which builds the pyramid ('none' before its last block). */
  pyramid: string;
  tasks: TaskStatus[];
}

const MS_PER_S = 1000;
/** Jobs looked up per round of parallel requests (ioredis pipelines them). */
const LOOKUP_BATCH = 200;

interface TaskJobs {
  index: number;
  job?: Job<BlockJobData>;
  state: string;
}

async function jobsOf(queue: Queue, jobset: string, task: string, indices: number[]): Promise<TaskJobs[]> {
  const out = [];
  for (let i = 0; i < indices.length; i += LOOKUP_BATCH) {
    out.push(...await Promise.all(indices.slice(i, i + LOOKUP_BATCH).map(async (index) => {
      const job = await queue.getJob(blockJobId(jobset, task, index)) as Job<BlockJobData> | undefined;
      return { index, job, state: job ? await job.getState() : 'removed' };
    })));
  }
  return out;
}

/** The tasks a job set records (name and block count), in job order. */
function recordedTasks(record: Record<string, string>): { name: string; total: number }[] {
  return JSON.parse(record.tasks ?? '[]') as { name: string; total: number }[];
}

async function taskStatus(client: Redis, queue: Queue, jobset: string, task: { name: string; total: number }, later: boolean): Promise<{ status: TaskStatus; jobs: TaskJobs[] }> {
  const enqueued = (await client.hget(jobsetKey(jobset), enqueuedField(task.name))) !== null;
  const finish = await queue.getJobState(finishJobId(jobset, task.name)).then((st) => (st === 'unknown' ? 'none' : st));
  const status: TaskStatus = { task: task.name, total: task.total, done: 0, active: 0, waiting: 0, pending: 0, cancelled: 0, finish };
  if (!enqueued) {
    // Never queued: done before the submit when a later task was queued, else waiting for the tasks before it.
    if (later) status.done = task.total;
    else status.pending = task.total;
    return { status, jobs: [] };
  }
  const indices = (await client.smembers(jobsKey(jobset, task.name))).map(Number).sort((a, b) => a - b);
  const jobs = await jobsOf(queue, jobset, task.name, indices);
  const count = (...states: string[]) => jobs.filter((j) => states.includes(j.state)).length;
  Object.assign(status, { done: task.total - indices.length + count('completed'), active: count('active'),
    waiting: count('waiting', 'wait', 'delayed', 'prioritized', 'waiting-children'), cancelled: count('removed') });
  return { status, jobs };
}

async function statusOf(client: Redis, queue: Queue, jobset: string): Promise<JobsetStatus> {
  const record = await client.hgetall(jobsetKey(jobset));
  if (!record.tasks) throw new EmsegError('not-found', jobset, 'no such job set on this Redis (emseg status --redis URL lists them)');
  const recorded = recordedTasks(record);
  const tasks: TaskStatus[] = [];
  const all: TaskJobs[] = [];
  let later = false;
  for (const t of [...recorded].reverse()) {
    const { status, jobs } = await taskStatus(client, queue, jobset, t, later);
    later ||= status.pending === 0;
    tasks.unshift(status);
    all.push(...jobs);
  }
  const sum = (k: 'total' | 'done' | 'active' | 'waiting' | 'pending' | 'cancelled') => tasks.reduce((n, t) => n + t[k], 0);
  const failed = all.filter((j) => j.state === 'failed').map((j) => ({ index: j.index,
    where: `${j.job!.data.task} ${describeBlock(j.job!.data.grid, j.job!.data.write)}`, attempts: j.job!.attemptsMade, message: j.job!.failedReason ?? '' }));
  const s: JobsetStatus = { jobset, kind: record.kind ?? '', out: record.out ?? '', total: sum('total'), done: sum('done'), active: sum('active'),
    waiting: sum('waiting') + sum('pending'), failed, cancelled: sum('cancelled'), pyramid: tasks[tasks.length - 1]?.finish ?? 'none', tasks };
  rates(s, all.filter((j) => j.state === 'completed'));
  return s;
}

/** Throughput, idle time and ETA from the completed jobs' start and finish times. */
function rates(s: JobsetStatus, completed: TaskJobs[]): void {
  if (completed.length === 0) return;
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
    const record = await client.hgetall(jobsetKey(jobset));
    if (!record.tasks) throw new EmsegError('not-found', jobset, 'no such job set on this Redis');
    await client.hset(jobsetKey(jobset), 'cancelled', new Date().toISOString());
    const result: CancelResult = { jobset, removed: 0, active: 0 };
    for (const { name } of recordedTasks(record)) {
      await queue.remove(startJobId(jobset, name)); // a task not started yet never starts
      const indices = (await client.smembers(jobsKey(jobset, name))).map(Number);
      for (const j of await jobsOf(queue, jobset, name, indices)) {
        if (j.state === 'active') result.active++;
        else if (j.state !== 'completed' && j.state !== 'removed') result.removed += await queue.remove(blockJobId(jobset, name, j.index));
      }
    }
    return result;
  } finally {
    await queue.close();
    client.disconnect();
  }
}
