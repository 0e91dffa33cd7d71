/**
 * Blockwise prediction equals whole-section (stack) prediction for every zoo model: blocks smaller than the
 * sections, edge blocks cut by the volume's edge, reads mirrored at the volume border only. Random weights
 * suffice (the property is geometry). Patch classifiers (up to 0.5 ms per output pixel) and the wide U-Net get a
 * smaller volume (still 2 x 2 blocks, edge blocks cut by the volume).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { EmsegError } from '../src/errors.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../src/io/registry.js';
import { readStack } from '../src/io/index.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { zooNames } from '../src/models/zoo.js';
import { runPredict } from '../src/pipeline/predict.js';
import { runVolumePredict, type VolumePredictJob } from '../src/pipeline/volume-predict.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';

const TOLERANCE = 1e-6;
const HEAVY = new Set(['fakhry-a', 'fakhry-b', 'fakhry-c', 'fakhry-d', 'ciresan-n4', 'unet']);
const SHAPE: Vec3 = [3, 300, 260];
const SMALL: Vec3 = [1, 80, 100];

function blockFor(name: string): Vec3 {
  // Stride-16 U-Nets need blocks of 16k; patch classifiers (stride 1, 2, ...) take any aligned size.
  return HEAVY.has(name) ? [1, 64, 64] : [2, 128, 128];
}

async function compare(name: string, seed: number) {
  const dir = tempDir('vpredict');
  const shape = HEAVY.has(name) ? SMALL : SHAPE;
  const data = await sampleVolume(shape);
  const { stack, zarr } = await writeVolume(dir, shape, data, [1, 50, 70]);
  const model = zooModel(dir, name, seed);
  // The same --tile as the block edge: blocks are cut into the tiles a whole section is (edge blocks too, computed
  // at full size), so the same kernels run on the same inputs. Other tile sizes agree to float rounding (~1e-6,
  // test/tiling.test.ts).
  const block = blockFor(name);
  const common = { models: [model], tta: false, bf16: false, tile: block[1], backend: 'auto' as const, membraneProb: true };
  const whole = join(dir, 'whole.tif');
  await runPredict({ ...common, input: stack, out: whole, format: 'tiff', overwrite: false });
  const out = join(dir, 'maps.zarr');
  const r = await runVolumePredict({ ...common, input: join(zarr, '0'), out, dtype: 'float32', block });
  assert.ok(r.complete && r.failed.length === 0, `${name}: ${r.failed.map((f) => f.message).join('; ')}`);
  assert.ok(r.plan.count > 2, `${name}: several blocks`);
  const expected = (await readStack(whole)).data as Float32Array;
  const maps = await openVolume(out);
  assert.deepEqual(maps.shape, shape);
  const got = (await maps.readRegion({ start: [0, 0, 0], end: shape })) as Float32Array;
  await maps.close();
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
  assert.ok(worst <= TOLERANCE, `${name}: blockwise differs from the stack prediction by ${worst}`);
}

zooNames().forEach((name, i) => {
  test(`${name}: blockwise prediction of a volume equals the whole-section prediction`, () => compare(name, 11 + i));
});

async function smallJob(): Promise<{ dir: string; job: VolumePredictJob }> {
  const dir = tempDir('vpredict-opts');
  const shape: Vec3 = [2, 96, 80];
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), [1, 32, 32]);
  const model = zooModel(dir, 'reference-net', 3);
  return { dir, job: { models: [model], input: join(zarr, '0'), out: join(dir, 'maps.zarr'), membraneProb: false, tta: false,
    bf16: false, tile: 512, backend: 'auto', dtype: 'uint8', block: [1, 48, 48] } };
}

test('uint8 maps record their polarity; per-section intensity statistics are refused for volumes', async () => {
  const { job } = await smallJob();
  await assert.rejects(runVolumePredict({ ...job, intensity: 'min-max' }), (e) => e instanceof EmsegError && e.code === 'invalid-option' && e.path === '--intensity');
  const r = await runVolumePredict(job);
  assert.ok(r.complete);
  const maps = await openVolume(job.out);
  assert.equal(maps.dtype, 'uint8');
  assert.equal((maps.attributes.emseg as { polarity: string }).polarity, 'membrane-low');
  await maps.close();
});

test('a block size that is not a multiple of the network stride is refused by flag', async () => {
  const { job } = await smallJob();
  await assert.rejects(runVolumePredict({ ...job, block: [1, 50, 48] }), (e) => e instanceof EmsegError && e.code === 'invalid-option' && e.path === '--block');
});

test('float volumes outside [0, 1] under auto fail their blocks (intensity-range), never clipped; a fixed range reads them', async () => {
  const { dir, job } = await smallJob();
  const shape: Vec3 = [1, 48, 48];
  const raw = join(dir, 'float.zarr');
  const w = await createOmeZarr(raw, { shape, dtype: 'float32', chunks: shape, levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, Float32Array.from({ length: 48 * 48 }, (_, i) => i % 256));
  const bad = await runVolumePredict({ ...job, input: join(raw, '0'), out: join(dir, 'bad.zarr'), attempts: 1 });
  assert.ok(!bad.complete && bad.failed.length === 1 && bad.failed[0]!.code === 'intensity-range');
  const ok = await runVolumePredict({ ...job, input: join(raw, '0'), out: join(dir, 'ok.zarr'), intensity: '0,255' });
  assert.ok(ok.complete && ok.failed.length === 0);
});
