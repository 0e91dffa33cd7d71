/**
 * `predict --close-gaps` options: flags the user set, else the model's tuned record (meta.json "close_gaps"), else
 * the defaults; a damaged record is refused naming the file and field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { addSegmentOptions, givenSegmentOptions } from '../src/cli/segment.js';
import { isEmsegError } from '../src/errors.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { loadModel } from '../src/models/model-dir.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS, SHIPPED_MODEL } from '../src/pipeline/assets.js';
import { CLOSE_GAPS_META_KEY, closeGapsOptions, describeCloseGaps } from '../src/pipeline/close-gaps.js';
import { runTrain, type TrainJob } from '../src/pipeline/train.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/segment/index.js';

/** A copy of a model directory (the member folders included) with its meta.json's record replaced. */
function modelWith(record: unknown): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'emseg-cg-')), 'model');
  cpSync(SHIPPED_MODEL, dir, { recursive: true });
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  if (record === undefined) delete meta[CLOSE_GAPS_META_KEY];
  else meta[CLOSE_GAPS_META_KEY] = record;
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  return dir;
}

test('the model\'s record fills what the user did not set; without a record, or for several models, the defaults', () => {
  const tuned = modelWith({ mergeThreshold: 0.7, extraSeedThreshold: 0.7 });
  const choice = closeGapsOptions([tuned], {});
  assert.deepEqual(choice.options, { ...DEFAULT_SEGMENT_OPTIONS, mergeThreshold: 0.7, extraSeedThreshold: 0.7 });
  assert.equal(choice.from, tuned);
  assert.match(describeCloseGaps(choice.options, choice.from!), /merge threshold 0\.7.*tuned for/);
  const given = closeGapsOptions([tuned], { mergeThreshold: 0.5 });
  assert.equal(given.options.mergeThreshold, 0.5, 'a flag wins over the record');
  assert.equal(given.options.extraSeedThreshold, 0.7);
  const overridden = closeGapsOptions([tuned], { mergeThreshold: 0.5, extraSeedThreshold: 0.3 });
  assert.equal(overridden.from, null, 'nothing came from the record');
  assert.deepEqual(closeGapsOptions([modelWith(undefined)], {}), { options: DEFAULT_SEGMENT_OPTIONS, from: null });
  assert.deepEqual(closeGapsOptions([tuned, tuned], {}).options, DEFAULT_SEGMENT_OPTIONS, 'an ad-hoc ensemble has no record');
});

test('a damaged record is refused, naming meta.json and the field', () => {
  for (const record of [{ mergeThreshold: 2 }, { sigma: 'two' }, { mergeThreshhold: 0.7 }, [0.7]]) {
    const dir = modelWith(record);
    assert.throws(() => closeGapsOptions([dir], {}),
      (e) => isEmsegError(e, 'corrupt') && e.path === join(dir, 'meta.json') && e.message.includes(CLOSE_GAPS_META_KEY), JSON.stringify(record));
  }
});

test('only the watershed flags given on the command line count as set', () => {
  const parse = (args: string[]) => {
    const command = addSegmentOptions(new Command('predict').exitOverride());
    command.parse(args, { from: 'user' });
    return givenSegmentOptions(command.opts(), command);
  };
  assert.deepEqual(parse([]), {});
  assert.deepEqual(parse(['--merge-threshold', '0.6', '--sigma', '1']), { mergeThreshold: 0.6, sigma: 1 });
});

test('train --close-gaps --init of a model with a record validates with it, says so, and hands it on', async () => {
  const backend = createReferenceBackend('float32');
  const job = (out: string, extra: Partial<TrainJob>): TrainJob => ({ images: SAMPLE_IMAGES, labels: SAMPLE_LABELS,
    polarity: 'membrane-0-interior-255', out, model: 'fakhry-a', val: [], resume: false, overwrite: false, tile: 16,
    batch: 1, steps: 1, epochSteps: 1, optimizer: 'adam', lr: 1e-3, momentum: 0.9, weightDecay: 0, schedule: 'constant',
    warmup: 1, balance: 'weights', select: 'v_rand', seed: 1, checkpointMinutes: 3, ...extra });
  const tmp = () => join(mkdtempSync(join(tmpdir(), 'emseg-cg-')), 'model');
  const source = tmp();
  await runTrain(job(source, {}), backend, {});
  const record = { sigma: 1, mergeThreshold: 0.4 };
  const meta = JSON.parse(readFileSync(join(source, 'meta.json'), 'utf8'));
  writeFileSync(join(source, 'meta.json'), JSON.stringify({ ...meta, [CLOSE_GAPS_META_KEY]: record }));
  const expected = { ...DEFAULT_SEGMENT_OPTIONS, ...record };

  const notices: string[] = [];
  const tuned = tmp();
  await runTrain(job(tuned, { init: source, closeGaps: true }), backend, { onNotice: (line) => notices.push(line) });
  const tunedMeta = loadModel(tuned).meta as Record<string, unknown> & { training: { closeGaps: unknown } };
  assert.deepEqual(tunedMeta.training.closeGaps, expected, 'validation ran with the record');
  assert.deepEqual(tunedMeta[CLOSE_GAPS_META_KEY], expected, 'the trained model carries what it was chosen with');
  assert.deepEqual(closeGapsOptions([tuned], {}).options, expected);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, new RegExp(`sigma 1,.*merge threshold 0\\.4.*tuned for ${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

  // Without --close-gaps the record is neither used nor handed on.
  const plain = tmp();
  await runTrain(job(plain, { init: source }), backend, { onNotice: (line) => notices.push(line) });
  const plainMeta = loadModel(plain).meta as Record<string, unknown> & { training: { closeGaps?: unknown } };
  assert.equal(plainMeta.training.closeGaps, undefined);
  assert.equal(plainMeta[CLOSE_GAPS_META_KEY], undefined);
  assert.equal(notices.length, 1);
});
