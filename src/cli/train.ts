import type { Command } from 'commander';
import { createBackend } from '../backend/index.js';
import { LABEL_POLARITIES } from '../io/index.js';
import { COMMON_DEFAULTS as C, TRAIN_DEFAULTS as T } from '../pipeline/defaults.js';
import { runTrain } from '../pipeline/train.js';
import { INTENSITY_HELP } from '../image/intensity.js';
import { backendKind, intensityRule, labelPolarity, nonNegativeNumber, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { sectionList } from './sections.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model on labelled sections, whole tiles at a time, with validation and checkpoints')
    .requiredOption('--images <path>', 'image stack: folder, glob or TIFF')
    .requiredOption('--labels <path>', 'label stack, same count and size')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--model <name>', T.model.help, T.model.value)
    .option('--polarity <p>', `${C.polarity.help}: ${LABEL_POLARITIES.join(', ')}`, labelPolarity, C.polarity.value)
    .option('--intensity <rule>', `${INTENSITY_HELP}; recorded in the model, and applied by predict`, intensityRule, T.intensity.value)
    .option('--to-grey', 'reduce colour images to their luma (ITU-R BT.601; alpha ignored) instead of refusing them')
    .option('--val <sections>', T.val.help, sectionList, sectionList(T.val.value))
    .option('--tile <px>', T.tile.help, positiveInt, T.tile.value)
    .option('--batch <n>', T.batch.help, positiveInt, T.batch.value)
    .option('--steps <n>', T.steps.help, positiveInt, T.steps.value)
    .option('--epoch-steps <n>', T.epochSteps.help, positiveInt, T.epochSteps.value)
    .option('--optimizer <kind>', T.optimizer.help, T.optimizer.value)
    .option('--lr <rate>', T.lr.help, nonNegativeNumber, T.lr.value)
    .option('--momentum <m>', T.momentum.help, nonNegativeNumber, T.momentum.value)
    .option('--weight-decay <wd>', T.weightDecay.help, nonNegativeNumber, T.weightDecay.value)
    .option('--schedule <kind>', T.schedule.help, T.schedule.value)
    .option('--warmup <steps>', T.warmup.help, positiveInt, T.warmup.value)
    .option('--balance <how>', T.balance.help, T.balance.value)
    .option('--elastic', 'elastic deformation augmentation')
    .option('--jitter', 'intensity jitter augmentation')
    .option('--select <metric>', T.select.help, T.select.value)
    .option('--close-gaps', 'validate on maps with their gaps closed, as predict --close-gaps makes them')
    .option('--seed <n>', T.seed.help, positiveInt, T.seed.value)
    .option('--bf16', 'train in bfloat16 (fp32 master weights)')
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--checkpoint-minutes <m>', T.checkpointMinutes.help, nonNegativeNumber, T.checkpointMinutes.value)
    .option('--init <dir>', 'start from this trained model\'s weights (fine-tuning; its spec is used)')
    .option('--resume', 'continue from <out>/checkpoint exactly')
    .option('--overwrite', 'replace an existing model in <out>')
    .option('--quiet', 'no progress bar')
    .action(async (o) => {
      const backend = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads });
      let interrupted = false;
      const onSigint = () => {
        interrupted = true;
        process.stderr.write('\nemseg train: stopping after this step and saving a checkpoint (Ctrl-C again to abort)\n');
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      const bar = progressBar('train', o.steps, 'loss {loss} | {wps} windows/s', o.quiet);
      const outcome = await runTrain({ ...o, resume: o.resume ?? false, overwrite: o.overwrite ?? false }, backend, {
        onStep: (r) => bar.update(r.step, { loss: r.loss.toFixed(4), wps: Math.round(r.windowsPerSecond) }),
        onValidation: (r) => process.stderr.write(`\nvalidation @${r.step}: ${Object.entries(r.scores)
          .map(([k, v]) => `${k} ${v?.toFixed(4)}`).join(', ')}${r.best ? ' (best, saved)' : ''}\n`),
        shouldStop: () => interrupted,
      });
      bar.stop();
      process.removeListener('SIGINT', onSigint);
      process.stdout.write(outcome.stopped
        ? `stopped at step ${outcome.step}; checkpoint saved, continue with --resume\n`
        : `trained ${outcome.step} steps; best model (step ${outcome.best?.step}) in ${o.out}\n`);
    });
}
