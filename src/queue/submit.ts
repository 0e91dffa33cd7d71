/**
 * `emseg submit predict`: turns a blockwise prediction into block jobs on the queue. The output and its markers
 * are created or validated exactly as `emseg predict --out x.zarr` does (openVolumePredict), then one job is added
 * per block without a valid done marker. Job ids are the job set (the run id: plan + model + input identity) plus
 * the block index, so a second submit of the same job adds nothing; it re-queues only what cannot finish by
 * itself: failed jobs (retried) and completed jobs whose block lost its marker (output deleted since).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { finishVolumePredict, openVolumePredict, type VolumePredictJob } from '../pipeline/volume-predict.js';
import { QUEUE_DEFAULTS } from '../pipeline/defaults.js';
import { connectOnce, doneKey, jobsetKey, jobsKey, JOBSETS_KEY, QUEUE_NAME } from './connection.js';
import { BLOCK_JOB, blockJobId, finishJobId, jobsetOf, specOf, type BlockJobData } from './jobs.js';

export interface SubmitOptions {
  redis: string;
  attempts?: number;
  backoffMs?: number;
}

export interface SubmitResult {
  jobset: string;
  out: string;
  total: number;
  /** Blocks already done (valid marker): no job. */
  done: number;
  /** Jobs added now, failed jobs retried now, jobs already queued or running (left alone). */
  added: number;
  retried: number;
  queued: number;
  /** Every block was already done: the pyramid was built by this call. */
  complete: boolean;
}

/** Jobs added per round trip (addBulk is one MULTI). */
const ADD_BATCH = 500;

export async function submitPredict(job: VolumePredictJob, options: SubmitOptions): Promise<SubmitResult> {
  const client = await connectOnce(options.redis);
  const queue = new Queue<BlockJobData>(QUEUE_NAME, { connection: client });
  const run = await openVolumePredict(job);
  try {
    const jobset = jobsetOf(run.markers);
    const spec = specOf(job);
    const todo = [];
    for (const b of run.plan.blocks) if (!(await run.markers.isDone(b))) todo.push(b);
    const result: SubmitResult = { jobset, out: spec.out, total: run.plan.blocks.length, done: run.plan.blocks.length - todo.length,
      added: 0, retried: 0, queued: 0, complete: false };
    await recordJobset(client, jobset, spec.out, result.total, todo.map((b) => b.index));
    const jobOpts = { attempts: options.attempts ?? QUEUE_DEFAULTS.attempts.value,
      backoff: { type: 'exponential' as const, delay: options.backoffMs ?? QUEUE_DEFAULTS.backoffMs.value } };
    const fresh = [];
    for (const b of todo) {
      const id = blockJobId(jobset, b.index);
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
      await client.srem(doneKey(jobset), String(b.index));
      fresh.push({ name: BLOCK_JOB, data: { kind: 'predict' as const, jobset, spec, index: b.index, grid: b.grid, write: b.write },
        opts: { ...jobOpts, jobId: id } });
    }
    // New or retried blocks make the set unfinished again: its old finish job (if any) must run again at the end.
    if (fresh.length + result.retried > 0) await queue.remove(finishJobId(jobset));
    for (let i = 0; i < fresh.length; i += ADD_BATCH) await queue.addBulk(fresh.slice(i, i + ADD_BATCH));
    result.added = fresh.length;
    if (todo.length === 0) result.complete = await finishVolumePredict(run);
    return result;
  } finally {
    await run.close();
    await queue.close();
    client.disconnect();
  }
}

async function recordJobset(client: Redis, jobset: string, out: string, total: number, indices: number[]): Promise<void> {
  const tx = client.multi()
    .hset(jobsetKey(jobset), { kind: 'predict', out, total: String(total) })
    .hsetnx(jobsetKey(jobset), 'created', new Date().toISOString())
    .hdel(jobsetKey(jobset), 'cancelled')
    .sadd(JOBSETS_KEY, jobset);
  if (indices.length > 0) tx.sadd(jobsKey(jobset), ...indices.map(String));
  await tx.exec();
}
