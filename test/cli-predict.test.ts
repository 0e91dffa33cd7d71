import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readStack, writeStack } from '../src/io/index.js';
import { runPredict } from '../src/pipeline/predict.js';
import { saveModel } from '../src/models/model-dir.js';
import { initParams } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { refused } from './helpers/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const spec = parseModelSpec({
  name: 'tiny', window: 7,
  layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
});

async function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-predict-'));
  const model = join(dir, 'model');
  saveModel(model, spec, initParams(planModel(spec, 7, 7), 4), {});
  const images = join(dir, 'images');
  const data = Uint8Array.from({ length: 3 * 20 * 24 }, (_, i) => (i * 37) % 256);
  await writeStack(images, { width: 24, height: 20, depth: 3, data });
  return { dir, model, images };
}

const base = { tta: false, bf16: false, tile: 8, backend: 'reference' as const, overwrite: false, membraneProb: false };

test('predict writes the ISBI format (1 = non-membrane) and agrees with the membrane-probability PNGs', async () => {
  const { dir, model, images } = await fixture();
  const isbi = join(dir, 'maps.tif');
  await runPredict({ ...base, models: [model], input: images, out: isbi, format: 'isbi' });
  const maps = await readStack(isbi);
  assert.deepEqual([maps.width, maps.height, maps.depth, maps.sampleType], [24, 20, 3, 'float32']);
  const prob = join(dir, 'prob.tif');
  await runPredict({ ...base, models: [model, model], input: images, out: prob, format: 'tiff', membraneProb: true });
  const p = (await readStack(prob)).data;
  maps.data.forEach((v, i) => assert.ok(v >= 0 && v <= 1 && Math.abs(v + p[i]! - 1) < 1e-6));
});

test('predict refuses to overwrite an output, and leaves nothing behind on a bad input', async () => {
  const { dir, model, images } = await fixture();
  const out = join(dir, 'maps.tif');
  await runPredict({ ...base, models: [model], input: images, out, format: 'isbi' });
  await assert.rejects(runPredict({ ...base, models: [model], input: images, out, format: 'isbi' }), refused('exists', 'maps.tif'));
  const missing = join(dir, 'nothing-here');
  await assert.rejects(runPredict({ ...base, models: [model], input: missing, out: join(dir, 'x.tif'), format: 'isbi' }),
    refused('not-found', 'nothing-here'));
  assert.ok(!existsSync(join(dir, 'x.tif')));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), []);
});

test('emseg predict on a missing model directory exits 1 naming it', () => {
  assert.throws(() => execFileSync('node', [join(root, 'bin/emseg.js'), 'predict', '--model', '/nonexistent/model',
    '--input', 'x', '--out', 'y.tif'], { stdio: 'pipe' }), (err: { status: number; stderr: Buffer }) =>
    err.status === 1 && /\/nonexistent\/model: not a model directory/.test(err.stderr.toString()));
});

test('--membrane-prob with the ISBI format (P(non-membrane) by definition) is refused, not dropped in silence', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-isbi-prob-'));
  const out = join(dir, 'maps.tif');
  await assert.rejects(runPredict({ models: [join(root, 'models', 'fakhry-isbi')], input: join(root, 'samples', 'isbi2012', 'images', '23.png'), out,
    format: 'isbi', membraneProb: true, tta: false, bf16: false, tile: 256, backend: 'auto', overwrite: false }), refused('invalid-option', '--membrane-prob'));
  assert.ok(!existsSync(out), 'nothing written');
});
