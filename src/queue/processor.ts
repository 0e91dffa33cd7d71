/**
 * The block processor BullMQ runs in a child process (a sandboxed processor): oneDNN computes here, off the
 * worker's event loop, so the worker keeps renewing the job's lock however long a block takes. It is the same
 * unit of work as `emseg predict --out x.zarr` (openVolumePredict + predictBlock): a block with a valid done
 * marker is a no-op, a block is marked done only after its chunks are written, and on its last attempt a failing
 * block is recorded as failed (coordinates and error) in the output's markers before the error goes to BullMQ.
 *
 * Settings come from the worker through the environment of the child (BullMQ forks it): see WORKER_ENV.
 */
import { appendFileSync } from 'node:fs';
import { UnrecoverableError, type SandboxedJob } from 'bullmq';
import { EmsegError, describeError } from '../errors.js';
import { worthRetrying } from '../io/errors.js';
import { stopRun } from '../pipeline/markers.js';
import { finishVolumePredict, openVolumePredict, predictBlock, type VolumePredictRun } from '../pipeline/volume-predict.js';
import { openBookkeeper, type Bookkeeper } from './bookkeeping.js';
import { BLOCK_JOB, jobsetOf, mapSpec, type BlockJobData, type BlockResult, type FinishJobData, type PathMap, WORKER_ENV } from './jobs.js';

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

/** One open run per child (the job set being worked on); another set's job closes it and opens its own. */
let current: { jobset: string; run: Promise<VolumePredictRun> } | undefined;

async function runFor(data: FinishJobData): Promise<VolumePredictRun> {
  if (current?.jobset !== data.jobset) {
    const old = current;
    const entry = { jobset: data.jobset, run: openVolumePredict({ ...mapSpec(data.spec, maps), threads }) };
    current = entry;
    entry.run.catch(() => { if (current === entry) current = undefined; }); // a failed open is retried by the next job
    if (old) await (await old.run.catch(() => undefined))?.close();
  }
  const run = await current.run;
  if (jobsetOf(run.markers) !== data.jobset) {
    // The models or the input this machine sees are not the ones submitted (another file, another layout), or the
    // output was restarted since.
    throw new EmsegError('resume-mismatch', run.job.out, `this worker sees job set ${jobsetOf(run.markers)} there, but the job belongs to ${data.jobset}: other model files or input than the submitting machine, or the output was restarted`);
  }
  return run;
}

function journal(result: BlockResult): void {
  const path = env('journal');
  // One short line per append (O_APPEND): lines of concurrent children never interleave.
  if (path) appendFileSync(path, `${JSON.stringify(result)}\n`);
}

async function processBlock(job: SandboxedJob<BlockJobData>): Promise<BlockResult> {
  const start = Date.now();
  const run = await runFor(job.data);
  const openMs = Date.now() - start; // non-zero for a child's first block of a set: models loaded, output opened
  const block = run.plan.blocks[job.data.index];
  if (!block) throw new EmsegError('mismatch', run.job.out, `block ${job.data.index} is not in the plan of ${run.plan.blocks.length} blocks`);
  const attempt = job.attemptsMade + 1;
  const base = { jobset: job.data.jobset, index: block.index, worker: env('worker') ?? String(process.pid), attempt, openMs };
  let result: BlockResult;
  if (await run.markers.isDone(block)) {
    result = { ...base, computed: false, readMs: 0, computeMs: 0, writeMs: 0, start, end: Date.now() };
  } else {
    try {
      const timing = await predictBlock(run, block);
      result = { ...base, computed: true, ...timing, start, end: Date.now() };
      journal(result);
    } catch (err) {
      if (!worthRetrying(err)) throw await stopRun(run.markers, block, err, attempt); // recorded now: it is final
      if (attempt >= (job.opts.attempts ?? 1)) await run.markers.markFailed(block, err, attempt);
      throw err;
    }
  }
  // Part of the job: should it fail (Redis gone), the job is not completed and its rerun (a no-op) records it.
  bookkeeper ??= openBookkeeper(env('redis') ?? '');
  await bookkeeper.blockDone(job.data, job.opts);
  return result;
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

export default async function processJob(job: SandboxedJob<BlockJobData | FinishJobData>): Promise<BlockResult | { complete: boolean }> {
  try {
    return await (job.name === BLOCK_JOB ? processBlock(job as SandboxedJob<BlockJobData>) : processFinish(job));
  } catch (err) {
    throw finalError(err);
  }
}

async function processFinish(job: SandboxedJob<FinishJobData>): Promise<{ complete: boolean }> {
  const run = await runFor(job.data);
  if (!(await finishVolumePredict(run))) {
    throw new EmsegError('incomplete', run.job.out, 'not every block has a valid done marker; the pyramid is built once they all do (emseg status --redis)');
  }
  return { complete: true };
}
