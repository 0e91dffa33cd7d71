/**
 * Training with defaults on a user's own small stack (issue 27): validation chosen from the data when --val is not
 * given (said and recorded), a clear refusal when there are too few sections, fine-tuning defaults for --init from
 * pipeline/defaults.ts, and the early stop on validation.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { FINE_TUNE_DEFAULTS, TRAIN_DEFAULTS } from '../src/pipeline/defaults.js';
import { chooseValidation, runTrain, withFineTuneDefaults, type TrainJob } from '../src/pipeline/train.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { refused } from './helpers/errors.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');
const images = join(SAMPLES, 'images');
const labels = join(SAMPLES, 'labels');
const tmp = () => mkdtempSync(join(tmpdir(), 'emseg-train-defaults-'));

const job = (out: string, extra: Partial<TrainJob>): TrainJob => ({ images, labels, polarity: 'membrane-0-interior-255', out,
  model: 'fakhry-a', resume: false, overwrite: false, tile: 16, batch: 1, steps: 1, epochSteps: 1, optimizer: 'adam', lr: 1e-3,
  momentum: 0.9, weightDecay: 0, schedule: 'constant', warmup: 1, balance: 'weights', select: 'v_rand', seed: 1,
  checkpointMinutes: 60, ...extra });

test('without --val, the validation sections are the last fifth of those not held out, at least one', () => {
  assert.deepEqual(chooseValidation(30), [24, 25, 26, 27, 28, 29]);
  assert.deepEqual(chooseValidation(2), [1]);
  assert.deepEqual(chooseValidation(4), [3]);
  assert.deepEqual(chooseValidation(10, [8, 9]), [6, 7]);
  assert.throws(() => chooseValidation(1), refused('invalid-option', '--val'));
  assert.throws(() => chooseValidation(3, [0, 2]), refused('invalid-option', '--val'));
});

test('--init fine-tuning on the two sample sections without --val trains, validates on the last and says so (was: "section 20 does not exist")', () => {
  const out = join(tmp(), 'model');
  const r = spawnSync(process.execPath, [emseg, 'train', '--images', images, '--labels', labels, '--out', out,
    '--init', join(REPO_ROOT, 'models', 'emseg-isbi', 'unet-w16-s3'), '--steps', '2', '--epoch-steps', '1', '--tile', '64',
    '--batch', '1', '--quiet'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /validation sections: 1, the last 20% of the 2 sections/);
  assert.match(r.stderr, /fine-tuning defaults \(--init\): --lr 0\.0003/);
  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as {
    validation: { sections: number[] }; training: { validationChosen?: string; stepsPerEpoch: number; patience?: number; schedule: { lr: number } };
  };
  assert.deepEqual(meta.validation.sections, [1]);
  assert.match(meta.training.validationChosen ?? '', /--val was not given/);
  assert.equal(meta.training.stepsPerEpoch, 1, 'a flag given keeps its value');
  assert.equal(meta.training.schedule.lr, FINE_TUNE_DEFAULTS.lr.value);
  assert.equal(meta.training.patience, FINE_TUNE_DEFAULTS.patience.value);
});

test('a one-section stack without --val is refused naming --val, before any training', async () => {
  const out = join(tmp(), 'model');
  await assert.rejects(runTrain(job(out, { images: join(images, '23.png'), labels: join(labels, '23.png') }),
    createBackend({ kind: 'auto', precision: 'float32' }), {}), refused('invalid-option', '--val'));
  const r = spawnSync(process.execPath, [emseg, 'train', '--images', join(images, '23.png'), '--labels', join(labels, '23.png'),
    '--out', out, '--model', 'fakhry-a', '--steps', '1', '--quiet'], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--val.*--val none/);
});

test('fine-tuning defaults replace only the options not given, and only with --init', () => {
  const base = { steps: 2000, epochSteps: 250, lr: 1e-3, warmup: 50, patience: 0 };
  assert.deepEqual(withFineTuneDefaults(base, () => false), { job: base, applied: [] });
  const { job: tuned, applied } = withFineTuneDefaults({ ...base, init: 'm' }, (key) => key === 'steps');
  assert.equal(tuned.steps, 2000);
  for (const key of ['epochSteps', 'lr', 'warmup', 'patience'] as const) assert.equal(tuned[key], FINE_TUNE_DEFAULTS[key].value, key);
  assert.deepEqual(applied.map((a) => a.split(' ')[0]), ['--epoch-steps', '--lr', '--warmup', '--patience']);
  assert.equal(TRAIN_DEFAULTS.val.value, undefined, 'no ISBI-shaped default validation sections');
});

test('training stops early once `patience` validations find no better model', async () => {
  const out = join(tmp(), 'model');
  // lr 0: the weights never change, so no later validation beats the first one.
  const outcome = await runTrain(job(out, { val: [1], lr: 0, steps: 50, patience: 2 }), createBackend({ kind: 'auto', precision: 'float32' }), {});
  assert.equal(outcome.earlyStopped, true);
  assert.equal(outcome.step, 3);
  assert.equal(outcome.best?.step, 1);
  const log = readFileSync(join(out, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  assert.equal(log.at(-1)?.type, 'early-stop');
});
