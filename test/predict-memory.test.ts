import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { isEmsegError } from '../src/errors.js';
import { loadDataset, openStack, readStack, writeIsbiSubmission, writeStack, type BandedSlice } from '../src/io/index.js';
import { activationBytes, checkPredictionMemory, peakLiveBytes, predictionWorkingSet } from '../src/infer/memory.js';
import { Predictor } from '../src/infer/predict.js';
import { tileGeometry } from '../src/infer/tiling.js';
import { loadModel } from '../src/models/model-dir.js';
import { resolveSpec } from '../src/models/zoo.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS, SHIPPED_MODEL } from '../src/pipeline/assets.js';
import { runPredict } from '../src/pipeline/predict.js';
import { validate } from '../src/train/trainer.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'emseg-predict-memory-'));
const MEMBER = join(SHIPPED_MODEL, 'unet-w16-s3');

/** Runs `fn` with the available memory capped at `bytes` (EMSEG_MEMORY_LIMIT). */
async function withMemoryLimit<T>(bytes: number, fn: () => Promise<T> | T): Promise<T> {
  const before = process.env.EMSEG_MEMORY_LIMIT;
  process.env.EMSEG_MEMORY_LIMIT = String(bytes);
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.EMSEG_MEMORY_LIMIT;
    else process.env.EMSEG_MEMORY_LIMIT = before;
  }
}

test('validation during training (tile 256) scores the maps predict writes (tile 512)', async () => {
  const backend = createBackend({ kind: 'auto', warn: () => undefined });
  const data = await loadDataset({ images: SAMPLE_IMAGES, labels: SAMPLE_LABELS, polarity: 'membrane-0-interior-255' });
  const seen: Float32Array[] = [];
  class Recording extends Predictor {
    override predict(...args: Parameters<Predictor['predict']>): Float32Array {
      const p = super.predict(...args);
      seen.push(p.slice());
      return p;
    }
  }
  validate(new Recording([loadModel(MEMBER)], backend), { ...data, labels: data.labels!, source: {} }, [0, 1], ['v_rand'], 256);
  const out = join(tmp(), 'maps.tif');
  await runPredict({ models: [MEMBER], input: SAMPLE_IMAGES, out, format: 'tiff', membraneProb: true, tta: false, bf16: false,
    tile: 512, backend: 'auto', overwrite: false });
  const maps = await readStack(out);
  const n = maps.width * maps.height;
  seen.forEach((p, z) => {
    let d = 0;
    for (let i = 0; i < n; i++) d = Math.max(d, Math.abs(p[i]! - (maps.data[z * n + i] as number)));
    assert.ok(d <= 1e-5, `section ${z}: validation and predict maps differ by ${d}`);
  });
});

test('a TIFF page written band by band reads back whole; wrong bands are refused', async () => {
  const [w, h, rows] = [7, 10, 4];
  const values = Float32Array.from({ length: w * h }, (_, i) => (i % 13) / 13);
  const banded = (bands: Float32Array[]): BandedSlice => ({ width: w, height: h, sampleType: 'float32', bandRows: rows, bands });
  const cut = [values.subarray(0, 28), values.subarray(28, 56), values.subarray(56)];
  const dir = tmp();
  await writeStack(join(dir, 'a.tif'), [banded(cut), banded(cut)]);
  const back = await readStack(join(dir, 'a.tif'));
  assert.equal(back.depth, 2);
  assert.deepEqual(back.data.subarray(w * h), values);
  await writeIsbiSubmission(join(dir, 'isbi.tif'), [banded(cut)], { values: 'non-membrane-probability' });
  assert.deepEqual((await readStack(join(dir, 'isbi.tif'))).data, values);
  await writeStack(join(dir, 'png'), [banded(cut)]);
  assert.equal((await readStack(join(dir, 'png'))).data[13], Math.round(values[13]! * 255));
  await assert.rejects(writeStack(join(dir, 'short.tif'), [banded(cut.slice(0, 2))]), (e) => isEmsegError(e, 'mismatch'));
  await assert.rejects(writeStack(join(dir, 'odd.tif'), [banded([values.subarray(0, 30), values.subarray(30)])]),
    (e) => isEmsegError(e, 'mismatch'));
});

test('the working set is estimated from the plan: it grows with the tile, not with the section', () => {
  const spec = resolveSpec('unet-w16');
  const small = predictionWorkingSet([spec], 256, 16384, 16384);
  const large = predictionWorkingSet([spec], 1024, 16384, 16384);
  // Input tiles of 444 and 1212 pixels: the activations grow with the tile's area (7.5x).
  assert.ok(large.tile > 5 * small.tile, `${large.tile} vs ${small.tile}`);
  assert.equal(predictionWorkingSet([spec], 512, 4096, 4096).tile, predictionWorkingSet([spec], 512, 16384, 16384).tile);
  // Band buffers are tile rows x section width: 16384 columns cost 4x what 4096 do.
  assert.equal(predictionWorkingSet([spec], 512, 4096, 16384).bands, 4 * predictionWorkingSet([spec], 512, 4096, 4096).bands);
  const plan = tileGeometry(spec, 512, 512, 512).plan;
  // At the concat of the top level: the cropped skip, the up-convolution's output and the concat itself (2x).
  const top = plan.nodes.filter((n) => n.type === 'concat').at(-1)!;
  assert.ok(peakLiveBytes(plan) >= 4 * 2 * top.out[0] * top.out[1] * top.out[2]);
  assert.ok(peakLiveBytes(plan) < activationBytes(plan) / 4, 'activations are released after their last use');
  // Two members of one architecture share the backend's buffers; a second architecture adds its own.
  assert.equal(predictionWorkingSet([spec, spec], 512, 4096, 4096).tile, predictionWorkingSet([spec], 512, 4096, 4096).tile);
  assert.ok(predictionWorkingSet([spec, resolveSpec('reference-net')], 512, 4096, 4096).tile > small.tile);
});

test('--tile and --close-gaps are refused, naming how much they need, when memory is short', async () => {
  const spec = resolveSpec('unet-w16');
  const need = predictionWorkingSet([spec], 512, 512, 512).total;
  await withMemoryLimit(need / 2, () => {
    assert.throws(() => checkPredictionMemory([spec], 512, 512, 512), (e) => isEmsegError(e, 'insufficient-memory')
      && e.path === '--tile' && e.message.includes('MB'));
  });
  const job = { models: [MEMBER], input: SAMPLE_IMAGES, format: 'tiff' as const, membraneProb: true, tta: false,
    bf16: false, tile: 512, backend: 'auto' as const, overwrite: false };
  const out = join(tmp(), 'refused.tif');
  await withMemoryLimit(need / 2, () => assert.rejects(runPredict({ ...job, out }), (e) => isEmsegError(e, 'insufficient-memory')));
  await withMemoryLimit(need + 4 * 2 ** 20, () => assert.rejects(runPredict({ ...job, out, closeGaps: {} as never }),
    (e) => isEmsegError(e, 'insufficient-memory') && e.path === '--close-gaps'));
});

test('image headers are refused when decoding would not fit in the memory available', async () => {
  await withMemoryLimit(100_000, () => assert.rejects(openStack(join(SAMPLE_IMAGES, '23.png')),
    (e) => isEmsegError(e, 'too-large') && e.message.includes('needs about')));
});
