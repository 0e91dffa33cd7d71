/** `emseg study --check`: the data (stacks, sizes, sections) and every variant's tiles, with errors naming the field. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { writeStack } from '../src/io/index.js';
import { checkStudyData } from '../src/study/check.js';
import { parseStudy, type StudyInput } from '../src/study/schema.js';
import { runStudy } from '../src/study/study.js';
import { REPO_ROOT } from './helpers/data.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-study-check-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

// A tiny patch classifier (window 5); any tile plans.
const tinySpec = {
  name: 'tiny', window: 5,
  layers: [{ type: 'conv', name: 'c1', out: 2, kernel: 3 }, { type: 'relu' }, { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
};

/** A stack of `depth` sections of `size` x `size` (images grey, labels 0/255). */
async function writeData(name: string, depth: number, size = 12, labelDepth = depth): Promise<{ images: string; labels: string }> {
  const images = join(TMP, name, 'images');
  const labels = join(TMP, name, 'labels');
  await writeStack(images, { width: size, height: size, depth, data: new Uint8Array(size * size * depth).fill(100) });
  const label = new Uint8Array(size * size * labelDepth).map((_, i) => (i % 5 === 0 ? 0 : 255));
  await writeStack(labels, { width: size, height: size, depth: labelDepth, data: label });
  return { images, labels };
}

function study(data: { images: string; labels: string }, more: Partial<StudyInput> = {}, validation: StudyInput['data']['validation'] = [3]): StudyInput {
  return {
    name: 'check', base: tinySpec, variants: [{ name: 'a' }], data: { ...data, validation }, budget: { steps: 2 }, seeds: [1],
    training: { tile: 6, batch: 1, warmup: 1, backend: 'reference' }, ...more,
  };
}

test('valid data passes and gives the stack shape', async () => {
  const data = await writeData('good', 4);
  const checked = await checkStudyData(parseStudy(study(data)));
  assert.deepEqual(checked, { problems: [], shape: { width: 12, height: 12, depth: 4 } });
  const outcome = await runStudy(parseStudy(study(data)), { out: join(TMP, 'out-good'), checkOnly: true });
  assert.deepEqual(outcome.problems, []);
  assert.equal(outcome.plans[0]!.error, undefined);
});

test('missing paths, mismatched stacks and sections outside the stack are problems naming the field', async () => {
  const data = await writeData('good2', 4);
  const missing = join(TMP, 'nowhere', 'images');
  const gone = await checkStudyData(parseStudy(study({ ...data, images: missing })));
  assert.equal(gone.problems.length, 1);
  assert.ok(gone.problems[0]!.startsWith('field "data.images"') && gone.problems[0]!.includes(missing), gone.problems[0]);
  assert.equal(gone.shape, undefined);

  const short = await writeData('short', 4, 12, 3);
  const mismatch = await checkStudyData(parseStudy(study(short)));
  assert.deepEqual(mismatch.problems.map((p) => p.slice(0, p.indexOf(':'))), ['field "data.labels"']);

  const small = await writeData('small', 4, 10);
  const sizes = await checkStudyData(parseStudy(study({ images: data.images, labels: small.labels })));
  assert.deepEqual(sizes.problems.map((p) => p.slice(0, p.indexOf(':'))), ['field "data.labels"']);

  const range = await checkStudyData(parseStudy(study(data, { data: { ...data, validation: '3-5', train: [0, 7] } })));
  assert.deepEqual(range.problems.map((p) => p.slice(0, p.indexOf(':'))), ['field "data.validation"', 'field "data.train"']);
  assert.ok(range.problems[0]!.includes('sections 4, 5 do not exist') && range.problems[1]!.includes('section 7 does not exist'), range.problems.join('\n'));

  const all = await checkStudyData(parseStudy(study(data, {}, '0-3')));
  assert.deepEqual(all.problems.map((p) => p.slice(0, p.indexOf(':'))), ['field "data.validation"']);
});

test('a study with data problems trains nothing', async () => {
  const data = await writeData('train-none', 4);
  await assert.rejects(runStudy(parseStudy(study(data, {}, [9])), { out: join(TMP, 'out-none'), fork: false }),
    (e: unknown) => (e as { code?: string }).code === 'invalid-study' && (e as Error).message.includes('field "data.validation"'));
});

test('a tile the planner refuses is an invalid variant naming "training.tile"', async () => {
  const data = await writeData('tiles', 4);
  // A skip crop from a 3x3 branch to a 3x3 + 2x2 branch takes off an odd number of pixels: it can never be centred.
  const odd = { name: 'odd', layers: [{ type: 'conv', name: 'a', out: 2, kernel: 3 }, { type: 'conv', name: 'b', out: 2, kernel: 2 },
    { type: 'crop', name: 'c', to: 'b', inputs: ['a'] }, { type: 'softmax' }] };
  const outcome = await runStudy(parseStudy(study(data, { variants: [{ name: 'a' }, { name: 'odd', model: odd }] })),
    { out: join(TMP, 'out-tiles'), checkOnly: true });
  assert.equal(outcome.plans[0]!.error, undefined);
  assert.ok(outcome.plans[1]!.error?.startsWith('field "training.tile" (6)'), outcome.plans[1]!.error);
});

test('bin/emseg.js study --check exits 1 and names the field; 0 when all is well', async () => {
  const run = promisify(execFile);
  const bin = join(REPO_ROOT, 'bin', 'emseg.js');
  const data = await writeData('cli', 4);
  const good = join(TMP, 'good.json');
  writeFileSync(good, JSON.stringify(study(data)));
  await run(process.execPath, [bin, 'study', '--check', good]);
  const bad = join(TMP, 'bad.json');
  writeFileSync(bad, JSON.stringify(study(data, {}, [2, 30])));
  await assert.rejects(run(process.execPath, [bin, 'study', '--check', bad]), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 1);
    assert.ok(err.stderr?.includes('field "data.validation": section 30 does not exist'), err.stderr);
    return true;
  });
});
