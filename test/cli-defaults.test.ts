/** One source of option defaults: `emseg train` flags and a study's "training" agree; `emseg --version` is package.json's. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { PREDICT_DEFAULTS, QUEUE_DEFAULTS, TRAIN_DEFAULTS } from '../src/pipeline/defaults.js';
import { checkpointInterval } from '../src/pipeline/train.js';
import { parseStudy } from '../src/study/schema.js';
import { REPO_ROOT } from './helpers/data.js';

/** The default value of each long option of a subcommand, keyed by commander's attribute name (e.g. epochSteps). */
function flagDefaults(name: string): Record<string, unknown> {
  const command = buildProgram().commands.find((c: Command) => c.name() === name)!;
  return Object.fromEntries(command.options.map((o) => [o.attributeName(), o.defaultValue]));
}

test('emseg train flags default to the table, and a study\'s training options to the same values', () => {
  const flags = flagDefaults('train');
  for (const [key, d] of Object.entries(TRAIN_DEFAULTS)) {
    if (key === 'val') assert.equal(flags.val, undefined, 'chosen from the data');
    // --checkpoint-minutes is the older name of --checkpoint-every; the default applies when neither is given.
    else if (key === 'checkpointMinutes') assert.deepEqual(checkpointInterval(undefined, undefined), { checkpointMinutes: d.value });
    else assert.equal(flags[key], d.value, `--${key}`);
  }
  const study = parseStudy({ name: 's', base: 'fakhry-b', variants: [{ name: 'a' }],
    data: { images: 'i', labels: 'l', validation: [0] }, budget: { steps: 10 } });
  const shared = ['tile', 'batch', 'optimizer', 'lr', 'momentum', 'weightDecay', 'schedule', 'warmup', 'balance', 'borderWeight', 'borderSigma', 'malisWeight',
    'backend'];
  for (const key of shared) assert.equal((study.training as Record<string, unknown>)[key], flags[key], `training.${key} vs --${key}`);
  assert.equal(study.training.checkpointMinutes, TRAIN_DEFAULTS.checkpointMinutes.value);
  assert.equal(study.data.polarity, flags.polarity);
});

test('emseg predict and segment flags default to the table', () => {
  const predict = flagDefaults('predict');
  assert.equal(predict.tile, PREDICT_DEFAULTS.tile.value);
  assert.equal(predict.format, PREDICT_DEFAULTS.format.value);
  const segment = flagDefaults('segment');
  for (const key of ['sigma', 'seedThreshold', 'minSeedArea', 'mergeThreshold']) assert.equal(predict[key], segment[key], key);
});

test('bin/emseg.js --version prints the version in package.json', async () => {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const { stdout } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin', 'emseg.js'), '--version']);
  assert.equal(stdout.trim(), version);
});

test('emseg worker and submit predict flags default to the queue table', () => {
  const program = buildProgram();
  const defaults = (c: Command) => Object.fromEntries(c.options.map((o) => [o.attributeName(), o.defaultValue]));
  const worker = defaults(program.commands.find((c) => c.name() === 'worker')!);
  const submit = defaults(program.commands.find((c) => c.name() === 'submit')!.commands.find((c) => c.name() === 'predict')!);
  const pairs: [Record<string, unknown>, string, keyof typeof QUEUE_DEFAULTS][] = [
    [worker, 'redis', 'redis'], [worker, 'concurrency', 'concurrency'], [worker, 'lockMs', 'lockMs'], [worker, 'stalledMs', 'stalledMs'],
    [worker, 'maxStalled', 'maxStalled'], [worker, 'logEvery', 'logSeconds'], [worker, 'redisOutage', 'outageSeconds'],
    [submit, 'redis', 'redis'], [submit, 'attempts', 'attempts'], [submit, 'backoff', 'backoffMs'],
  ];
  for (const [flags, flag, key] of pairs) assert.equal(flags[flag], QUEUE_DEFAULTS[key].value, `--${flag}`);
  assert.equal(submit.tile, PREDICT_DEFAULTS.tile.value, 'submit predict takes predict\'s flags');
});
