/**
 * Job-set bookkeeping, done by each block job itself (in the processor child) before BullMQ marks it completed:
 * the block's index joins the set's done set and, when that makes the set whole, the finish job (pyramid) is
 * queued under its own id, so it is queued once. Both steps are idempotent. Doing them inside the job means a job
 * is never completed with its bookkeeping missing: when Redis goes away in between, or the worker dies, the job is
 * not completed either, runs again (a no-op block: its done marker is valid) and redoes them. Done afterwards, in
 * the worker's 'completed' handler, a connection lost at that moment left a set with every block done and no
 * pyramid, for good.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { doneKey, jobsetKey, jobsKey, parseRedisUrl, QUEUE_NAME } from './connection.js';
import { FINISH_JOB, finishJobId, type BlockJobData, type FinishJobData } from './jobs.js';

export interface Bookkeeper {
  /** Records the block as done; queues the finish job when it was the set's last (and the set is not cancelled). */
  blockDone(data: BlockJobData, opts: Pick<JobsOptions, 'attempts' | 'backoff'>): Promise<void>;
  close(): Promise<void>;
}

export function openBookkeeper(url: string): Bookkeeper {
  // Retries forever, like the worker's own connections: a Redis restart delays the job, it does not fail it.
  parseRedisUrl(url);
  const client = new Redis(url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined); // the worker's 'error' events already report an unreachable server
  const queue = new Queue(QUEUE_NAME, { connection: client });
  return {
    async blockDone(data, opts) {
      const { jobset, spec } = data;
      const replies = (await client.multi().sadd(doneKey(jobset), String(data.index)).scard(doneKey(jobset))
        .scard(jobsKey(jobset)).exec())!;
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0]!;
      const [, done, total] = replies.map(([, v]) => Number(v));
      if (done! < total! || (await client.hget(jobsetKey(jobset), 'cancelled'))) return;
      const finish: FinishJobData = { kind: 'predict', jobset, spec };
      await queue.add(FINISH_JOB, finish, { jobId: finishJobId(jobset), attempts: opts.attempts, backoff: opts.backoff });
    },
    async close() {
      await queue.close();
      client.disconnect();
    },
  };
}
