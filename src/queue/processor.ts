/**
 * The job processor BullMQ runs in a child process (a sandboxed processor): oneDNN computes here, off the
 * worker's event loop, so the worker keeps renewing the job's lock however long a block takes. It runs any job
 * kind of the registry (kinds.ts) through the engine's runner, the same unit of work as `emseg predict` or
 * `emseg segment --out x.zarr` (engine/run.ts runBlock): a block with a valid done marker is a no-op, a block is
 * marked done only after its chunks are written, and on its last attempt a failing block is recorded as failed
 * (coordinates and error) in the output's markers before the error goes to BullMQ. Start and finish jobs prepare
 * and finish tasks (jobs.ts).
 *
 * Settings come from the worker through the environment of the child (BullMQ forks it): see WORKER_ENV.
 */
import { appendFileSync } from 'node:fs';
import { UnrecoverableError, type SandboxedJob } from 'bullmq';
import { EmsegError, describeError } from '../errors.js';
import { worthRetrying } from '../io/errors.js';
import { finishTask, prepareTask, runBlock } from '../pipeline/engine/run.js';
import { taskNamed, type TaskJob } from '../pipeline/engine/task.js';
import { openBookkeeper, type Bookkeeper } from './bookkeeping.js';
import { BLOCK_JOB, START_JOB, type BlockJobData, type BlockResult, type FinishResult, type PathMap, type StageJobData, WORKER_ENV } from './jobs.js';
import { openQueuedJob } from './kinds.js';

const env = (k: keyof typeof WORKER_ENV) => process.env[WORKER_ENV[k]];
const maps: PathMap[] = JSON.parse(env('pathMap') ?? '[]') as PathMap[];
const threads = env('threads') ? Number(env('threads')) : undefined;

let bookkeeper: Bookkeeper | undefined;

/** Exit status of a child whose worker died: 128 + SIGHUP, as if its terminal (the worker) hung up. */
const ORPHANED_EXIT = 129;

/**
 * A child whose worker died (kill -9, a crash, the OOM killer) exits instead of living on as an orphan that holds
 * a Redis connection, memory and CPU. BullMQ forks this child with an IPC channel, a socket pair: the kernel closes
 * the worker's end when that process dies, however it dies, and Node emits 'disconnect' here: at once if the child
 * is idle, once the block's compute returns if it is computing (oneDNN runs synchronously on this thread). No
 * polling, no pid reuse to fear (a poll of process.ppid could not run during the compute either). What the child was doing can no longer be reported: the
 * job's lock is not renewed, so another worker takes the block again (a block is marked done only after its chunks
 * are written, and chunks are written atomically). Exiting runs the exit hook that removes this process's
 * temporaries. A graceful stop never disconnects first: the worker sends SIGTERM and waits for the child to exit.
 */
function exitWithParent(): void {
  if (!process.send) return; // not a forked child (e.g. loaded in-process): nothing to watch
  if (!process.connected) process.exit(ORPHANED_EXIT);
  process.once('disconnect', () => process.exit(ORPHANED_EXIT));
}
exitWithParent();

/** One open job per child (the job set being worked on); another set's job closes it and opens its own. */
let current: { jobset: string; run: Promise<TaskJob> } | undefined;

async function jobFor(data: StageJobData): Promise<TaskJob> {
  if (current?.jobset !== data.jobset) {
    const old = current;
    const entry = { jobset: data.jobset, run: openQueuedJob(data.kind, data.spec, maps, threads) };
    current = entry;
    entry.run.catch(() => { if (current === entry) current = undefined; }); // a failed open is retried by the next job
    if (old) await (await old.run.catch(() => undefined))?.close();
  }
  const run = await current.run;
  if (run.jobset !== data.jobset) {
    // The models or the input this machine sees are not the ones submitted (another file, another layout), or the
    // output was restarted since.
    throw new EmsegError('resume-mismatch', run.out, `this worker sees job set ${run.jobset} there, but the job belongs to ${data.jobset}: other model files or input than the submitting machine, or the output was restarted`);
  }
  return run;
}

function journal(result: BlockResult): void {
  const path = env('journal');
  // One short line per append (O_APPEND): lines of concurrent children never interleave.
  if (path) appendFileSync(path, `${JSON.stringify(result)}\n`);
}

const retryOptions = (job: SandboxedJob) => ({ attempts: job.opts.attempts, backoff: job.opts.backoff });

async function processBlock(job: SandboxedJob<BlockJobData>): Promise<BlockResult> {
  const start = Date.now();
  const run = await jobFor(job.data);
  const openMs = Date.now() - start; // non-zero for a child's first block of a set: models loaded, output opened
  const task = taskNamed(run, job.data.task);
  const block = task.plan.at(job.data.index);
  const attempt = job.attemptsMade + 1;
  const base = { jobset: job.data.jobset, task: task.name, index: block.index, worker: env('worker') ?? String(process.pid), attempt, openMs };
  const timing = await runBlock(task, block, attempt, job.opts.attempts ?? 1);
  const result: BlockResult = { ...base, computed: timing !== undefined, readMs: 0, computeMs: 0, writeMs: 0, ...timing, start, end: Date.now() };
  if (timing) journal(result);
  // Part of the job: should it fail (Redis gone), the job is not completed and its rerun (a no-op) records it.
  await keeper().blockDone(job.data, retryOptions(job));
  return result;
}

function keeper(): Bookkeeper {
  bookkeeper ??= openBookkeeper(env('redis') ?? '');
  return bookkeeper;
}

/** A task whose upstream is complete: prepared (e.g. stitched), then its blocks queued. */
async function processStart(job: SandboxedJob<StageJobData>): Promise<{ task: string; queued: number }> {
  const run = await jobFor(job.data);
  const task = taskNamed(run, job.data.task);
  await prepareTask(run, task);
  const r = await keeper().queueBlocks(job.data, task, retryOptions(job));
  return { task: task.name, queued: r.added + r.retried + r.queued };
}

/** A task whose blocks are all done: finished (e.g. the pyramid), then the tasks after it started. */
async function processFinish(job: SandboxedJob<StageJobData>): Promise<FinishResult> {
  const run = await jobFor(job.data);
  const task = taskNamed(run, job.data.task);
  await finishTask(run, task);
  return { task: task.name, last: await keeper().taskFinished(job.data, run, task, retryOptions(job)) };
}

/**
 * An error no retry fixes (worthRetrying: disk full, read-only file system, permission denied) fails the job for
 * good: BullMQ recognises an UnrecoverableError by its name, which survives the trip to the worker process, and
 * does not spend the job's remaining attempts and backoff on it. Its code and path travel along.
 */
function finalError(err: unknown): unknown {
  if (worthRetrying(err)) return err;
  const final = new UnrecoverableError(describeError(err));
  return Object.assign(final, { code: (err as { code?: unknown }).code, path: (err as { path?: unknown }).path });
}

export default async function processJob(job: SandboxedJob<BlockJobData | StageJobData>): Promise<BlockResult | FinishResult | { task: string; queued: number }> {
  try {
    if (job.name === BLOCK_JOB) return await processBlock(job as SandboxedJob<BlockJobData>);
    return await (job.name === START_JOB ? processStart(job) : processFinish(job));
  } catch (err) {
    throw finalError(err);
  }
}
