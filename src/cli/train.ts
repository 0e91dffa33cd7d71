import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createBackend } from '../backend/index.js';
import { loadDataset, LABEL_POLARITIES } from '../io/index.js';
import { loadModel, WEIGHTS_FILE } from '../models/model-dir.js';
import { resolveSpec } from '../models/zoo.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { backendKind, labelPolarity, nonNegativeNumber, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { sectionList } from './sections.js';

/** The training options `emseg train` takes as flags (and `emseg study` files as JSON), before data and model. */
export interface TrainOptions {
  tile: number;
  batch: number;
  steps: number;
  epochSteps: number;
  optimizer: string;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: string;
  warmup: number;
  balance: string;
  elastic?: boolean;
  jitter?: boolean;
  select: string;
  closeGaps?: boolean;
  seed: number;
  checkpointMinutes: number;
}

export const TRAIN_CHOICES = {
  optimizer: ['sgd', 'adam'], schedule: ['constant', 'step', 'cosine'], balance: ['weights', 'subsample', 'none'],
  select: ['v_rand', 'pixel_error'],
} as const;

/** Refuses unknown optimizer / schedule / balance / select values; `flag` names the option in the message. */
export function checkTrainChoices(o: Pick<TrainOptions, keyof typeof TRAIN_CHOICES>, flag: (name: string) => string): void {
  for (const [name, allowed] of Object.entries(TRAIN_CHOICES)) {
    const v = o[name as keyof typeof TRAIN_CHOICES];
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`${flag(name)} must be one of ${allowed.join(', ')} (got "${v}")`);
  }
}

/** The TrainConfig for these options (shared by `emseg train` and `emseg study`). */
export function buildTrainConfig(o: TrainOptions & Pick<TrainConfig, 'model' | 'spec' | 'out' | 'trainSections' | 'validationSections'>): TrainConfig {
  return {
    model: o.model, spec: o.spec, out: o.out, trainSections: o.trainSections, validationSections: o.validationSections,
    tile: o.tile, batch: o.batch, steps: o.steps, stepsPerEpoch: o.epochSteps,
    optimizer: o.optimizer === 'sgd' ? { kind: 'sgd', momentum: o.momentum, weightDecay: o.weightDecay }
      : { kind: 'adam', weightDecay: o.weightDecay },
    schedule: o.schedule === 'cosine' ? { kind: 'cosine', lr: o.lr, totalSteps: o.steps, warmupSteps: o.warmup, minLr: o.lr / 100 }
      : o.schedule === 'step' ? { kind: 'step', lr: o.lr, stepSize: Math.max(1, Math.floor(o.steps / 3)), warmupSteps: o.warmup }
        : { kind: 'constant', lr: o.lr, warmupSteps: o.warmup },
    balance: o.balance as TrainConfig['balance'], elastic: o.elastic ? { alpha: 8, sigma: 10 } : null,
    jitter: o.jitter ? { contrast: 0.2, brightness: 0.1, gamma: 0.2 } : null,
    seed: o.seed, checkpointMinutes: o.checkpointMinutes, select: o.select as TrainConfig['select'],
    ...(o.closeGaps ? { closeGaps: true } : {}),
  };
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model on labelled sections, whole tiles at a time, with validation and checkpoints')
    .requiredOption('--images <path>', 'image stack: folder, glob or TIFF')
    .requiredOption('--labels <path>', 'label stack, same count and size')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--model <name>', 'zoo name or spec file', 'fakhry-b')
    .option('--polarity <p>', `label polarity: ${LABEL_POLARITIES.join(', ')}`, labelPolarity, 'membrane-0-interior-255')
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
      if (!o.resume && !o.overwrite && existsSync(join(o.out, WEIGHTS_FILE))) {
        throw new Error(`${o.out} already holds a model; use --resume to continue it or --overwrite to replace it`);
      }
      checkTrainChoices(o, (name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      const spec = o.init ? loadModel(o.init).spec : resolveSpec(o.model);
      const data = await loadDataset({ images: o.images, labels: o.labels, polarity: o.polarity });
      const depth = data.images.depth;
      const bad = o.val.find((z: number) => z >= depth);
      if (bad !== undefined) throw new Error(`--val: section ${bad} does not exist (the stack has ${depth})`);
      const trainSections = [...Array(depth).keys()].filter((z) => !o.val.includes(z));
      const config = { ...buildTrainConfig({ ...o, model: o.init ? spec.name : o.model, spec, out: o.out, trainSections,
        validationSections: o.val }), ...(o.init ? { initFrom: o.init } : {}) };
      const backend = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads });
      let interrupted = false;
      const onSigint = () => {
        interrupted = true;
        process.stderr.write('\nemseg train: stopping after this step and saving a checkpoint (Ctrl-C again to abort)\n');
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      const bar = progressBar('train', o.steps, 'loss {loss} | {wps} windows/s', o.quiet);
      const outcome = await train(config, { images: data.images, labels: data.labels!, source: { images: o.images, labels: o.labels, polarity: o.polarity } },
        backend, {
          onStep: (r) => bar.update(r.step, { loss: r.loss.toFixed(4), wps: Math.round(r.windowsPerSecond) }),
          onValidation: (r) => process.stderr.write(`\nvalidation @${r.step}: ${Object.entries(r.scores)
            .map(([k, v]) => `${k} ${v?.toFixed(4)}`).join(', ')}${r.best ? ' (best, saved)' : ''}\n`),
          shouldStop: () => interrupted,
        }, o.resume ?? false);
      bar.stop();
      process.removeListener('SIGINT', onSigint);
      process.stdout.write(outcome.stopped
        ? `stopped at step ${outcome.step}; checkpoint saved, continue with --resume\n`
        : `trained ${outcome.step} steps; best model (step ${outcome.best?.step}) in ${o.out}\n`);
    });
}
