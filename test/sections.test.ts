/**
 * Models that read several consecutive sections (2.5D): the spec's input.sections, the neighbours every path hands
 * them (training tiles, validation, stack and volume prediction, mirrored at the stack's ends), and a 2D model
 * starting a 2.5D one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { isEmsegError, type EmsegErrorCode } from '../src/errors.js';
import { neighbourSections } from '../src/image/mirror.js';
import { Predictor } from '../src/infer/predict.js';
import { MIN_TILE, tileGeometry } from '../src/infer/tiling.js';
import { openVolume } from '../src/io/registry.js';
import { readStack, writeStack } from '../src/io/index.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { loadModel, saveModel } from '../src/models/model-dir.js';
import { resolveSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec, withInputSections } from '../src/nn/spec.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../src/pipeline/assets.js';
import { runPredict } from '../src/pipeline/predict.js';
import { runTrain, type TrainJob } from '../src/pipeline/train.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { elastic } from '../src/train/augment.js';
import { TileSampler } from '../src/train/sampler.js';
import { Rng } from '../src/util/rng.js';
import { sampleVolume, tempDir, writeVolume } from './helpers/volume-predict-fixture.js';
import { refused } from './helpers/errors.js';

const fails = (code: EmsegErrorCode, path?: string) => (e: unknown) =>
  isEmsegError(e, code) && (path === undefined || e.path === path);

test('a spec reads an odd number of sections, one channel each', () => {
  const layers = [{ type: 'conv', out: 2, kernel: 1 }, { type: 'softmax' }];
  assert.equal(parseModelSpec({ name: 'a', layers }).input.sections, 1);
  assert.equal(parseModelSpec({ name: 'a', input: { channels: 3, sections: 3 }, layers }).input.sections, 3);
  assert.throws(() => parseModelSpec({ name: 'a', input: { channels: 2, sections: 2 }, layers }), refused('invalid-spec', '', /field "input\.sections": must be odd/));
  assert.throws(() => parseModelSpec({ name: 'a', input: { channels: 1, sections: 3 }, layers }), refused('invalid-spec', '', /field "input\.channels": must equal input\.sections/));
});

test('neighbours are mirrored at the stack\'s ends like pixels at a section\'s border', () => {
  assert.deepEqual(neighbourSections(0, 5, 1), [1, 0, 1]);
  assert.deepEqual(neighbourSections(2, 5, 1), [1, 2, 3]);
  assert.deepEqual(neighbourSections(4, 5, 2), [2, 3, 4, 3, 2]);
  assert.deepEqual(neighbourSections(0, 1, 1), [0, 0, 0]);
  assert.deepEqual(neighbourSections(3, 5, 0), [3]);
});

test('one elastic field moves every section of a tile alike', () => {
  const n = 12;
  const plane = Float32Array.from({ length: n * n }, (_, i) => (i * 37 % 101) / 101);
  const labels = Int32Array.from({ length: n * n }, (_, i) => i % 2);
  const options = { alpha: 3, sigma: 4 };
  const one = elastic(plane, labels, n, options, new Rng(9));
  const two = elastic(Float32Array.from([...plane, ...plane.map((v) => 1 - v)]), labels, n, options, new Rng(9));
  assert.deepEqual(two.image.subarray(0, n * n), one.image);
  two.image.subarray(n * n).forEach((v, i) => assert.ok(Math.abs(v - (1 - one.image[i]!)) < 1e-6));
  assert.deepEqual(two.labels, one.labels);
});

test('training tiles of a 2.5D model hold the labelled section between its neighbours, in either order', () => {
  // Section z is flat at z / 10 and labelled membrane where z is odd: every channel names its section.
  const [size, depth] = [20, 4];
  const images = { width: size, height: size, depth, data: Float32Array.from({ length: depth * size * size }, (_, i) => Math.floor(i / (size * size)) / 10) };
  const labels = { width: size, height: size, depth, data: Uint8Array.from({ length: depth * size * size }, (_, i) => Math.floor(i / (size * size)) % 2) };
  const sampler = new TileSampler(images, labels, [0, 1, 2, 3], { inputSize: 8, outputSize: 4, offset: 2, balance: 'none', radius: 1 });
  const rng = new Rng(4);
  const orders = new Set<string>();
  for (let k = 0; k < 40; k++) {
    const batch = sampler.next(1, rng);
    const channels = [0, 1, 2].map((c) => Math.round(batch.input[c * 64]! * 10));
    [0, 1, 2].forEach((c) => assert.ok(batch.input.subarray(c * 64, (c + 1) * 64).every((v) => Math.round(v * 10) === channels[c])));
    const z = channels[1]!;
    assert.ok(batch.labels.every((l) => l === z % 2), 'the labels are the middle section\'s');
    const expected = neighbourSections(z, depth, 1);
    const forward = channels.join() === expected.join();
    assert.ok(forward || channels.join() === [...expected].reverse().join(), `section ${z} read with ${channels}`);
    if (expected[0] !== expected[2]) orders.add(forward ? 'up' : 'down');
  }
  assert.deepEqual([...orders].sort(), ['down', 'up'], 'the stack is read in both directions');
});

test('an ensemble of models reading different numbers of sections is refused', () => {
  const spec = resolveSpec('reference-net');
  const plan = (s: typeof spec) => tileGeometry(s, MIN_TILE, MIN_TILE, MIN_TILE).plan;
  const wide = withInputSections(spec, 3);
  const backend = createReferenceBackend('float32');
  assert.throws(() => new Predictor([{ spec, params: initParams(plan(spec), 1) }, { spec: wide, params: initParams(plan(wide), 1) }], backend),
    fails('mismatch'));
  const predictor = new Predictor([{ spec: wide, params: initParams(plan(wide), 1) }], backend);
  assert.throws(() => predictor.predict(new Float32Array(64), 8, 8), fails('mismatch'), 'one section for a model reading three');
});

const trainJob = (out: string, extra: Partial<TrainJob>): TrainJob => ({ images: SAMPLE_IMAGES, labels: SAMPLE_LABELS,
  polarity: 'membrane-0-interior-255', out, model: 'fakhry-a', val: [], resume: false, overwrite: false, tile: 16,
  batch: 1, steps: 1, epochSteps: 1, optimizer: 'adam', lr: 1e-3, momentum: 0.9, weightDecay: 0, schedule: 'constant',
  warmup: 1, balance: 'weights', select: 'v_rand', seed: 1, checkpointMinutes: 3, ...extra });

test('a 2D model starts a 2.5D one that computes its very map; only a 2D model can', async () => {
  const backend = createBackend({ kind: 'auto', precision: 'float32' });
  const tmp = () => join(mkdtempSync(join(tmpdir(), 'emseg-sections-')), 'model');
  const flat = tmp();
  await runTrain(trainJob(flat, { steps: 2 }), backend, {});
  const wide = tmp();
  await runTrain(trainJob(wide, { init: flat, sections: 3, lr: 0 }), backend, {});
  const a = loadModel(flat);
  const b = loadModel(wide);
  assert.equal(b.spec.input.sections, 3);
  const images = await readStack(SAMPLE_IMAGES);
  const n = images.width * images.height;
  const plane = (z: number) => Float32Array.from(images.data.subarray(z * n, (z + 1) * n) as Uint8Array, (v) => v / 255);
  const crop = { h: 40, w: 36 };
  const cut = (p: Float32Array) => Float32Array.from({ length: crop.h * crop.w }, (_, i) => p[Math.floor(i / crop.w) * images.width + (i % crop.w)]!);
  const [s0, s1] = [cut(plane(0)), cut(plane(1))];
  const map2d = new Predictor([{ spec: a.spec, params: a.params }], backend).predict(s0, crop.h, crop.w);
  const map25 = new Predictor([{ spec: b.spec, params: b.params }], backend).predict([s1, s0, s1], crop.h, crop.w);
  let worst = 0;
  map2d.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - map25[i]!)); });
  assert.ok(worst <= 1e-6, `the widened model's map differs from the 2D model's by ${worst}`);

  await assert.rejects(runTrain(trainJob(tmp(), { init: wide, sections: 5 }), backend, {}), fails('checkpoint-mismatch', wide));
  await assert.rejects(runTrain(trainJob(tmp(), { sections: 2 }), backend, {}), fails('invalid-option', '--sections'));
});

test('a 2.5D model predicts a stack with mirrored neighbours, and volumes block by block alike', async () => {
  const dir = tempDir('sections');
  const shape: Vec3 = [4, 96, 80];
  const data = await sampleVolume(shape);
  const { stack, zarr } = await writeVolume(dir, shape, data, [1, 32, 32]);
  const spec = withInputSections(resolveSpec('reference-net'), 3);
  const model = join(dir, 'model');
  saveModel(model, spec, initParams(tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE).plan, 7), {});
  const common = { models: [model], tta: false, bf16: false, tile: 48, backend: 'auto' as const, membraneProb: true };
  const predict = async (input: string, name: string) => {
    const out = join(dir, name);
    await runPredict({ ...common, input, out, format: 'tiff', overwrite: false });
    return (await readStack(out)).data as Float32Array;
  };
  const maps = await predict(stack, 'maps.tif');
  // Section 1 darkened: the maps of 0 (whose mirrored neighbours are both 1), 1 and 2 change; 3's do not.
  const changed = data.slice();
  const n = shape[1] * shape[2];
  for (let i = n; i < 2 * n; i++) changed[i] = changed[i]! >> 1;
  const other = join(dir, 'changed');
  await writeStack(other, { width: shape[2], height: shape[1], depth: shape[0], data: changed });
  const after = await predict(other, 'changed.tif');
  const differs = [0, 1, 2, 3].map((z) => after.subarray(z * n, (z + 1) * n).some((v, i) => v !== maps[z * n + i]));
  assert.deepEqual(differs, [true, true, true, false]);

  for (const block of [[1, 48, 48], [3, 48, 48]] as Vec3[]) {
    const out = join(dir, `maps-${block[0]}.zarr`);
    const r = await runVolumePredict({ ...common, input: join(zarr, '0'), out, dtype: 'float32', block });
    assert.ok(r.complete && r.failed.length === 0, r.failed.map((f) => f.message).join('; '));
    const volume = await openVolume(out);
    const got = (await volume.readRegion({ start: [0, 0, 0], end: shape })) as Float32Array;
    await volume.close();
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - maps[i]!));
    assert.ok(worst <= 1e-6, `blocks of depth ${block[0]}: the volume's maps differ from the stack's by ${worst}`);
  }
});
