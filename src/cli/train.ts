import type { Command } from 'commander';
import { createBackend, type BackendKind } from '../backend/index.js';
import { LABEL_POLARITIES } from '../io/index.js';
import { DEFAULT_BOUNDARY_WIDTH, LABEL_KINDS, type LabelKind } from '../io/training-labels.js';
import { InvalidArgumentError } from 'commander';
import { COMMON_DEFAULTS as C, FINE_TUNE_DEFAULTS as F, TRAIN_DEFAULTS as T } from '../pipeline/defaults.js';
import { checkpointInterval, parseCheckpointEvery, runTrain, withFineTuneDefaults, type CheckpointInterval, type TrainJob } from '../pipeline/train.js';
import { INTENSITY_HELP } from '../image/intensity.js';
import { DIVERGENCE_FACTOR, DIVERGENCE_FLOOR, DIVERGENCE_REFERENCE_STEPS } from '../train/divergence.js';
import { backendKind, givenPolarity, intensityRule, JSON_FLAG, labelPolarity, nonNegativeNumber, positiveInt, positiveNumber, printResult } from './options.js';
import { progressBar } from './progress.js';
import { sectionList } from './sections.js';

export function registerTrain(program: Command): void {
  const command = program
    .command('train')
    .description('train a model on labelled sections, whole tiles at a time, with validation and checkpoints')
    .requiredOption('--images <path>', 'image stack: folder, glob or TIFF')
    .requiredOption('--labels <path>', 'label stack, same count and size')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--model <name>', T.model.help, T.model.value)
    .option('--polarity <p>', `${C.polarity.help}: ${LABEL_POLARITIES.join(', ')}`, labelPolarity, C.polarity.value)
    .option('--label-kind <kind>', `how --labels are read: ${LABEL_KINDS.join(' or ')} (one id per cell; boundaries where ids change). `
      + 'Default: masks for PNG/TIFF stacks, instance for 64-bit or signed ids; other HDF5 / Zarr labels must say', labelKind)
    .option('--ignore-label <n>', 'label value whose pixels give no loss (unlabelled, ignored); sections with no other value are left out', ignoreLabel)
    .option('--boundary-width <px>', `instance labels: boundary pixels on each side of an id change (default ${DEFAULT_BOUNDARY_WIDTH})`, positiveInt)
    .option('--intensity <rule>', `${INTENSITY_HELP}; recorded in the model, and applied by predict`, intensityRule, T.intensity.value)
    .option('--to-grey', 'reduce colour images to their luma (ITU-R BT.601; alpha ignored) instead of refusing them')
    .option('--val <sections>', T.val.help, sectionList)
    .option('--hold-out <sections>', 'sections used neither for training nor for validation (kept for a final test)', sectionList);
  addOptimisationOptions(command)
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--checkpoint-every <n|Nm>', `checkpoint every n steps (500) or N minutes (10m) (default: ${T.checkpointMinutes.value}m)`,
      (v: string) => parseCheckpointEvery(v))
    .option('--checkpoint-minutes <m>', 'older name: same as --checkpoint-every <m>m', nonNegativeNumber)
    .option('--init <dir>', 'start from this trained model\'s weights (fine-tuning; its spec is used); options not given then take '
      + 'the fine-tuning defaults (see below)')
    .option('--sections <n>', 'consecutive sections the model reads, centred on the labelled one (odd; above 1: 2.5D; '
      + 'default: the model\'s). With --init of a 2D model, its weights start the middle section', positiveInt)
    .option('--resume', 'continue from <out>/checkpoint exactly')
    .option('--overwrite', 'replace an existing model in <out>')
    .option('--quiet', 'no progress bar')
    .option(...JSON_FLAG)
    .addHelpText('after', `
SIGINT (Ctrl-C) or SIGTERM stops after the current step, saves a checkpoint and exits with 130 or 143 (continue
with --resume); a second signal ends the process at once. Training stops with an error (exit 1) when it diverges:
a NaN/Inf loss, or a loss above ${DIVERGENCE_FACTOR}x the median of the first ${DIVERGENCE_REFERENCE_STEPS} steps (and above ${DIVERGENCE_FLOOR}).

Fine-tuning (--init): ${fineTuneHelp()}; early stop after ${F.patience.value} validations without a better score.
Give any of these flags to choose otherwise.`)
    .action((o: TrainFlags, cmd: Command) => {
      const { job, applied } = withFineTuneDefaults({ ...o, polarity: givenPolarity(o, cmd) }, (key) => cmd.getOptionValueSource(key) !== 'default');
      if (applied.length) process.stderr.write(`emseg train: fine-tuning defaults (--init): ${applied.join(', ')}\n`);
      return trainAction(job);
    });
}

/** An option's help naming its fine-tuning default (commander adds the plain default after it). */
const withInit = (help: string, value: number) => `${help}; with --init: ${value}`;

function fineTuneHelp(): string {
  return [['steps', F.steps], ['epoch-steps', F.epochSteps], ['lr', F.lr], ['warmup', F.warmup]]
    .map(([flag, d]) => `--${flag} ${(d as { value: number }).value}`).join(', ');
}

function nonNegativeInt(value: string): number {
  return value === '0' ? 0 : positiveInt(value);
}

export function labelKind(v: string): LabelKind {
  if (!(LABEL_KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${LABEL_KINDS.join(', ')}`);
  return v as LabelKind;
}

/** A label value: a whole number from 0 to 2^64 - 1 (uint64 ids stay exact). */
export function ignoreLabel(v: string): bigint {
  const MAX_UINT64 = (1n << 64n) - 1n;
  if (!/^\d+$/.test(v.trim()) || BigInt(v.trim()) > MAX_UINT64) throw new InvalidArgumentError('expected a whole number from 0 to 18446744073709551615');
  return BigInt(v.trim());
}

/** Tile, batch, optimiser, schedule, loss weighting, augmentation, selection and seed: the run's learning setup. */
function addOptimisationOptions(command: Command): Command {
  return command
    .option('--tile <px>', T.tile.help, positiveInt, T.tile.value)
    .option('--batch <n>', T.batch.help, positiveInt, T.batch.value)
    .option('--steps <n>', withInit(T.steps.help, F.steps.value), positiveInt, T.steps.value)
    .option('--epoch-steps <n>', withInit(T.epochSteps.help, F.epochSteps.value), positiveInt, T.epochSteps.value)
    .option('--optimizer <kind>', T.optimizer.help, T.optimizer.value)
    .option('--lr <rate>', withInit(T.lr.help, F.lr.value), nonNegativeNumber, T.lr.value)
    .option('--momentum <m>', T.momentum.help, nonNegativeNumber, T.momentum.value)
    .option('--weight-decay <wd>', T.weightDecay.help, nonNegativeNumber, T.weightDecay.value)
    .option('--schedule <kind>', T.schedule.help, T.schedule.value)
    .option('--warmup <steps>', withInit(T.warmup.help, F.warmup.value), positiveInt, T.warmup.value)
    .option('--patience <n>', withInit(T.patience.help, F.patience.value), nonNegativeInt, T.patience.value)
    .option('--balance <how>', T.balance.help, T.balance.value)
    .option('--border-weight <w0>', T.borderWeight.help, nonNegativeNumber, T.borderWeight.value)
    .option('--border-sigma <px>', T.borderSigma.help, positiveNumber, T.borderSigma.value)
    .option('--malis-weight <w>', T.malisWeight.help, nonNegativeNumber, T.malisWeight.value)
    .option('--elastic', 'elastic deformation augmentation')
    .option('--jitter', 'intensity jitter augmentation')
    .option('--select <metric>', T.select.help, T.select.value)
    .option('--close-gaps', 'validate on maps with their gaps closed, as predict --close-gaps makes them (with the --init model\'s tuned options when it carries them)')
    .option('--seed <n>', T.seed.help, positiveInt, T.seed.value)
    .option('--bf16', 'train in bfloat16 (fp32 master weights)');
}

/** The parsed flags of `emseg train` (commander's names): the job's fields plus how and where it runs. */
type TrainFlags = Omit<TrainJob, 'resume' | 'overwrite' | 'checkpointMinutes'> & {
  resume?: boolean; overwrite?: boolean; checkpointMinutes?: number; checkpointEvery?: CheckpointInterval;
  backend: BackendKind; bf16?: boolean; threads?: number; quiet?: boolean; json?: boolean;
};

async function trainAction(o: TrainFlags): Promise<void> {
  const backend = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads });
  const interval = checkpointInterval(o.checkpointEvery, o.checkpointMinutes);
  const stop = trapStopSignals();
  const bar = progressBar('train', o.steps, 'loss {loss} | {wps} windows/s', o.quiet);
  let outcome: Awaited<ReturnType<typeof runTrain>>;
  try {
    outcome = await runTrain({ ...o, ...interval, resume: o.resume ?? false, overwrite: o.overwrite ?? false }, backend, {
      onStep: (r) => bar.update(r.step, { loss: r.loss.toFixed(4), wps: Math.round(r.windowsPerSecond) }),
      onValidation: (r) => process.stderr.write(`\nvalidation @${r.step}: ${Object.entries(r.scores)
        .map(([k, v]) => `${k} ${v?.toFixed(4)}`).join(', ')}${r.best ? ' (best so far)' : ''}\n`),
      onNotice: (line) => process.stderr.write(`${line}\n`),
      shouldStop: () => stop.signal !== null,
    });
  } finally {
    bar.stop();
    stop.dispose();
  }
  const result = { out: o.out, steps: outcome.step, best: outcome.best, earlyStopped: outcome.earlyStopped ?? false };
  if (outcome.stopped && stop.signal) {
    printResult(o.json, 'train', `stopped by ${stop.signal} at step ${outcome.step}; checkpoint saved, continue with --resume\n`,
      { ...result, stopped: stop.signal });
    process.exitCode = STOP_EXIT_CODES[stop.signal];
    return;
  }
  const early = outcome.earlyStopped ? ` (stopped early: no better validation score in the last ${o.patience} validations)` : '';
  printResult(o.json, 'train', `trained ${outcome.step} steps${early}; best model (step ${outcome.best?.step}) in ${o.out}\n`, result);
}

/** Exit statuses of a run stopped by a signal: 128 + the signal's number, as shells report a killed process. */
const STOP_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof STOP_EXIT_CODES;

/**
 * The first SIGINT/SIGTERM asks training to stop after the current step (it then saves a checkpoint). Our handlers
 * are removed right away, so a second signal gets the process-wide disposition: by default the process ends at
 * once, even in the middle of a native step (checkpoints are written atomically, so the last one stays whole).
 */
export function trapStopSignals(): { readonly signal: StopSignal | null; dispose: () => void } {
  let received: StopSignal | null = null;
  const handlers = new Map<StopSignal, () => void>();
  const dispose = () => {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
    handlers.clear();
  };
  for (const signal of Object.keys(STOP_EXIT_CODES) as StopSignal[]) {
    const handler = () => {
      received = signal;
      process.stderr.write(`\nemseg train: ${signal}: stopping after this step and saving a checkpoint (send it again to abort at once)\n`);
      dispose();
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  return { get signal() { return received; }, dispose };
}
