/**
 * What `emseg` says when a command is wrong: the flag the user typed (never an internal field or function), what is
 * wrong and what is allowed, one line plus where the usage is; and no flag is silently ignored. Every case runs
 * the real CLI (`node bin/emseg.js`); where the library is the one to refuse, its EmsegError code is checked too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { isEmsegError } from '../src/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { EmsegIoError } from '../src/io/errors.js';
import { openVolume } from '../src/io/registry.js';
import { nativeInfo } from '../src/backend/onednn/index.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { writeStack } from '../src/io/index.js';
import { saveModel } from '../src/models/model-dir.js';
import { initParams } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { runTrain, type TrainJob } from '../src/pipeline/train.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { REPO_ROOT } from './helpers/data.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [3, 40, 48];
/** A usage error is one line plus the hint; the whole help is some 60. */
const MAX_USAGE_ERROR_LINES = 3;

function emseg(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A stride-1 patch classifier (fast on any backend), an image stack, labels (0 = membrane) and float maps. */
async function fixture() {
  const dir = tempDir('messages');
  const spec = parseModelSpec({ name: 'tiny', window: 7, layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' },
    { type: 'pool', kernel: 2 }, { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }] });
  const model = join(dir, 'model');
  saveModel(model, spec, initParams(planModel(spec, 7, 7), 4), {});
  const [depth, height, width] = SHAPE;
  const n = depth * height * width;
  const images = join(dir, 'images');
  await writeStack(images, { width, height, depth, data: Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256) });
  const labels = join(dir, 'labels');
  await writeStack(labels, { width, height, depth, data: Uint8Array.from({ length: n }, (_, i) => ((i % width) % 10 === 0 ? 0 : 255)) });
  const maps = join(dir, 'maps.tif');
  await writeStack(maps, { width, height, depth, data: Float32Array.from({ length: n }, (_, i) => ((i % width) % 10 === 0 ? 0 : 1)) });
  return { dir, model, images, labels, maps };
}

test('blockwise-only flags with a stack output are refused naming the flag, not ignored', async () => {
  const f = await fixture();
  const predict = ['predict', '--model', f.model, '--input', f.images, '--backend', 'reference', '--quiet'];
  for (const [flag, value] of [['--shard', '0/2'], ['--block', '1,16,16'], ['--restart', undefined]] as const) {
    const r = emseg([...predict, '--out', join(f.dir, `p${flag}.tif`), flag, ...(value ? [value] : [])]);
    assert.equal(r.status, 1, `predict ${flag}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${flag}\\b.*\\.zarr`), flag);
  }
  for (const [flag, value] of [['--shard', '1/2'], ['--halo', '8']] as const) {
    const r = emseg(['segment', '--pred', f.maps, '--out', join(f.dir, `s${flag}.tif`), '--quiet', flag, value]);
    assert.equal(r.status, 1, `segment ${flag}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${flag}\\b.*\\.zarr`), flag);
  }
  // Without them the same commands run.
  assert.equal(emseg([...predict, '--out', join(f.dir, 'p.tif')]).status, 0);
  assert.equal(emseg(['segment', '--pred', f.maps, '--out', join(f.dir, 's.tif'), '--quiet']).status, 0);
});

test('a --block that does not fit the network\'s stride names --block, the stride and sizes that work', async () => {
  const dir = tempDir('messages-block');
  const shape: Vec3 = [1, 64, 64];
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), [1, 32, 32]);
  const model = zooModel(dir, 'reference-net', 3);
  const r = emseg(['predict', '--model', model, '--input', join(zarr, '0'), '--out', join(dir, 'maps.zarr'), '--block', '1,50,48', '--quiet']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /--block\b.*stride \d+.*e\.g\. 1,\d+,48/);
  assert.doesNotMatch(r.stderr, /planBlocks|alignBlock/);
  await assert.rejects(runVolumePredict({ models: [model], input: join(zarr, '0'), out: join(dir, 'api.zarr'), membraneProb: false, tta: false,
    bf16: false, tile: 512, backend: 'auto', dtype: 'uint8', block: [1, 50, 48] }), (e) => isEmsegError(e, 'invalid-option') && e.path === '--block');
});

test('a blockwise run continued with another model setting is refused naming --restart, which then starts it again', async () => {
  const f = await fixture();
  const out = join(f.dir, 'maps.zarr');
  const predict = ['predict', '--model', f.model, '--input', f.images, '--out', out, '--backend', 'reference', '--quiet'];
  assert.equal(emseg(predict).status, 0);
  const r = emseg([...predict, '--tta']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /--restart/);
  await assert.rejects(runVolumePredict({ models: [f.model], input: f.images, out, membraneProb: false, tta: true, bf16: false, tile: 512,
    backend: 'reference', dtype: 'uint8' }), (e) => isEmsegError(e, 'resume-mismatch'));
  assert.equal(emseg([...predict, '--tta', '--restart']).status, 0);
});

test('a missing required option or a bad value prints one line and where the usage is, not the whole help', () => {
  const cases: [string[], RegExp, string][] = [
    [['predict', '--input', 'x', '--out', 'y.tif'], /required option '--model/, 'emseg predict --help'],
    [['segment', '--out', 'y.tif'], /required option '--pred/, 'emseg segment --help'],
    [['submit', 'predict', '--input', 'x'], /required option '--model/, 'emseg submit predict --help'],
    [['predict', '--model', 'm', '--input', 'x', '--out', 'y.tif', '--tile', 'big'], /--tile/, 'emseg predict --help'],
    [['nonsense'], /unknown command 'nonsense'/, 'emseg --help'],
  ];
  for (const [args, error, hint] of cases) {
    const r = emseg(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, error, args.join(' '));
    assert.ok(r.stderr.includes(hint), `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.trim().split('\n').length <= MAX_USAGE_ERROR_LINES && !r.stderr.includes('Usage:'), `${args.join(' ')}: ${r.stderr}`);
  }
});

test('bench --precision both: fp32 and bf16 side by side, bf16 skipped with a note where the CPU has none', () => {
  const bench = ['bench', 'reference-net', '--iters', '1', '--warmup', '1', '--train-size', '16', '--forward-size', '16', '--json'];
  const precisions = (stdout: string) => (JSON.parse(stdout) as { precision: string }[]).map((b) => b.precision);
  const both = emseg([...bench, '--precision', 'both']);
  assert.equal(both.status, 0, both.stderr);
  const hasBf16 = (() => {
    try {
      return nativeInfo().bf16;
    } catch {
      return false; // no addon: bf16 cannot run either
    }
  })();
  assert.deepEqual(precisions(both.stdout), hasBf16 ? ['float32', 'bfloat16'] : ['float32']);
  // A CPU without bf16, as oneDNN sees it when capped at AVX2.
  const noBf16 = { ONEDNN_MAX_CPU_ISA: 'AVX2', DNNL_MAX_CPU_ISA: 'AVX2' };
  const skipped = emseg([...bench, '--precision', 'both'], noBf16);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.deepEqual(precisions(skipped.stdout), ['float32']);
  assert.match(skipped.stderr, /bf16 skipped/);
  // Asked for by name, bf16 that cannot run is an error naming --precision, before any timing.
  for (const precision of ['bf16', 'fp32,bf16']) {
    const refused = emseg([...bench, '--precision', precision], noBf16);
    assert.equal(refused.status, 1, precision);
    assert.match(refused.stderr, /--precision/, precision);
    assert.equal(refused.stdout, '', precision);
  }
  const reference = emseg([...bench, '--precision', 'bf16', '--backend', 'reference']);
  assert.equal(reference.status, 1, 'the reference backend would time fp32 under bf16\'s name');
  assert.match(reference.stderr, /--precision/);
});

test('option errors raised by the library name the flag: train --balance subsample with --malis-weight', async () => {
  const f = await fixture();
  const r = emseg(['train', '--images', f.images, '--labels', f.labels, '--out', join(f.dir, 'run'), '--model', 'reference-net', '--val', '2',
    '--steps', '1', '--balance', 'subsample', '--malis-weight', '1', '--backend', 'reference', '--quiet']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /--balance\b/);
  assert.match(r.stderr, /--malis-weight\b/);
  const job: TrainJob = { images: f.images, labels: f.labels, polarity: 'membrane-0-interior-255', out: join(f.dir, 'api'), model: 'reference-net',
    val: [2], resume: false, overwrite: false, tile: 16, batch: 1, steps: 1, epochSteps: 1, optimizer: 'adam', lr: 1e-3, momentum: 0.9,
    weightDecay: 0, schedule: 'constant', warmup: 1, balance: 'subsample', malisWeight: 1, select: 'v_rand', seed: 1, checkpointMinutes: 3 };
  await assert.rejects(runTrain(job, createReferenceBackend('float32'), {}), (e) => isEmsegError(e, 'invalid-option') && e.path === '--balance');
});

test('convert --kind labels of a float volume names the input and --kind, not the writer\'s dtype field', async () => {
  const f = await fixture();
  const out = join(f.dir, 'labels.zarr');
  const r = emseg(['convert', f.maps, out, '--kind', 'labels', '--quiet']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /maps\.tif.*--kind labels/);
  assert.doesNotMatch(r.stderr, /emseg: dtype:/);
  const src = await openVolume(f.maps);
  try {
    await assert.rejects(convertToOmeZarr(src, out, { kind: 'labels' }), (e) => e instanceof EmsegIoError && e.code === 'invalid-data' && e.path === f.maps);
  } finally {
    await src.close();
  }
  assert.ok(!existsSync(out));
});
