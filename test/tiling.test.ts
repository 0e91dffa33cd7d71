import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { createBackend } from '../src/backend/index.js';
import { extractMirrored } from '../src/image/mirror.js';
import { readStack } from '../src/io/index.js';
import { toFloat32 } from '../src/image/stack.js';
import { Predictor, type ModelWeights } from '../src/infer/predict.js';
import { MIN_TILE, geometryForSteps, tileGeometry, totalStride } from '../src/infer/tiling.js';
import { Network } from '../src/nn/network.js';
import { resolveSpec, zooNames } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { SAMPLE_IMAGES } from '../src/pipeline/assets.js';

// A tiled prediction must equal the prediction of one tile covering the section, for every zoo model, on a
// non-square section whose sides are not multiples of the networks' stride (16). Random weights suffice: the
// property is about geometry. oneDNN is used when it is built ('auto'), so the zoo's nets run in seconds.
//
// Time budget (2 shared cores): what is tested per model is chosen by its cost per pixel. A 1100-wide strip makes
// the 256/512/1024 tilings differ from one tile; a 100-row section makes MIN_TILE cut bands as well as columns.
// fakhry-c/d cost ~0.5 ms per output pixel (40 s for a 70x1100 strip), so they get a 70x150 section only, which
// MIN_TILE cuts into 2x3 tiles; as patch classifiers scanned densely they have stride 1, so
// there is no pooling grid whose phase a larger tile could change, only the halo, which the small tiles test.
// unet (w64) costs ~5x unet-w16, which runs the same geometry at every size.
const TOLERANCE = 1e-5;
const STRIP: [number, number] = [37, 1100];
const SMALL: [number, number] = [100, 230];
const TINY: [number, number] = [70, 150];
const HEAVY = new Set(['fakhry-c', 'fakhry-d', 'unet']);

const backend: Backend = createBackend({ kind: 'auto', warn: () => undefined });

/** An h x w section built by mirroring the first bundled ISBI section (512x512), as floats in [0,1]. */
async function section(h: number, w: number): Promise<Float32Array> {
  const stack = await readStack(join(SAMPLE_IMAGES, '23.png'));
  return extractMirrored(toFloat32(stack.data), stack.height, stack.width, -37, -101, h, w);
}

function model(name: string, seed: number): ModelWeights {
  const spec = resolveSpec(name);
  return { spec, params: initParams(tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE).plan, seed) };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Asserts that every tile size gives the one-tile map of an h x w section. */
async function assertTileIndependent(predictor: Predictor, [h, w]: [number, number], tiles: number[], tta = false) {
  const image = await section(h, w);
  const whole = predictor.predict(image, h, w, { tile: Math.max(h, w), tta });
  assert.equal(predictor.layout(h, w, Math.max(h, w)).cols, 1);
  for (const tile of tiles) {
    const grid = predictor.layout(h, w, tile);
    assert.ok(grid.bands * grid.cols > 1, `tile ${tile} cuts ${h}x${w} into several tiles`);
    const d = maxDifference(whole, predictor.predict(image, h, w, { tile, tta }));
    assert.ok(d <= TOLERANCE, `tile ${tile} on ${h}x${w}${tta ? ' with TTA' : ''}: max |difference| ${d}`);
  }
}

for (const name of zooNames()) {
  test(`${name}: tiled prediction equals one tile covering the section`, async () => {
    const predictor = new Predictor([model(name, 3)], backend);
    await assertTileIndependent(predictor, name.startsWith('fakhry-c') || name.startsWith('fakhry-d') ? TINY : SMALL, [MIN_TILE]);
    if (!HEAVY.has(name)) await assertTileIndependent(predictor, STRIP, [256, 512, 1024]);
  });
}

test('steps are multiples of the stride, start at MIN_TILE and stop at the padded section', () => {
  for (const name of zooNames()) {
    const spec = resolveSpec(name);
    const d = totalStride(spec);
    for (const tile of [1, 100, 500, 5000]) {
      const g = tileGeometry(spec, tile, 1100, 37);
      assert.equal(g.stepH % d, 0, name);
      assert.equal(g.stepW % d, 0, name);
      assert.ok(g.stepH >= Math.min(MIN_TILE, Math.ceil(1100 / d) * d) && g.stepH <= Math.ceil(1100 / d) * d, `${name} tile ${tile}`);
      assert.ok(g.stepW <= Math.ceil(37 / d) * d, `${name} tile ${tile}: ${g.stepW} columns for a 37-wide section`);
      // One margin for every tile size: every tile starts at the same phase of the pooling grid.
      assert.equal(g.margin, tileGeometry(spec, 512, 512, 512).margin, name);
    }
  }
});

test('test-time augmentation and an ensemble stay tile-independent', async () => {
  // Two strides (16 and 4) and a padded net: flips and quarter turns of each tile must keep one pooling grid.
  const predictor = new Predictor([model('unet-w16', 5), model('reference-net', 6)], backend);
  await assertTileIndependent(predictor, [70, 90], [MIN_TILE], true);
});

test('output pixel i belongs to input pixel i + offset: a changed pixel reaches outputs centred on it', () => {
  // Averaged over every phase of the pooling grid, the outputs a one-pixel change reaches are centred on that pixel;
  // an offset off by one (as when a pooling floors an odd size) moves the centre by one.
  for (const name of ['unet-w16', 'reference-net']) {
    const spec = resolveSpec(name);
    const g = geometryForSteps(spec, 256, 256);
    const net = new Network(g.plan, initParams(g.plan, 1), backend);
    const size = g.inputH;
    const [, oh, ow] = g.plan.output;
    const run = (x: Float32Array) => {
      const t = backend.fromArray(x, [1, 1, size, size]);
      const p = net.predict(t);
      t.dispose();
      const a = p.toArray();
      p.dispose();
      return a;
    };
    const base = Float32Array.from({ length: size * size }, (_, i) => ((i * 7919) % 97) / 97);
    const p0 = run(base);
    let shift = 0;
    const stride = totalStride(spec);
    for (let phase = 0; phase < stride; phase++) {
      const q = Math.floor(size / 2) - stride + phase;
      const x = base.slice();
      x[q * size + q]! += 5;
      const p1 = run(x);
      let [lo, hi] = [Infinity, -Infinity];
      for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
        if (Math.abs(p1[i * ow + j]! - p0[i * ow + j]!) > 1e-7) [lo, hi] = [Math.min(lo, i), Math.max(hi, i)];
      }
      assert.ok(lo > 0 && hi < oh - 1, `${name}: the changed outputs lie inside the tile`);
      shift += (lo + hi) / 2 + g.offset - q;
    }
    assert.equal(shift / stride, 0, `${name}: outputs are centred ${shift / stride} px away from the changed pixel`);
  }
});
