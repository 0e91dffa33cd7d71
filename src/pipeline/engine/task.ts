/**
 * Block tasks (after funkelab/daisy's Task and Block): every blockwise job of emseg (predict, the passes of
 * segmentation, convert) is a list of tasks, and one runner (run.ts) executes any of them in-process, as a
 * `--shard i/n`, or block by block from the queue (src/queue/processor.ts), so all three write the same bytes.
 *
 * A task owns a block plan (blocks = write region + read region = write grown by the halo), the done markers of
 * its blocks (markers.ts: a block is done only once its files are written, and a marker never lies), and three
 * steps per block: `read` (may run ahead of the block before it), `compute` (the CPU part) and `write` (returns
 * the files its marker lists). Tasks wait for their upstream tasks: `prepare` runs once those are complete (e.g.
 * the stitching of blockwise segmentation), `finish` once this task's own blocks are (e.g. the pyramid). Both are
 * idempotent and deterministic: whichever process sees the moment runs them, and two that both do write the same
 * bytes.
 */
import { EmsegError } from '../../errors.js';
import type { WrittenFile } from '../../io/formats/chunk-digests.js';
import type { Block, BlockPlan } from '../blocks.js';
import { digest, type MarkerStore } from '../markers.js';

export interface BlockTask<In = unknown, Out = unknown> {
  /** Names the task within its job: in progress lines, queue job ids and errors. */
  readonly name: string;
  readonly plan: BlockPlan;
  readonly markers: MarkerStore;
  /** Names of the job's tasks whose every block must be done before this task's blocks run. */
  readonly upstream: readonly string[];
  /** Reads what the block computes from; the runner may start it while the block before computes. */
  read(block: Block): Promise<In>;
  /** The block's result from its input (the part that takes the CPU). */
  compute(block: Block, input: In): Out | Promise<Out>;
  /**
   * Writes the result; returns the files the block's done marker lists, every one of them complete: by name (the
   * marker reads it back for its digest), or with the size and digest of the bytes just written.
   */
  write(block: Block, result: Out): Promise<readonly (string | WrittenFile)[]>;
  /** Once the upstream tasks are complete, before any block of this task runs; idempotent. */
  prepare?(): Promise<void>;
  /** Once every block of this task is done; idempotent, deterministic (any process may run it, or several). */
  finish?(): Promise<void>;
}

/** The kinds of blockwise jobs the queue can carry (see registry.ts). */
export type JobKind = 'predict' | 'segment' | 'neurons';

/** An opened blockwise job: its output, its tasks in an order where upstream tasks come first, and what it holds. */
export interface TaskJob {
  readonly kind: JobKind;
  /** The output folder (named in errors and in `emseg status`). */
  readonly out: string;
  readonly tasks: readonly BlockTask[];
  /** The job set on the queue: equal on every machine that opens the same output for the same job (jobs.ts). */
  readonly jobset: string;
  /** Lines for the user (notices, retries). */
  readonly notice?: (message: string) => void;
  /** Closes what the job holds open (readers); the notice of absent chunks read as fill goes out here. */
  close(): Promise<void>;
}

/** The task of `job` named `name`, or an error naming the job's output. */
export function taskNamed(job: TaskJob, name: string): BlockTask {
  const task = job.tasks.find((t) => t.name === name);
  if (!task) throw new EmsegError('mismatch', job.out, `the ${job.kind} job has no task "${name}" (tasks: ${job.tasks.map((t) => t.name).join(', ')})`);
  return task;
}

/** The tasks that list `task` as upstream. */
export function downstreamOf(job: TaskJob, task: BlockTask): BlockTask[] {
  return job.tasks.filter((t) => t.upstream.includes(task.name));
}

/** Hex characters of a job-set id (64 bits). */
const JOBSET_HEX = 16;

/**
 * The job set of an opened job, from its output's markers: the run id (plan, model and input identity) and the
 * creation time of its run record, read from the shared output, so every machine derives the same id, and two
 * outputs computed from the same plan (two folders) never share one.
 */
export function jobsetOf(markers: MarkerStore): string {
  return digest(markers.run, markers.created ?? '').slice(0, JOBSET_HEX);
}
