/**
 * Job-set bookkeeping, done by each job itself (in the processor child) before BullMQ marks it completed:
 * - a block job adds its index to its task's done set and, when that makes the task whole, queues the task's
 *   finish job under its own id, so it is queued once;
 * - a finish job queues the start job of every downstream task, or, after the job's last task, records the set
 *   as finished;
 * - a start job queues its task's blocks (enqueue.ts).
 * Every step is idempotent. Doing them inside the job means a job is never completed with its bookkeeping missing:
 * when Redis goes away in between, or the worker dies, the job is not completed either, runs again (a no-op block:
 * its done marker is valid) and redoes them. Done afterwards, in the worker's 'completed' handler, a connection
 * lost at that moment left a set with every block done and no pyramid, for good.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { BlockTask, TaskJob } from '../pipeline/engine/task.js';
import { downstreamOf } from '../pipeline/engine/task.js';
import { doneKey, jobsetKey, jobsKey, parseRedisUrl, QUEUE_NAME } from './connection.js';
import { enqueueBlocks, type EnqueueResult } from './enqueue.js';
import { FINISH_JOB, finishJobId, START_JOB, startJobId, type BlockJobData, type StageJobData } from './jobs.js';

type RetryOptions = Pick<JobsOptions, 'attempts' | 'backoff'>;

export interface Bookkeeper {
  /** Records the block as done; queues its task's finish job when it was the task's last (and the set is not cancelled). */
  blockDone(data: BlockJobData, opts: RetryOptions): Promise<void>;
  /** After a task's finish: queues its downstream tasks' start jobs; true when it was the job's last task. */
  taskFinished(data: StageJobData, job: TaskJob, task: BlockTask, opts: RetryOptions): Promise<boolean>;
  /** A start job's second half: the task's blocks on the queue. */
  queueBlocks(data: StageJobData, task: BlockTask, opts: RetryOptions): Promise<EnqueueResult>;
  close(): Promise<void>;
}

export function openBookkeeper(url: string): Bookkeeper {
  // Retries forever, like the worker's own connections: a Redis restart delays the job, it does not fail it.
  parseRedisUrl(url);
  const client = new Redis(url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined); // the worker's 'error' events already report an unreachable server
  const queue = new Queue(QUEUE_NAME, { connection: client });
  const cancelled = async (jobset: string) => (await client.hget(jobsetKey(jobset), 'cancelled')) !== null;
  return {
    async blockDone(data, opts) {
      const { jobset, task } = data;
      const replies = (await client.multi().sadd(doneKey(jobset, task), String(data.index)).scard(doneKey(jobset, task))
        .scard(jobsKey(jobset, task)).exec())!;
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0]!;
      const [, done, total] = replies.map(([, v]) => Number(v));
      if (done! < total! || (await cancelled(jobset))) return;
      const { index: _i, grid: _g, write: _w, ...stage } = data;
      await queue.add(FINISH_JOB, stage, { jobId: finishJobId(jobset, task), ...opts });
    },
    async taskFinished(data, job, task, opts) {
      const down = downstreamOf(job, task);
      if (down.length === 0) {
        await client.hset(jobsetKey(data.jobset), 'finished', new Date().toISOString());
        return true;
      }
      if (await cancelled(data.jobset)) return false;
      for (const d of down) {
        // A start job left completed by an earlier round (the task was reopened by a resubmit) must run again.
        await queue.remove(startJobId(data.jobset, d.name));
        await queue.add(START_JOB, { ...data, task: d.name }, { jobId: startJobId(data.jobset, d.name), ...opts });
      }
      return false;
    },
    queueBlocks: (data, task, opts) => enqueueBlocks(queue, client, data, task, opts),
    async close() {
      await queue.close();
      client.disconnect();
    },
  };
}
