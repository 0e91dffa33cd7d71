import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../src/backend/index.js';
import { OP_PREFIX, profiledBackend } from '../src/backend/profile.js';
import { PREDICT_STEPS, Predictor } from '../src/infer/predict.js';
import { formatBreakdown, predictBreakdown } from '../src/infer/profile.js';
import { MIN_TILE, tileGeometry } from '../src/infer/tiling.js';
import { resolveSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { SAMPLE_IMAGES } from '../src/pipeline/assets.js';
import { Profile } from '../src/util/profile.js';

const backend = createBackend({ kind: 'auto', warn: () => undefined });
const spec = resolveSpec('unet-w16');
const params = initParams(tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE).plan, 3);
const H = 90;
const W = 200;
const image = Float32Array.from({ length: H * W }, (_, i) => ((i * 2654435761) >>> 0) / 2 ** 32);

test('a profiled prediction computes the same map and says where its time went', () => {
  const plain = new Predictor([{ spec, params }], backend).predict(image, H, W, { tile: MIN_TILE, tta: true });
  const profile = new Profile();
  const t0 = performance.now();
  const timed = new Predictor([{ spec, params }], profiledBackend(backend, profile)).predict(image, H, W, { tile: MIN_TILE, tta: true, profile });
  const wall = performance.now() - t0;
  assert.deepEqual(timed, plain);
  // 2 x 4 tiles of 64 px (90 x 200 at stride 16), 8 transforms each.
  const tiles = 2 * 4 * 8;
  assert.equal(profile.entries(PREDICT_STEPS.network)[0]!.calls, tiles);
  assert.equal(profile.entries(PREDICT_STEPS.read)[0]!.calls, tiles);
  assert.equal(profile.entries(`${OP_PREFIX}conv2d`)[0]!.calls, tiles * 19, 'unet-w16 has 19 convolutions');
  // Of its 22 ReLUs, 14 run inside the convolution or up-convolution before them and 4 have no consumer (the
  // up-convolutions read the convolution before them by name): 4 run on their own.
  assert.equal(profile.entries(`${OP_PREFIX}relu`)[0]!.calls, tiles * 4);
  assert.equal(profile.entries(`${OP_PREFIX}deconv2d`)[0]!.calls, tiles * 4);
  assert.ok(profile.total(OP_PREFIX) <= profile.entries(PREDICT_STEPS.network)[0]!.ms + 1e-6, 'ops run inside the network step');
  const rows = predictBreakdown(profile, wall);
  const network = rows.find((r) => r.step.startsWith('network'))!;
  assert.ok(network.parts!.some((p) => p.step === 'conv2d' && p.ms > 0));
  const top = rows.reduce((s, r) => s + r.ms, 0);
  assert.ok(Math.abs(top - wall) < 1e-6 || top >= wall, 'the rows account for the whole wall time');
  assert.match(formatBreakdown(rows, wall), /network forward passes[\s\S]*conv2d[\s\S]*other: decode, write, scheduling/);
});

test('emseg predict --profile prints the breakdown after writing the same maps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-profile-'));
  try {
    const run = (out: string, extra: string[]) => spawnSync(process.execPath, ['bin/emseg.js', 'predict', '--model', 'models/fakhry-isbi',
      '--input', join(SAMPLE_IMAGES, '23.png'), '--out', join(dir, out), '--format', 'tiff', '--quiet', ...extra], { encoding: 'utf8' });
    const r = run('a.tif', ['--profile']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /emseg predict: profile\nwall time [\d.]+ s\n {2}read tile windows/);
    assert.match(r.stderr, / {6}conv2d +[\d.]+ s/);
    const plain = run('b.tif', []);
    assert.equal(plain.status, 0, plain.stderr);
    assert.doesNotMatch(plain.stderr, /profile/);
    assert.deepEqual(readFileSync(join(dir, 'a.tif')), readFileSync(join(dir, 'b.tif')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
