/**
 * The one runner of block tasks (task.ts). In-process (`emseg predict/segment --out x.zarr`, with or without
 * `--shard i/n`) it runs a job's tasks in upstream order over this process's blocks, reading ahead and writing
 * behind the block that computes; the queue's processor runs single blocks and stages through runBlock,
 * prepareTask and finishTask. Whoever runs a block, it is read, computed and written the same way and marked done
 * only after its files are written.
 *
 * Failures: a block that throws is retried from a fresh read (up to `attempts` in all), then recorded as failed
 * with its coordinates, never marked done; the others go on and the caller reports the failures. An error no
 * retry fixes (worthRetrying: disk full, read-only file system, permission denied) stops the run at once: every
 * block after it would fail the same way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EmsegError } from '../../errors.js';
import { regionShape, voxelCount } from '../../io/formats/volume.js';
import { worthRetrying } from '../../io/errors.js';
import { shardBlocks, shardRange, type Block, type Shard } from '../blocks.js';
import { DEFAULT_BLOCK_ATTEMPTS, blockFailure, retryNotice, stopRun, type BlockFailure } from '../markers.js';
import { silentProgress, type ProgressFactory } from '../progress.js';
import { downstreamOf, taskNamed, type BlockTask, type TaskJob } from './task.js';

/** Blocks read ahead of the one computing: one hides the read behind the compute, more only holds memory. */
export const DEFAULT_READ_AHEAD = 1;
/** How often a process started with `wait` looks at the markers of upstream tasks other processes compute. */
export const WAIT_POLL_MS = 10_000;

export interface RunOptions {
  /** Only this static part of every task's blocks (`--shard i/n`). */
  shard?: Shard;
  /** Attempts per block before it is recorded as failed (DEFAULT_BLOCK_ATTEMPTS). */
  attempts?: number;
  /** Blocks whose read starts while an earlier block computes (DEFAULT_READ_AHEAD). */
  readAhead?: number;
  /** Wait (polling every pollMs) for upstream tasks other processes compute, instead of returning. */
  wait?: boolean;
  pollMs?: number;
  progress?: ProgressFactory;
  /**
   * Called once, before the first block without a valid done marker is read: false stops the task there (its
   * upstream is not complete) and the outcome says `blocked`.
   */
  gate?: () => Promise<boolean>;
  /** A block that fails every attempt stops the run with its error (outputs built whole, where one hole spoils all). */
  stopOnFailure?: boolean;
}

export interface TaskOutcome {
  /** Blocks computed now, skipped (a valid done marker), and failed every attempt. */
  computed: number;
  skipped: number;
  failed: BlockFailure[];
  /** Write-region voxels computed now. */
  voxels: number;
  /** The gate stopped the task before a block that must be computed (its upstream is not complete). */
  blocked?: boolean;
}

export interface JobOutcome {
  /** What each task run now did, by name (tasks not run now are absent). */
  tasks: Map<string, TaskOutcome>;
  /** Every task is complete and finished (e.g. the pyramid is built). */
  complete: boolean;
  /** The task that could not start: its upstream is not complete (other shards are still at it, or failed). */
  waiting?: string;
  failed: BlockFailure[];
}

/** Milliseconds one block spent reading, computing and writing (its files, then its marker). */
export interface BlockTiming {
  readMs: number;
  computeMs: number;
  writeMs: number;
}

const isComplete = async (task: BlockTask) => (await task.markers.status()).remaining === 0;

/**
 * The tasks that must run: an incomplete task without downstream tasks, and every task upstream of one that must
 * run. A task whose downstream tasks are all complete is not run again, even if its own records were removed
 * (the provisional labels of segmentation are, once the labels are final).
 */
export async function neededTasks(job: TaskJob): Promise<Set<BlockTask>> {
  const needed = new Set<BlockTask>();
  for (const task of [...job.tasks].reverse()) {
    const down = downstreamOf(job, task);
    if (down.length === 0 ? !(await isComplete(task)) : down.some((d) => needed.has(d))) needed.add(task);
  }
  return needed;
}

/** Whether every upstream task of `task` is complete; with `wait`, polls until they are or one of them failed. */
async function upstreamComplete(job: TaskJob, task: BlockTask, options: RunOptions): Promise<boolean> {
  for (const name of task.upstream) {
    const up = taskNamed(job, name);
    let status = await up.markers.status();
    while (options.wait && status.remaining > 0 && status.failed.length === 0) {
      await sleep(options.pollMs ?? WAIT_POLL_MS);
      status = await up.markers.status();
    }
    if (status.remaining > 0) return false;
  }
  return true;
}

/**
 * Runs a job in this process: in order, every task that must run (neededTasks) and every last task, over this
 * process's blocks (its shard). A block without a valid done marker (its content is checked) is computed; before
 * the first one, the task's upstream tasks must be complete (with `wait`, polled until they are), then the task is
 * prepared; while they are not, the run stops there (`waiting`). A task found complete is finished again (finish
 * is idempotent: the pyramid of a complete output is built again, the same bytes).
 */
export async function runJob(job: TaskJob, options: RunOptions = {}): Promise<JobOutcome> {
  const outcome: JobOutcome = { tasks: new Map(), complete: false, failed: [] };
  const needed = await neededTasks(job);
  // Complete when every last task is: their upstream's records may be gone, by design.
  let lastTasksComplete = true;
  for (const task of job.tasks) {
    const last = downstreamOf(job, task).length === 0;
    if (!needed.has(task) && !last) continue;
    const gate = async () => {
      if (!(await upstreamComplete(job, task, options))) return false;
      await task.prepare?.();
      return true;
    };
    const done = await runTask(task, shardBlocks(task.plan, options.shard), { ...options, gate }, job.notice, blockCount(task, options.shard));
    outcome.tasks.set(task.name, done);
    outcome.failed.push(...done.failed);
    if (done.blocked) {
      outcome.waiting = task.name;
      return outcome;
    }
    const complete = await isComplete(task);
    if (complete) await task.finish?.();
    if (last) lastTasksComplete &&= complete;
  }
  outcome.complete = lastTasksComplete;
  return outcome;
}

function blockCount(task: BlockTask, shard?: Shard): number {
  const { first, end } = shard ? shardRange(shard, task.plan.count) : { first: 0, end: task.plan.count };
  return end - first;
}

/** Reads, computes and writes one block, then marks it done: the unit of work every runner shares. */
export async function processBlock(task: BlockTask, b: Block): Promise<BlockTiming> {
  const t0 = performance.now();
  const input = await task.read(b);
  const t1 = performance.now();
  const result = await task.compute(b, input);
  const t2 = performance.now();
  await task.markers.markDone(b, await task.write(b, result));
  return { readMs: t1 - t0, computeMs: t2 - t1, writeMs: performance.now() - t2 };
}

/** The blocks of `blocks` without a valid done marker, counting the others as skipped; `gate` before the first. */
async function* notDone(task: BlockTask, blocks: Iterable<Block>, outcome: TaskOutcome, onSkip: () => void, gate?: () => Promise<boolean>): AsyncGenerator<Block> {
  let opened = false;
  for (const b of blocks) {
    if (await task.markers.isDone(b)) {
      outcome.skipped++;
      onSkip();
      continue;
    }
    if (!opened && gate && !(await gate())) {
      outcome.blocked = true;
      return;
    }
    opened = true;
    yield b;
  }
}

/** A read started ahead: its rejection is observed when the block computes (not an unhandled rejection now). */
function startRead(task: BlockTask, b: Block): { block: Block; input: Promise<unknown> } {
  const input = task.read(b);
  input.catch(() => undefined);
  return { block: b, input };
}

/**
 * Runs `blocks` of one task with reading, compute and writing overlapped: reads of the next `readAhead` blocks are
 * in flight while one computes, and a block's write (then its marker) runs while the next computes: inputs of
 * 1 + readAhead blocks and results of two are alive at once. Blocks are
 * taken lazily from `blocks`, so memory holds the blocks in flight, never the plan.
 */
export async function runTask(task: BlockTask, blocks: Iterable<Block>, options: RunOptions = {}, notice?: (m: string) => void, total?: number): Promise<TaskOutcome> {
  const attempts = options.attempts ?? DEFAULT_BLOCK_ATTEMPTS;
  const readAhead = options.readAhead ?? DEFAULT_READ_AHEAD;
  const outcome: TaskOutcome = { computed: 0, skipped: 0, failed: [], voxels: 0 };
  const bar = (options.progress ?? silentProgress)(task.name, total ?? task.plan.count, 'block {block}');
  const tick = (b?: Block) => bar.update(outcome.computed + outcome.skipped + outcome.failed.length, { block: b ? b.grid.join(',') : '' });
  const settle = settler(task, outcome, { attempts, stopOnFailure: options.stopOnFailure ?? false }, tick, notice);
  const source = notDone(task, blocks, outcome, () => tick(), options.gate)[Symbol.asyncIterator]();
  const ahead: { block: Block; input: Promise<unknown> }[] = [];
  const refill = async (depth: number) => {
    while (ahead.length < depth) {
      const n = await source.next();
      if (n.done) return;
      ahead.push(startRead(task, n.value));
    }
  };
  // The write of block i runs while block i + 1 computes; an error that stops the run is kept here (a rejected
  // promise nobody awaits yet would end the process) and thrown before the next block starts.
  let stop: { error: unknown } | undefined;
  let pending: Promise<void> = Promise.resolve();
  try {
    while (!stop) {
      // The next block's read starts here at the latest: while the block before it is written.
      await refill(1);
      const next = ahead.shift();
      if (!next) break;
      const { block: b, input } = next;
      await refill(readAhead);
      let result: { value: unknown } | undefined;
      let error: unknown;
      try {
        result = { value: await task.compute(b, await input) };
      } catch (err) {
        error = err;
      }
      await pending;
      if (stop) break;
      const stored = result ? task.write(b, result.value).then((files) => task.markers.markDone(b, files)) : Promise.reject(error);
      pending = stored.then(() => settle.done(b), (err: unknown) => settle.retry(b, err)).catch((err: unknown) => { stop = { error: err }; });
    }
    await pending;
  } finally {
    for (const a of ahead) a.input.catch(() => undefined); // reads ahead for blocks that will not run now
    await source.return?.(undefined);
    bar.stop();
  }
  if (stop) throw stop.error;
  return outcome;
}

/** What happens after a block's first try: counted done, or retried from a fresh read, then recorded failed. */
function settler(task: BlockTask, outcome: TaskOutcome, { attempts, stopOnFailure }: { attempts: number; stopOnFailure: boolean },
  tick: (b: Block) => void, notice?: (m: string) => void) {
  const done = (b: Block) => {
    outcome.computed++;
    outcome.voxels += voxelCount(regionShape(b.write));
    tick(b);
  };
  const retry = async (b: Block, error: unknown): Promise<void> => {
    let lastError = error;
    for (let attempt = 1; ; attempt++) {
      if (!worthRetrying(lastError)) throw await stopRun(task.markers, b, lastError, attempt);
      if (attempt >= attempts) {
        if (stopOnFailure) throw lastError;
        await task.markers.markFailed(b, lastError, attempts);
        outcome.failed.push(blockFailure(b, lastError, attempts));
        return tick(b);
      }
      notice?.(retryNotice(b, attempt, attempts, lastError));
      try {
        await processBlock(task, b);
        return done(b);
      } catch (err) {
        lastError = err;
      }
    }
  };
  return { done, retry };
}

/**
 * One block as the queue runs it (attempt `attempt` of `attempts`): a no-op when its marker is valid; on the last
 * attempt a failure is recorded before it is thrown; an error no retry fixes is recorded at once. Returns the
 * timing, or undefined for a no-op.
 */
export async function runBlock(task: BlockTask, b: Block, attempt: number, attempts: number): Promise<BlockTiming | undefined> {
  if (await task.markers.isDone(b)) return undefined;
  try {
    return await processBlock(task, b);
  } catch (err) {
    if (!worthRetrying(err)) throw await stopRun(task.markers, b, err, attempt);
    if (attempt >= attempts) await task.markers.markFailed(b, err, attempt);
    throw err;
  }
}

/** Runs `task.prepare` for the queue, refusing while an upstream task is incomplete. */
export async function prepareTask(job: TaskJob, task: BlockTask): Promise<void> {
  if (!(await upstreamComplete(job, task, {}))) {
    throw new EmsegError('incomplete', job.out, `task ${task.name} waits for ${task.upstream.join(', ')}: not every block has a valid done marker`);
  }
  await task.prepare?.();
}

/** Runs `task.finish` for the queue once every block of the task is done; refuses before. */
export async function finishTask(job: TaskJob, task: BlockTask): Promise<void> {
  if (!(await isComplete(task))) {
    throw new EmsegError('incomplete', job.out, `not every block of ${task.name} has a valid done marker; it is finished once they all do (emseg status --redis)`);
  }
  await task.finish?.();
}
