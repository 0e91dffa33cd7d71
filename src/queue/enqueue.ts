/**
 * Queues a task's blocks: one job per block without a valid done marker, with ids that make a second call add
 * nothing. It re-queues only what cannot finish by itself: failed jobs (retried) and completed jobs whose block lost
 * its marker (output deleted since). A task with nothing left to do gets its finish job at once, so the job set
 * moves on. Used by `emseg submit` (the first task) and by start jobs (the tasks after it).
 */
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BlockTask } from '../pipeline/engine/task.js';
import { eachBlock } from '../pipeline/blocks.js';
import { doneKey, jobsetKey, jobsKey } from './connection.js';
import { BLOCK_JOB, blockJobId, FINISH_JOB, finishJobId, type StageJobData } from './jobs.js';

/** Jobs added per round trip (addBulk is one MULTI). */
const ADD_BATCH = 500;

export interface EnqueueResult {
  total: number;
  /** Blocks already done (valid marker): no job. */
  done: number;
  /** Jobs added now, failed jobs retried now, jobs already queued or running (left alone). */
  added: number;
  retried: number;
  queued: number;
}

/** The hash field that says a task's blocks were queued (before, its blocks count as pending, not done). */
export const enqueuedField = (task: string) => `enqueued:${task}`;

export async function enqueueBlocks(queue: Queue, client: Redis, stage: StageJobData, task: BlockTask,
  opts: Pick<JobsOptions, 'attempts' | 'backoff'>): Promise<EnqueueResult> {
  const { jobset } = stage;
  const result: EnqueueResult = { total: task.plan.count, done: 0, added: 0, retried: 0, queued: 0 };
  let batch: Parameters<Queue['addBulk']>[0] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await client.multi().srem(doneKey(jobset, task.name), ...batch.map((j) => String(j.data.index)))
      .sadd(jobsKey(jobset, task.name), ...batch.map((j) => String(j.data.index))).exec();
    await queue.addBulk(batch);
    result.added += batch.length;
    batch = [];
  };
  for (const b of eachBlock(task.plan)) {
    if (await task.markers.isDone(b)) {
      result.done++;
      continue;
    }
    const id = blockJobId(jobset, task.name, b.index);
    const state = await queue.getJobState(id);
    if (state === 'failed') {
      await (await queue.getJob(id))!.retry('failed');
      result.retried++;
      continue;
    }
    if (state === 'completed') await queue.remove(id); // its marker is gone: the block must run again
    else if (state !== 'unknown') {
      result.queued++;
      continue;
    }
    batch.push({ name: BLOCK_JOB, data: { ...stage, index: b.index, grid: b.grid, write: b.write }, opts: { ...opts, jobId: id } });
    if (batch.length >= ADD_BATCH) await flush();
  }
  // New or retried blocks make the task unfinished again: its old finish job (if any) must run again at the end.
  if (batch.length + result.retried > 0) await queue.remove(finishJobId(jobset, task.name));
  await flush();
  await client.hset(jobsetKey(jobset), enqueuedField(task.name), new Date().toISOString());
  if (result.added + result.retried + result.queued === 0) {
    await queue.remove(finishJobId(jobset, task.name));
    await queue.add(FINISH_JOB, stage, { ...opts, jobId: finishJobId(jobset, task.name) });
  }
  return result;
}
