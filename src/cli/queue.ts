/** Flags and progress of the block queue: `emseg submit`, `emseg worker`, `emseg cancel` (status: info.ts). */
import type { Command } from 'commander';
import { EmsegError } from '../errors.js';
import { QUEUE_DEFAULTS as Q } from '../pipeline/defaults.js';
import { isZarrPath, labelsOutput, mapsOutput } from '../io/outputs.js';
import { parsePathMap, type PathMap } from '../queue/jobs.js';
import { cancelJobset } from '../queue/status.js';
import { submitNeurons, submitPredict, submitSegment, type SubmitResult } from '../queue/submit.js';
import { startWorker, type WorkerEvent } from '../queue/worker.js';
import { positiveInt } from './options.js';
import { addPredictOptions } from './predict.js';
import { addNeuronOptions, addSegmentCommandOptions, checkMethodFlags, givenSegmentOptions, neuronJobFrom } from './segment.js';
import { volumeJobFrom, volumeSegmentJobFrom } from './volume.js';

const MS_PER_S = 1000;

export function registerSubmit(program: Command): void {
  const submit = program.command('submit').description('turn a blockwise job into block jobs on a BullMQ/Redis queue (workers: emseg worker)');
  addQueueOptions(addPredictOptions(submit.command('predict')
    .description('queue `emseg predict --out maps.zarr`: one job per block without a done marker; prints the job set id')))
    .action(async (o, command: Command) => {
      refuseForQueue(o, isZarrPath(o.out), 'queued prediction writes an OME-Zarr: the output path must end in .zarr');
      mapsOutput(o.out, o.format, command.getOptionValueSource('format') !== 'default'); // a --format given with it is refused
      report(await submitPredict(volumeJobFrom(o, 'submit', command.getOptionValueSource('tile') !== 'default'), submitOptions(o)));
    });
  addQueueOptions(addNeuronOptions(addSegmentCommandOptions(submit.command('segment')
    .description('queue `emseg segment --out cells.zarr`: pass 1 per block, then the stitching, then the relabelling, each queued when the one before is complete; '
      + 'with --method watershed-agglomerate --block: the 3-D neurons\' fragments, edges and relabelling (the global agglomeration once, between them); prints the job set id'))))
    .action(async (o, command: Command) => {
      refuseForQueue(o, labelsOutput(o.out).blockwise, 'queued segmentation writes an OME-Zarr labels image: cells.zarr or IMAGE.zarr/labels/NAME');
      if (o.wait) throw new EmsegError('invalid-option', '--wait', 'is for static shards; on a queue, each pass starts when the one before is complete');
      checkMethodFlags(o);
      if (o.method !== undefined) {
        if (o.block === undefined) throw new EmsegError('invalid-option', '--method', 'a queued neuron segmentation is blockwise: give --block z,y,x (--method watershed-agglomerate)');
        report(await submitNeurons(neuronJobFrom(o, givenSegmentOptions(o, command), 'submit'), submitOptions(o)));
        return;
      }
      report(await submitSegment(volumeSegmentJobFrom(o, givenSegmentOptions(o, command), 'submit'), submitOptions(o)));
    });
}

/** The queue's own flags of every `emseg submit` command. */
function addQueueOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', Q.redis.help, Q.redis.value)
    .option('--attempts <n>', Q.attempts.help, positiveInt, Q.attempts.value)
    .option('--backoff <ms>', Q.backoffMs.help, positiveInt, Q.backoffMs.value);
}

/** What a queued job cannot take: an output that is not blockwise, a static shard. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
function refuseForQueue(o: any, blockwise: boolean, why: string): void {
  if (!blockwise) throw new EmsegError('invalid-option', '--out', why);
  if (o.shard) throw new EmsegError('invalid-option', '--shard', 'is for static splits without a queue; a queue hands blocks to workers itself');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
const submitOptions = (o: any) => ({ redis: o.redis as string, attempts: o.attempts as number, backoffMs: o.backoff as number });

function report(r: SubmitResult): void {
  const queued = r.started ? `queued the start of ${r.started} (it queues its blocks once prepared)`
    : r.complete ? 'every block was done: finished (pyramid built)'
      : `${r.total} blocks of ${r.task}, ${r.done} already done; queued ${r.added} new, retried ${r.retried} failed, ${r.queued} already queued`;
  process.stderr.write(`${r.out}: ${queued}\n`);
  process.stdout.write(`${r.jobset}\n`);
}

function collectMap(text: string, all: PathMap[] = []): PathMap[] {
  return [...all, parsePathMap(text)];
}

/** A line per event on a log; on a terminal one status line rewritten in place, failures on lines of their own. */
function workerReporter(quiet: boolean, logSeconds: number): { report: (e: WorkerEvent) => void; stop: () => void } {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let computed = 0;
  let noop = 0;
  let failed = 0;
  let computeMs = 0;
  let lastBlock = '';
  const line = () => {
    const s = (Date.now() - started) / MS_PER_S;
    return `worker: ${computed} blocks computed, ${noop} already done, ${failed} failed attempts; ${(computed / Math.max(s, 1)).toFixed(3)} blocks/s, `
      + `mean compute ${computed ? (computeMs / computed / MS_PER_S).toFixed(2) : '-'} s${lastBlock ? `; last ${lastBlock}` : ''}`;
  };
  const timer = quiet ? undefined : setInterval(() => process.stderr.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`), tty ? MS_PER_S : logSeconds * MS_PER_S);
  timer?.unref();
  const say = (text: string) => { if (!quiet || text.startsWith('error')) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${text}\n`); };
  return {
    report(e) {
      if (e.type === 'ready') say(`worker: connected to ${e.url}, ${e.concurrency} block(s) at a time`);
      else if (e.type === 'block') {
        if (e.result.computed) { computed++; computeMs += e.result.computeMs; } else noop++;
        lastBlock = `block ${e.result.index} of ${e.result.jobset}`;
      } else if (e.type === 'failed') {
        failed++;
        say(`worker: ${e.jobset} ${e.where} failed attempt ${e.attempt}/${e.attempts}${e.final ? ' (final: reported as failed)' : ''}: ${e.message}`);
      } else if (e.type === 'finished') say(`worker: ${e.jobset} complete (every task finished, pyramid built)`);
      else say(`error: ${e.message}`);
    },
    stop() {
      if (timer) clearInterval(timer);
      if (!quiet) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line()}\n`);
    },
  };
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('compute block jobs from the queue until stopped (SIGTERM/Ctrl-C: finish the blocks in progress, then exit)')
    .option('--redis <url>', Q.redis.help, Q.redis.value)
    .option('--concurrency <n>', Q.concurrency.help, positiveInt, Q.concurrency.value)
    .option('--threads <n>', 'CPU threads per block', positiveInt)
    .option('--path-map <from=to>', 'the shared storage is mounted at TO here where the submitting machine had FROM (repeatable)', collectMap)
    .option('--journal <file>', 'append one JSON line per block computed (timings: read, compute, write)')
    .option('--name <name>', 'worker name in logs and the journal (default host:pid)')
    .option('--lock-ms <ms>', Q.lockMs.help, positiveInt, Q.lockMs.value)
    .option('--stalled-ms <ms>', Q.stalledMs.help, positiveInt, Q.stalledMs.value)
    .option('--max-stalled <n>', Q.maxStalled.help, positiveInt, Q.maxStalled.value)
    .option('--log-every <s>', Q.logSeconds.help, positiveInt, Q.logSeconds.value)
    .option('--redis-outage <s>', Q.outageSeconds.help, positiveInt, Q.outageSeconds.value)
    .option('--quiet', 'no progress lines (failures and errors are still printed)')
    .action(async (o) => {
      const { report, stop } = workerReporter(o.quiet ?? false, o.logEvery);
      const worker = await startWorker({ redis: o.redis, concurrency: o.concurrency, threads: o.threads, pathMaps: o.pathMap,
        journal: o.journal, name: o.name, lockMs: o.lockMs, stalledMs: o.stalledMs, maxStalled: o.maxStalled, outageSeconds: o.redisOutage }, report);
      const signalled = new Promise<void>((resolve) => {
        const onSignal = () => resolve();
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      });
      try {
        await Promise.race([signalled, worker.lost]); // lost: Redis gone for good, the worker is closed; exits non-zero
        await worker.close();
      } finally {
        stop();
      }
    });
}

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('remove a job set\'s blocks that have not started; blocks being computed finish')
    .argument('<jobset>', 'job set id printed by emseg submit')
    .option('--redis <url>', Q.redis.help, Q.redis.value)
    .action(async (jobset: string, o) => {
      const r = await cancelJobset(o.redis, jobset);
      process.stdout.write(`${jobset}: removed ${r.removed} queued block(s); ${r.active} being computed will finish\n`);
    });
}
