/**
 * `emseg predict` with a 3-d network into an OME-Zarr (pipeline/volume-predict3d.ts): the multi-channel map equals
 * predictVolume over the whole volume byte for byte whatever the block, carries a channel axis "c" and each
 * channel's meaning as NGFF 0.4 and map-meaning.ts say, shards in two processes write what one process writes, a
 * killed run resumes to the same bytes, bad requests are refused with codes, and `emseg segment --method` reads it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBackend } from '../src/backend/index.js';
import { targetsRecord } from '../src/image/affinities.js';
import { parseMapRecord } from '../src/image/map-meaning.js';
import { BASE_PROCESS_BYTES } from '../src/infer/memory.js';
import { VolumePredictor, predictVolume, volumeGeometry, volumeOf, type Vec3 } from '../src/infer/volume.js';
import { openVolume } from '../src/io/registry.js';
import { loadModels, saveModel } from '../src/models/model-dir.js';
import { unet3dSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec, type ModelSpecInput } from '../src/nn/spec.js';
import { runVolumePredict, type VolumePredictJob } from '../src/pipeline/volume-predict.js';
import { Rng } from '../src/util/rng.js';
import { queueStatus } from '../src/queue/status.js';
import { REPO_ROOT } from './helpers/data.js';
import { startRedis } from './helpers/redis-server.js';
import { refused } from './helpers/errors.js';
import { tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { outputFiles, writeHdf5 } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [9, 20, 17];
/** Tiles of 4 x 8 x 8 outputs: blocks are multiples of it. */
const TILE: Vec3 = [4, 8, 8];
const POLL_MS = 10;
const KILL_AFTER = 4;
const QUEUE_POLL_MS = 100;
const QUEUE_WAIT_MS = 120_000;

/** A 3-d U-Net (small, valid convolutions) with random weights, saved as a model folder. */
function model3d(dir: string, name: string, seed: number, options: Parameters<typeof unet3dSpec>[0] = {}, edit?: (s: ModelSpecInput) => ModelSpecInput): string {
  const input = unet3dSpec({ width: 2, levels: 1, ...options });
  const spec = parseModelSpec(edit ? edit(input) : input);
  const path = join(dir, name);
  saveModel(path, spec, initParams(volumeGeometry(spec).plan, seed), {});
  return path;
}

function volumeData(shape: Vec3, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: shape[0] * shape[1] * shape[2] }, () => Math.floor(rng.next() * 256));
}

async function fixture(prefix: string, shape: Vec3 = SHAPE) {
  const dir = tempDir(prefix);
  const data = volumeData(shape, 7);
  const { zarr } = await writeVolume(dir, shape, data, [4, 8, 8]);
  return { dir, data, shape, input: join(zarr, '0'), model: model3d(dir, 'aff', 3) };
}

const baseJob = (f: { input: string; model: string }, out: string, extra: Partial<VolumePredictJob> = {}): VolumePredictJob => ({
  models: [f.model], input: f.input, out, membraneProb: false, tta: false, bf16: false, tile: 512, volumeTile: TILE,
  backend: 'auto', dtype: 'float32', block: TILE, ...extra });

/** What the models predict for the whole volume in one region (inputs scaled by the uint8 dtype rule). */
function whole(models: readonly string[], data: Uint8Array, shape: Vec3, backend: 'auto' | 'reference' = 'auto'): Float32Array {
  const loaded = models.flatMap((m) => loadModels(m));
  const predictor = new VolumePredictor(loaded, createBackend({ kind: backend }), TILE);
  return predictVolume(predictor, Float32Array.from(data, (v) => v / 255), shape);
}

/** Every channel of a multi-channel OME-Zarr map, channel-major, and the map's attributes. */
async function readMaps(out: string, channels: number): Promise<{ values: number[]; attributes: Record<string, unknown> }> {
  const values: number[] = [];
  let attributes: Record<string, unknown> = {};
  for (let c = 0; c < channels; c++) {
    const r = await openVolume(out, { channel: c });
    values.push(...(await r.readRegion({ start: [0, 0, 0], end: r.shape })));
    attributes = r.attributes;
    await r.close();
  }
  return { values, attributes };
}

function sameFiles(a: string, b: string): void {
  const fa = outputFiles(a);
  const fb = outputFiles(b);
  assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
  for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs`);
}

test('3-d maps equal predictVolume over the whole volume byte for byte, for blocks of several sizes (rounded up to whole tiles)', async () => {
  const f = await fixture('p3d-blocks');
  const expected = whole([f.model], f.data, f.shape);
  const channels = expected.length / (f.shape[0] * f.shape[1] * f.shape[2]);
  for (const block of [[4, 8, 8], [8, 16, 24], [5, 9, 8]] as Vec3[]) {
    const out = join(f.dir, `b${block.join('-')}.zarr`);
    const notices: string[] = [];
    const r = await runVolumePredict(baseJob(f, out, { block, notice: (m) => notices.push(m) }));
    assert.ok(r.complete && r.failed.length === 0);
    const got = Float32Array.from((await readMaps(out, channels)).values);
    assert.ok(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), `block ${block}: maps differ from the whole-volume prediction`);
    if (block[0] === 5) {
      assert.deepEqual(r.plan.block, [8, 16, 8], 'rounded up to whole tiles');
      assert.ok(notices.some((n) => n.includes('--block 5,9,8 rounded up to 8,16,8')), notices.join('\n'));
    } else {
      assert.deepEqual(r.plan.block, block);
      assert.deepEqual(notices, []);
    }
  }
});

test('the map has a channel axis "c" (NGFF 0.4) and records each channel\'s offset; uint8 boundaries in the asked polarity', async () => {
  const f = await fixture('p3d-axes');
  const out = join(f.dir, 'aff.zarr');
  await runVolumePredict(baseJob(f, out, { block: [8, 16, 16] }));
  const attrs = JSON.parse(readFileSync(join(out, '.zattrs'), 'utf8'));
  const ms = attrs.multiscales[0];
  assert.equal(ms.version, '0.4');
  assert.deepEqual(ms.axes.map((a: { name: string; type: string }) => [a.name, a.type]), [['c', 'channel'], ['z', 'space'], ['y', 'space'], ['x', 'space']]);
  assert.equal(ms.datasets.length, 1, 'one level: no pyramid of a multi-channel map');
  assert.deepEqual(ms.datasets[0].coordinateTransformations, [{ type: 'scale', scale: [1, 1, 1, 1] }]);
  const spec = parseModelSpec(unet3dSpec({ width: 2, levels: 1 }));
  const record = parseMapRecord(attrs, out);
  assert.deepEqual(record, { channels: 'multi', meanings: targetsRecord(spec.targets!).channels });
  const zarray = JSON.parse(readFileSync(join(out, '0', '.zarray'), 'utf8'));
  assert.deepEqual(zarray.shape, [spec.targets!.length, ...f.shape]);
  assert.deepEqual(zarray.chunks, [1, 8, 16, 16]);
  assert.deepEqual(JSON.parse(readFileSync(join(out, '0', '.zattrs'), 'utf8'))._ARRAY_DIMENSIONS, ['c', 'z', 'y', 'x']);
  // A boundary head, uint8, ISBI polarity (the default without --membrane-prob, as 2-d maps): 255 - round(255 p).
  const boundary = model3d(f.dir, 'boundary', 4, { head: 'boundary', anisotropic: true });
  const bout = join(f.dir, 'boundary.zarr');
  await runVolumePredict(baseJob({ input: f.input, model: boundary }, bout, { dtype: 'uint8' }));
  const { values, attributes } = await readMaps(bout, 1);
  assert.deepEqual(parseMapRecord(attributes, bout), { channels: 'multi', meanings: [{ kind: 'membrane', polarity: 'membrane-low', name: 'boundary-in-plane' }] });
  const p = whole([boundary], f.data, f.shape);
  assert.deepEqual(values, Array.from(p, (v) => Math.round((1 - v) * 255)));
});

test('--shard 0/2 and 1/2 in two processes write what one process writes', async () => {
  const f = await fixture('p3d-shard');
  const one = join(f.dir, 'one.zarr');
  assert.ok((await runVolumePredict(baseJob(f, one, { dtype: 'uint8' }))).complete);
  const sharded = join(f.dir, 'sharded.zarr');
  const args = (i: number) => ['predict', '--model', f.model, '--input', f.input, '--out', sharded, '--block', TILE.join(','), '--tile', TILE.join(','),
    '--shard', `${i}/2`, '--quiet', '--threads', '1'];
  // The second shard starts once the first has created the output (both may create it; this keeps the test simple).
  const first = spawnSync(process.execPath, [CLI, ...args(0)], { encoding: 'utf8' });
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /the output is not complete yet/);
  const second = spawnSync(process.execPath, [CLI, ...args(1)], { encoding: 'utf8' });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /wrote /);
  sameFiles(one, sharded);
});

function doneMarkers(out: string): number {
  const dir = join(out, '.emseg', 'blocks');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.done.json')).length : 0;
}

test('a SIGKILLed run, rerun with the same command, computes only the unfinished blocks and equals an uninterrupted one', async () => {
  const f = await fixture('p3d-resume', [12, 24, 24]);
  const out = join(f.dir, 'aff.zarr');
  const args = (o: string) => ['predict', '--model', f.model, '--input', f.input, '--out', o, '--block', TILE.join(','), '--tile', TILE.join(','),
    '--backend', 'reference', '--quiet', '--threads', '1'];
  const child = spawn(process.execPath, [CLI, ...args(out)], { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  while (doneMarkers(out) < KILL_AFTER && child.exitCode === null) await sleep(POLL_MS);
  child.kill('SIGKILL');
  await exited;
  const before = doneMarkers(out);
  const total = 3 * 3 * 3;
  assert.ok(before >= KILL_AFTER && before < total, `killed with ${before} of ${total} blocks done`);
  const rerun = spawnSync(process.execPath, [CLI, ...args(out)], { encoding: 'utf8' });
  assert.equal(rerun.status, 0, rerun.stderr);
  const m = /computed (\d+) skipped (\d+) failed (\d+)/.exec(rerun.stdout);
  assert.deepEqual(m?.slice(1).map(Number), [total - before, before, 0]);
  const clean = join(f.dir, 'clean.zarr');
  assert.equal(spawnSync(process.execPath, [CLI, ...args(clean)]).status, 0);
  sameFiles(out, clean);
});

test('--tta: blockwise maps equal predictVolume with test-time augmentation over the whole volume, byte for byte', async () => {
  const f = await fixture('p3d-tta');
  const loaded = loadModels(f.model);
  const expected = predictVolume(new VolumePredictor(loaded, createBackend({ kind: 'auto' }), TILE, { tta: true }), Float32Array.from(f.data, (v) => v / 255), f.shape);
  const out = join(f.dir, 'tta.zarr');
  assert.ok((await runVolumePredict(baseJob(f, out, { tta: true, block: [8, 16, 8] }))).complete);
  const got = Float32Array.from((await readMaps(out, expected.length / volumeOf(f.shape))).values);
  assert.ok(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), 'maps differ from the whole-volume prediction');
  assert.ok(!Buffer.from(got.buffer).equals(Buffer.from(whole([f.model], f.data, f.shape).buffer)), 'the views change the maps');
});

test('refused with codes: --tta with tiles not square in-plane, 2-d and 3-d models together, a spec without targets, a 3-d tile for a 2-d network or a stack output, too little memory', async () => {
  const f = await fixture('p3d-refuse');
  const out = (n: string) => join(f.dir, `${n}.zarr`);
  await assert.rejects(runVolumePredict(baseJob(f, out('tta'), { tta: true, volumeTile: [4, 8, 16], block: [4, 8, 16] })), refused('invalid-option', '--tta'));
  const flat = zooModel(f.dir, 'reference-net', 5);
  await assert.rejects(runVolumePredict(baseJob(f, out('mixed'), { models: [flat, f.model] })), refused('mismatch', 'aff'));
  const untargeted = model3d(f.dir, 'untargeted', 5, {}, ({ targets: _t, ...rest }) => rest);
  await assert.rejects(runVolumePredict(baseJob(f, out('untargeted'), { models: [untargeted] })), refused('invalid-spec', 'untargeted/spec.json'));
  const other = model3d(f.dir, 'other', 6, { longRange: [[-2, 0, 0]] });
  await assert.rejects(runVolumePredict(baseJob(f, out('ensemble'), { models: [f.model, other] })), refused('mismatch', 'other/spec.json'));
  await assert.rejects(runVolumePredict(baseJob(f, out('flat'), { models: [flat], block: [1, 16, 16], volumeTile: [4, 8, 8] })), refused('invalid-option', '--tile'));
  await assert.rejects(runVolumePredict(baseJob(f, out('intensity'), { intensity: 'min-max' })), refused('invalid-option', '--intensity'));
  const stack = spawnSync(process.execPath, [CLI, 'predict', '--model', flat, '--input', f.input, '--out', join(f.dir, 'maps.tif'), '--tile', '4,8,8'], { encoding: 'utf8' });
  assert.notEqual(stack.status, 0);
  assert.match(stack.stderr, /--tile/);
  // The block and tile's working set against a tiny limit: refused before anything is written.
  // Blocks of 1 M voxels of 9 float32 channels (twice: one computed, one written) exceed 64 MB above the process's share.
  const small = spawnSync(process.execPath, [CLI, 'predict', '--model', f.model, '--input', f.input, '--out', out('memory'), '--block', '64,128,128',
    '--tile', TILE.join(','), '--dtype', 'float32'], { encoding: 'utf8', env: { ...process.env, EMSEG_MEMORY_LIMIT: String(BASE_PROCESS_BYTES + 64 * 2 ** 20) } });
  assert.notEqual(small.status, 0);
  assert.match(small.stderr, /--block.*only .* is available; use a smaller --block/);
  assert.ok(!existsSync(out('memory')));
  // A resumed output keeps its block: another one is refused, not mixed in.
  await runVolumePredict(baseJob(f, out('resumed')));
  await assert.rejects(runVolumePredict(baseJob(f, out('resumed'), { block: [8, 16, 16] })), refused('mismatch'));
});

test('emseg predict (--profile) of an HDF5 volume with a 3-d network, then emseg segment --method watershed-agglomerate on its maps', async () => {
  const f = await fixture('p3d-cli');
  // Long-range offsets inside the small volume (segment refuses offsets that reach beyond it).
  f.model = model3d(f.dir, 'short', 8, { longRange: [[-3, 0, 0], [0, -3, 0], [0, 0, -3]] });
  const h5 = join(f.dir, 'vol.h5');
  await writeHdf5(h5, [{ path: 'volumes/raw', data: f.data, shape: [...f.shape], dtype: '<B' }]);
  const aff = join(f.dir, 'aff.zarr');
  const predict = spawnSync(process.execPath, [CLI, 'predict', '--model', f.model, '--input', `${h5}:/volumes/raw`, '--out', aff, '--block', '8,16,16',
    '--tile', TILE.join(','), '--dtype', 'float32', '--quiet', '--profile'], { encoding: 'utf8' });
  assert.equal(predict.status, 0, predict.stderr);
  assert.match(predict.stderr, /network forward passes/, 'the 3-d tile steps are profiled');
  const expected = whole([f.model], f.data, f.shape);
  const got = Float32Array.from((await readMaps(aff, expected.length / f.data.length)).values);
  assert.ok(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), 'the HDF5 input predicts as the OME-Zarr one');
  const neurons = join(f.dir, 'neurons.zarr');
  const segment = spawnSync(process.execPath, [CLI, 'segment', '--pred', aff, '--method', 'watershed-agglomerate', '--out', neurons, '--quiet'], { encoding: 'utf8' });
  assert.equal(segment.status, 0, segment.stderr);
  const labels = await openVolume(neurons);
  assert.deepEqual(labels.shape, f.shape);
  assert.equal(labels.dtype, 'uint32');
  await labels.close();
});

test('emseg submit predict with a 3-d network: a worker writes what one process writes', async () => {
  const f = await fixture('p3d-queue');
  const one = join(f.dir, 'one.zarr');
  assert.ok((await runVolumePredict(baseJob(f, one, { dtype: 'uint8' }))).complete);
  const server = await startRedis();
  const out = join(f.dir, 'queued.zarr');
  const worker = spawn(process.execPath, [CLI, 'worker', '--redis', server.url, '--threads', '1', '--quiet'], { stdio: 'ignore', detached: true });
  const exited = new Promise((res) => worker.on('exit', res));
  try {
    const submitted = spawnSync(process.execPath, [CLI, 'submit', 'predict', '--model', f.model, '--input', f.input, '--out', out,
      '--block', TILE.join(','), '--tile', TILE.join(','), '--redis', server.url], { encoding: 'utf8' });
    assert.equal(submitted.status, 0, submitted.stderr);
    const jobset = submitted.stdout.trim();
    const deadline = Date.now() + QUEUE_WAIT_MS;
    for (;;) {
      const [s] = await queueStatus(server.url, jobset);
      if (s!.done === s!.total && s!.active + s!.waiting === 0 && s!.pyramid === 'completed') break;
      assert.ok(s!.failed.length === 0, JSON.stringify(s!.failed));
      assert.ok(Date.now() < deadline, `queued blocks not done: ${JSON.stringify(s)}`);
      await sleep(QUEUE_POLL_MS);
    }
  } finally {
    process.kill(-worker.pid!, 'SIGTERM');
    await exited;
    await server.stop();
  }
  sameFiles(one, out);
});
