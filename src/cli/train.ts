import type { Command } from 'commander';
import { createBackend } from '../backend/index.js';
import { LABEL_POLARITIES } from '../io/index.js';
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
    .option('--model <name>', 'zoo name or spec file', 'fakhry-b')
    .option('--polarity <p>', `label polarity: ${LABEL_POLARITIES.join(', ')}`, labelPolarity, 'membrane-0-interior-255')
    .option('--intensity <rule>', `${INTENSITY_HELP}; recorded in the model, and applied by predict`, intensityRule, 'auto')
    .option('--to-grey', 'reduce colour images to their luma (ITU-R BT.601; alpha ignored) instead of refusing them')
    .option('--val <sections>', 'held-back validation sections (e.g. 20-24, or none)', sectionList, sectionList('20-24'))
    .option('--tile <px>', 'output tile edge per sample', positiveInt, 64)
    .option('--batch <n>', 'tiles per step', positiveInt, 2)
    .option('--steps <n>', 'training steps', positiveInt, 2000)
    .option('--epoch-steps <n>', 'steps between validations', positiveInt, 250)
    .option('--optimizer <kind>', 'sgd or adam', 'adam')
    .option('--lr <rate>', 'peak learning rate', nonNegativeNumber, 1e-3)
    .option('--momentum <m>', 'SGD momentum', nonNegativeNumber, 0.9)
    .option('--weight-decay <wd>', 'L2 weight decay', nonNegativeNumber, 0)
    .option('--schedule <kind>', 'constant, step or cosine', 'cosine')
    .option('--warmup <steps>', 'linear warm-up steps', positiveInt, 50)
    .option('--balance <how>', 'class balance: weights, subsample or none', 'weights')
    .option('--elastic', 'elastic deformation augmentation')
    .option('--jitter', 'intensity jitter augmentation')
    .option('--select <metric>', 'best checkpoint by v_rand or pixel_error', 'v_rand')
    .option('--close-gaps', 'validate on maps with their gaps closed, as predict --close-gaps makes them')
    .option('--seed <n>', 'random seed (runs are repeatable)', positiveInt, 1)
    .option('--bf16', 'train in bfloat16 (fp32 master weights)')
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', 'auto, onednn or reference', backendKind, 'auto')
    .option('--checkpoint-minutes <m>', 'minutes between checkpoints', nonNegativeNumber, 3)
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
