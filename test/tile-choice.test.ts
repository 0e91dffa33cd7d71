import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { nativeAvailable, nativeStats, trimNativePool } from '../src/backend/onednn/index.js';
import { activationBytes, predictionWorkingSet, tileRunBytes } from '../src/infer/memory.js';
import { Predictor } from '../src/infer/predict.js';
import { AUTO_TILE, chooseTile, sectionFlops } from '../src/infer/tile-choice.js';
import { MIN_TILE, tileGeometry } from '../src/infer/tiling.js';
import { resolveSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';

const UNET = resolveSpec('unet-w16');
const GiB = 2 ** 30;

test('auto tiles: the fewest FLOPs among the tiles whose working set fits the budget', () => {
  // A 2048 section: four 1024-pixel tiles cover it exactly, and recompute less halo than sixteen 512-pixel ones.
  const roomy = chooseTile([UNET], 2048, 2048, 0, 2 * GiB);
  assert.equal(roomy.tile, 1024);
  assert.ok(roomy.flops < sectionFlops([UNET], 512, 2048, 2048), 'larger tiles recompute less halo');
  assert.ok(roomy.bytes <= 2 * GiB);
  assert.equal(roomy.bytes, predictionWorkingSet([UNET], 1024, 2048, 2048).total);
  // A tighter budget gives a smaller tile that fits it; a section smaller than a tile gets one tile.
  const tight = chooseTile([UNET], 2048, 2048, 0, 0.8 * GiB);
  assert.ok(tight.tile < roomy.tile && tight.bytes <= 0.8 * GiB, `${tight.tile}: ${tight.bytes}`);
  assert.equal(chooseTile([UNET], 512, 512, 0, 2 * GiB).tile, 512);
  // Every tile that fits costs at least the chosen one's FLOPs.
  for (let tile = MIN_TILE; tile <= 2048; tile += 112) {
    if (predictionWorkingSet([UNET], tile, 2048, 2048).total <= 0.8 * GiB) assert.ok(sectionFlops([UNET], tile, 2048, 2048) >= tight.flops, `tile ${tile}`);
  }
  // What the caller holds besides counts against the budget; with nothing fitting, the smallest tile.
  assert.ok(chooseTile([UNET], 2048, 2048, 0.5 * GiB, 0.8 * GiB).tile < tight.tile);
  assert.equal(chooseTile([UNET], 2048, 2048, 0, 1).tile, MIN_TILE);
});

test('auto tiles give the maps of any fixed tile size', () => {
  const backend = createBackend({ kind: 'auto', warn: () => undefined });
  const spec = resolveSpec('reference-net');
  const params = initParams(tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE).plan, 4);
  const predictor = new Predictor([{ spec, params }], backend);
  const [h, w] = [150, 230];
  const image = Float32Array.from({ length: h * w }, (_, i) => ((i * 7919) % 101) / 100);
  const auto = predictor.predict(image, h, w, { tile: AUTO_TILE });
  assert.equal(predictor.layout(h, w, AUTO_TILE).cols, 1, 'a small section is one tile');
  const tiled = predictor.predict(image, h, w, { tile: MIN_TILE });
  let d = 0;
  for (let i = 0; i < auto.length; i++) d = Math.max(d, Math.abs(auto[i]! - tiled[i]!));
  assert.ok(d <= 1e-5, `max |difference| ${d}`);
});

test('the oneDNN buffer pool holds what the working set counts, not every activation of a tile', { skip: !nativeAvailable() }, () => {
  const backend = createBackend({ kind: 'onednn', precision: 'float32' });
  const g = tileGeometry(UNET, 256, 600, 600);
  const predictor = new Predictor([{ spec: UNET, params: initParams(g.plan, 2) }], backend);
  const image = Float32Array.from({ length: 600 * 600 }, (_, i) => ((i * 31) % 255) / 255);
  trimNativePool();
  predictor.predict(image, 600, 600, { tile: 256 });
  predictor.predict(image, 600, 600, { tile: 256 });
  const s = nativeStats();
  const held = s.pooledBytes + s.liveBytes;
  // Buffers are reused across layers of different sizes (best fit): far below one buffer per activation.
  assert.ok(held <= tileRunBytes(g.plan), `pool ${held} bytes, estimate ${tileRunBytes(g.plan)}`);
  assert.ok(held < activationBytes(g.plan) / 2, `pool ${held} bytes, activations ${activationBytes(g.plan)}`);
});
