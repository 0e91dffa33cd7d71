/**
 * `emseg submit predict|segment`: turns a blockwise job into jobs on the queue. The output and its markers are
 * created or validated exactly as the in-process command does (the kind's open, kinds.ts), then the first task
 * that must run (engine/run.ts neededTasks) is queued: its blocks at once when it waits for nothing, else a start
 * job that prepares it (e.g. stitches) and queues its blocks. The tasks after it follow by themselves (each task's
 * last block queues its finish job, which starts the next: bookkeeping.ts). Job ids are the job set (the run id:
 * plan + model + input identity), the task and the block index, so a second submit of the same job adds nothing;
 * it re-queues only what cannot finish by itself: failed jobs (retried) and completed jobs whose block lost its
 * marker (output deleted since).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_DEFAULTS } from '../pipeline/defaults.js';
import { neededTasks } from '../pipeline/engine/run.js';
import type { BlockTask, JobKind, TaskJob } from '../pipeline/engine/task.js';
import type { VolumePredictJob } from '../pipeline/volume-predict.js';
import type { VolumeSegmentJob } from '../pipeline/volume-segment.js';
import { connectOnce, jobsetKey, JOBSETS_KEY, QUEUE_NAME } from './connection.js';
import { enqueueBlocks } from './enqueue.js';
import { START_JOB, startJobId, type SpecOf, type StageJobData } from './jobs.js';
import { JOB_KINDS } from './kinds.js';
import { openVolumePredict } from '../pipeline/volume-predict.js';
import { openVolumeSegment } from '../pipeline/volume-segment.js';
import { openBlockwiseNeurons } from '../pipeline/neurons-blockwise.js';
import { resolveNeuronJob } from '../pipeline/neurons.js';
import type { NeuronSegmentJob } from '../pipeline/neurons-input.js';

export interface SubmitOptions {
  redis: string;
  attempts?: number;
  backoffMs?: number;
}

export interface SubmitResult {
  jobset: string;
  out: string;
  /** Blocks of the task queued now (the first that must run). */
  task?: string;
  total: number;
  /** Blocks already done (valid marker): no job. */
  done: number;
  /** Jobs added now, failed jobs retried now, jobs already queued or running (left alone). */
  added: number;
  retried: number;
  queued: number;
  /** Every task was already complete: the job was finished (pyramid built) by this call. */
  complete: boolean;
  /** The task queued as a start job (it prepares, then queues its blocks on a worker). */
  started?: string;
}

export function submitPredict(job: VolumePredictJob, options: SubmitOptions): Promise<SubmitResult> {
  return submit('predict', JOB_KINDS.predict.specOf(job), () => openVolumePredict(job), options);
}

export function submitSegment(job: VolumeSegmentJob, options: SubmitOptions): Promise<SubmitResult> {
  return submit('segment', JOB_KINDS.segment.specOf(job), () => openVolumeSegment(job), options);
}

/**
 * `emseg submit segment --method watershed-agglomerate --block ...`: the blockwise neurons (pipeline/neurons-blockwise.ts).
 * The model's tuned choice (`--method auto`, thresholds no flag gives) is resolved here: the queued spec carries every
 * option, so workers need no model.
 */
export async function submitNeurons(given: NeuronSegmentJob, options: SubmitOptions): Promise<SubmitResult> {
  const job = await resolveNeuronJob(given);
  return submit('neurons', JOB_KINDS.neurons.specOf(job), () => openBlockwiseNeurons(job), options);
}

async function submit<K extends JobKind>(kind: K, spec: SpecOf[K], open: () => Promise<TaskJob>, options: SubmitOptions): Promise<SubmitResult> {
  const client = await connectOnce(options.redis);
  const queue = new Queue(QUEUE_NAME, { connection: client });
  const run = await open();
  try {
    const stage = { kind, jobset: run.jobset, spec, task: '' } as StageJobData;
    const result: SubmitResult = { jobset: run.jobset, out: run.out, total: 0, done: 0, added: 0, retried: 0, queued: 0, complete: false };
    await recordJobset(client, run, stage);
    const opts = { attempts: options.attempts ?? QUEUE_DEFAULTS.attempts.value,
      backoff: { type: 'exponential' as const, delay: options.backoffMs ?? QUEUE_DEFAULTS.backoffMs.value } };
    const first = await firstToQueue(run);
    if (!first) {
      for (const t of run.tasks) await t.finish?.(); // complete: finishing again writes the same bytes
      return { ...result, complete: true };
    }
    const data = { ...stage, task: first.name };
    if (first.upstream.length > 0 || first.prepare) {
      await queue.remove(startJobId(run.jobset, first.name));
      await queue.add(START_JOB, data, { ...opts, jobId: startJobId(run.jobset, first.name) });
      return { ...result, started: first.name };
    }
    return { ...result, task: first.name, ...await enqueueBlocks(queue, client, data, first, opts) };
  } finally {
    await run.close();
    await queue.close();
    client.disconnect();
  }
}

/** The first task that must run and is not complete (its upstream tasks are, as they come before it). */
async function firstToQueue(run: TaskJob): Promise<BlockTask | undefined> {
  const needed = await neededTasks(run);
  for (const t of run.tasks) {
    if (needed.has(t) && (await t.markers.status()).remaining > 0) return t;
  }
  return undefined;
}

async function recordJobset(client: Redis, run: TaskJob, stage: StageJobData): Promise<void> {
  const tasks = run.tasks.map((t) => ({ name: t.name, total: t.plan.count }));
  await client.multi()
    .hset(jobsetKey(run.jobset), { kind: stage.kind, out: run.out, tasks: JSON.stringify(tasks) })
    .hsetnx(jobsetKey(run.jobset), 'created', new Date().toISOString())
    .hdel(jobsetKey(run.jobset), 'cancelled', 'finished')
    .sadd(JOBSETS_KEY, run.jobset)
    .exec();
}
