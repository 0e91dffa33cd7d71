/**
 * Any readable input to any writable output (issue 24, "Stacks are volumes"): `emseg predict` and `emseg segment`
 * read every input through the volume registry, so an HDF5 dataset, an OME-Zarr array and a PNG/TIFF stack of the
 * same data give the same maps and cells whether the output is a TIFF, a folder or an OME-Zarr; the output registry
 * (src/io/outputs.ts) refuses a combination that cannot work naming both formats. Random-weight zoo models suffice:
 * the properties are about reading and writing, not about what the network learned.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openTiffWindowed } from '../src/io/formats/tiff-window.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { readStack, writeStack, type StackData } from '../src/io/index.js';
import { labelsOutput, mapsOutput, stackOutput } from '../src/io/outputs.js';
import { openVolume } from '../src/io/registry.js';
import { runPredict, type PredictJob } from '../src/pipeline/predict.js';
import { runSegment } from '../src/pipeline/segment.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { writeMaps } from './helpers/segment-maps.js';
import { sampleVolume, tempDir, zooModel } from './helpers/volume-predict-fixture.js';
import { writeHdf5 } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
/** Blockwise and whole-section maps agree to float rounding (test/volume-predict.test.ts uses the same bound). */
const TOLERANCE = 1e-6;

function emseg(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Dtype = 'uint8' | 'uint16' | 'float32';
const HDF5_DTYPE: Record<Dtype, string> = { uint8: '<B', uint16: '<H', float32: '<f' };

/** The sample volume in another sample type, with values that need the intensity rule (not already in [0, 1]). */
function asType(data: Uint8Array, dtype: Dtype): StackData {
  if (dtype === 'uint16') return Uint16Array.from(data, (v) => v * 13); // 12-bit data
  if (dtype === 'float32') return Float32Array.from(data, (v) => v * 3.5 - 20);
  return data;
}

/** The same voxels as an HDF5 dataset (chunked, gzip) and as a multi-page TIFF stack. */
async function inputs(dir: string, shape: Vec3, data: StackData, dtype: Dtype): Promise<{ h5: string; tif: string }> {
  const file = join(dir, `vol-${dtype}.h5`);
  await writeHdf5(file, [{ path: '/volumes/raw', data, shape: [...shape], dtype: HDF5_DTYPE[dtype], chunks: [1, 32, 32] }]);
  const tif = join(dir, `raw-${dtype}.tif`);
  await writeStack(tif, { depth: shape[0], height: shape[1], width: shape[2], data });
  return { h5: `${file}:/volumes/raw`, tif };
}

function job(model: string, input: string, out: string, o: Partial<PredictJob> = {}): PredictJob {
  return { models: [model], input, out, format: 'tiff', membraneProb: true, tta: false, bf16: false, tile: 512, backend: 'auto', overwrite: false, ...o };
}

async function volumeValues(path: string): Promise<StackData> {
  const v = await openVolume(path);
  try {
    return await v.readRegion({ start: [0, 0, 0], end: v.shape });
  } finally {
    await v.close();
  }
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('HDF5 to TIFF maps are the very bytes a TIFF stack of the same data gives: uint8, uint16 and float32, per-section intensity rules', async () => {
  const dir = tempDir('anyio-h5');
  const shape: Vec3 = [3, 96, 80];
  const base = await sampleVolume(shape);
  const model = zooModel(dir, 'reference-net', 3);
  // Per-section statistics (percentiles, min-max) are computed on the whole section, for a volume as for a stack.
  const rules: [Dtype, string | undefined][] = [['uint8', undefined], ['uint16', 'percentiles'], ['float32', 'min-max']];
  for (const [dtype, intensity] of rules) {
    const { h5, tif } = await inputs(dir, shape, asType(base, dtype), dtype);
    const fromH5 = join(dir, `h5-${dtype}.tif`);
    const fromTif = join(dir, `tif-${dtype}.tif`);
    await runPredict(job(model, h5, fromH5, { intensity }));
    await runPredict(job(model, tif, fromTif, { intensity }));
    assert.deepEqual((await readStack(fromH5)).data, (await readStack(fromTif)).data, `${dtype}: map values`);
    // Same metadata too (the models and the polarity; neither input records a voxel size), so the same file.
    assert.ok(readFileSync(fromH5).equals(readFileSync(fromTif)), `${dtype}: TIFF bytes`);
  }
  // The command of the issue, as a user types it: it used to fail with "no such file or folder".
  const r = emseg(['predict', '--model', model, '--input', join(dir, 'vol-uint8.h5:/volumes/raw'), '--out', join(dir, 'maps.tif'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const isbi = join(dir, 'isbi-from-tif.tif');
  assert.equal(emseg(['predict', '--model', model, '--input', join(dir, 'raw-uint8.tif'), '--out', isbi, '--quiet']).status, 0);
  assert.ok(readFileSync(join(dir, 'maps.tif')).equals(readFileSync(isbi)), 'CLI: HDF5 and TIFF stack give the same ISBI maps');
});

test('a PNG or multi-page TIFF stack read by several regions at once gives each region its own sections', async () => {
  // Blockwise prediction reads the next block while the current one computes: the stack adapter's reads overlap.
  const dir = tempDir('anyio-overlap');
  const [d, h, w] = [3, 20, 30];
  const data = Uint8Array.from({ length: d * h * w }, (_, i) => (i * 7 + Math.floor(i / (h * w)) * 50) % 256);
  await writeStack(join(dir, 'png/'), { depth: d, height: h, width: w, data });
  await writeStack(join(dir, 'multi.tif'), { depth: d, height: h, width: w, data });
  for (const input of [join(dir, 'png'), join(dir, 'multi.tif')]) {
    const v = await openVolume(input);
    const got = await Promise.all([0, 1, 2].map((z) => v.readRegion({ start: [z, 0, 5], end: [z + 1, h, 25] })));
    await v.close();
    got.forEach((g, z) => {
      const want = Array.from({ length: h * 20 }, (_, i) => data[z * h * w + Math.floor(i / 20) * w + 5 + (i % 20)]);
      assert.deepEqual([...g], want, `${input}: section ${z}`);
    });
  }
});

test('HDF5 and a PNG folder give the same maps as TIFF and as OME-Zarr (float32 P(membrane); 8-bit PNG vs uint8 Zarr)', async () => {
  const dir = tempDir('anyio-zarr');
  const shape: Vec3 = [2, 160, 144];
  const data = await sampleVolume(shape);
  const model = zooModel(dir, 'reference-net', 5);
  const { h5 } = await inputs(dir, shape, data, 'uint8');
  const folder = join(dir, 'raw-png');
  await writeStack(folder, { depth: shape[0], height: shape[1], width: shape[2], data });
  // The same --tile as the block edge: blocks are cut into the tiles a whole section is (test/volume-predict.test.ts).
  const block: Vec3 = [1, 128, 128];
  const common = { tile: block[1], membraneProb: true };
  const tif = join(dir, 'h5.tif');
  await runPredict(job(model, h5, tif, common));
  const folderTif = join(dir, 'folder.tif');
  await runPredict(job(model, folder, folderTif, common));
  assert.deepEqual((await readStack(folderTif)).data, (await readStack(tif)).data, 'folder and HDF5 to TIFF');
  const zarrs = [];
  for (const [name, input] of [['h5', h5], ['folder', folder]] as const) {
    const out = join(dir, `${name}.zarr`);
    const r = await runVolumePredict({ ...job(model, input, out, common), dtype: 'float32', block });
    assert.ok(r.complete && r.failed.length === 0 && r.plan.count === 8, `${name}: 2 x 2 x 2 blocks, all done`);
    zarrs.push(await volumeValues(out));
  }
  assert.deepEqual(zarrs[1], zarrs[0], 'a folder (stack) to OME-Zarr gives the voxels HDF5 to OME-Zarr does');
  const worst = maxDifference(zarrs[0]!, (await readStack(tif)).data);
  assert.ok(worst <= TOLERANCE, `OME-Zarr and TIFF maps differ by ${worst}`);
  // What each writes by default: PNG slices round(255 v) and uint8 OME-Zarr round(255 v), both in the ISBI polarity.
  assert.equal(emseg(['predict', '--model', model, '--input', `${h5}`, '--out', join(dir, 'png/'), '--format', 'png-folder', '--quiet']).status, 0);
  const z8 = join(dir, 'u8.zarr');
  assert.equal(emseg(['predict', '--model', model, '--input', folder, '--out', z8, '--quiet']).status, 0);
  const png = (await readStack(join(dir, 'png'))).data;
  assert.ok(png instanceof Uint8Array);
  // 1 - p is rounded in float32 for PNG and in float64 for Zarr: a value on a .5 boundary may round apart.
  assert.ok(maxDifference(png, await volumeValues(z8)) <= 1, 'PNG and uint8 OME-Zarr maps agree to the last unit');
});

test('Zarr maps to TIFF labels give the cells Zarr maps to Zarr labels do: the same partition, ids per section vs per volume', async () => {
  const dir = tempDir('anyio-cells');
  const shape: Vec3 = [2, 200, 180];
  const pred = join(dir, 'maps.zarr');
  await writeMaps(pred, shape, [1, 64, 64]); // ISBI polarity recorded, so neither run needs --membrane-prob
  const tif = join(dir, 'cells.tif');
  const { segments } = await runSegment({ pred, out: tif, options: {}, overwrite: false });
  const r = await runVolumeSegment({ pred, out: join(dir, 'cells.zarr'), options: {} });
  assert.ok(r.complete);
  const stack = (await readStack(tif)).data as Uint32Array;
  const zarr = (await volumeValues(join(dir, 'cells.zarr'))) as Uint32Array;
  const n = shape[1] * shape[2];
  let offset = 0;
  for (let z = 0; z < shape[0]; z++) {
    // A bijection between the two labellings of the section: the same cells.
    const there = new Map<number, number>();
    const back = new Map<number, number>();
    for (let i = z * n; i < (z + 1) * n; i++) {
      const a = stack[i]!;
      const b = zarr[i]!;
      assert.equal(there.get(a) ?? b, b, `section ${z}: stack cell ${a} is split`);
      assert.equal(back.get(b) ?? a, a, `section ${z}: OME-Zarr cell ${b} is split`);
      there.set(a, b);
      back.set(b, a);
    }
    assert.equal(there.size, segments[z], `section ${z}: cells`);
    // Numbering: the stack counts 1..n in each section, the OME-Zarr labels are consecutive over the volume (the
    // section's ids shifted by the cells of the sections before it); both number by first appearance.
    for (const [a, b] of there) assert.equal(b, a + offset, `section ${z}: stack id ${a}`);
    offset += there.size;
  }
  assert.equal(r.cells, offset);
  // As a user types it: it used to write a folder of .tif slices named by the path, or fail.
  const cli = join(dir, 'cli-cells.tif');
  const c = emseg(['segment', '--pred', pred, '--out', cli, '--quiet']);
  assert.equal(c.status, 0, c.stderr);
  assert.ok(readFileSync(cli).equals(readFileSync(tif)), 'CLI and API write the same labels');
});

test('TIFF maps read by window (the big-TIFF reader) keep what emseg recorded about them, as the stack reader does', async () => {
  // Maps over 512 MiB are read by window; segment must still find their polarity and tuned options.
  const dir = tempDir('anyio-window');
  const maps = join(dir, 'maps.tif');
  const record = { emseg: { kind: 'membrane', polarity: 'membrane-high' } };
  await writeStack(maps, { depth: 2, height: 16, width: 24, data: new Float32Array(2 * 16 * 24) }, { description: JSON.stringify(record) });
  const windowed = await openTiffWindowed(maps);
  const stack = await openVolume(maps);
  assert.equal(windowed.format, 'tiff');
  assert.equal(stack.format, 'stack');
  assert.deepEqual(windowed.attributes.emseg, record.emseg);
  assert.deepEqual(stack.attributes.emseg, record.emseg);
  await windowed.close();
  await stack.close();
});

test('input options apply to every output: --scale and --allow-missing-chunks with a TIFF output', async () => {
  const dir = tempDir('anyio-scale');
  const shape: Vec3 = [2, 128, 96];
  const data = await sampleVolume(shape);
  const zarr = join(dir, 'raw.zarr');
  const w = await createOmeZarr(zarr, { shape, dtype: 'uint8', chunks: [1, 32, 32], levels: 2 });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, data);
  await w.buildPyramid();
  const model = zooModel(dir, 'reference-net', 7);
  const scaled = join(dir, 'scale1.tif');
  const r = emseg(['predict', '--model', model, '--input', zarr, '--scale', '1', '--out', scaled, '--format', 'tiff', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const level = join(dir, 'level1.tif');
  await runPredict(job(model, join(zarr, '1'), level, { membraneProb: false }));
  assert.deepEqual((await readStack(scaled)).data, (await readStack(level)).data, '--scale 1 reads level 1');
  rmSync(join(zarr, '0', '1', '2', '1')); // one chunk of level 0 gone
  const missing = join(dir, 'missing.tif');
  await assert.rejects(runPredict(job(model, join(zarr, '0'), missing)), refused('missing-chunk'));
  const notices: string[] = [];
  await runPredict(job(model, join(zarr, '0'), missing, { allowMissingChunks: true, notice: (m) => notices.push(m) }));
  assert.ok(existsSync(missing) && notices.some((m) => /1 chunk file was absent/.test(m)), notices.join('\n'));
});

test('combinations that cannot work are refused naming both formats, before any work', async () => {
  const dir = tempDir('anyio-refuse');
  // The registry: a kind for each path, and the refusals (codes as before where there were refusals).
  assert.equal(mapsOutput(join(dir, 'maps.zarr'), 'isbi', false).kind, 'ome-zarr');
  assert.equal(mapsOutput(join(dir, 'maps.tif'), 'isbi', false).kind, 'isbi');
  assert.equal(mapsOutput(join(dir, 'maps/'), 'png-folder').kind, 'png-folder');
  assert.equal(labelsOutput(join(dir, 'cells.zarr')).kind, 'ome-zarr');
  assert.equal(labelsOutput(join(dir, 'cells.tif')).kind, 'tiff');
  assert.throws(() => mapsOutput(join(dir, 'maps.zarr'), 'tiff'), refused('invalid-option', '--format', /multi-page TIFF.*OME-Zarr/));
  assert.throws(() => mapsOutput(join(dir, 'maps.zarr'), 'npy'), refused('invalid-option', '--format'));
  assert.throws(() => mapsOutput(join(dir, 'maps.h5'), 'isbi', false), refused('wrong-format', 'maps.h5', /HDF5.*OME-Zarr/));
  assert.throws(() => labelsOutput(join(dir, 'cells.h5:/cells')), refused('wrong-format', 'cells.h5:/cells', /HDF5.*OME-Zarr/));
  assert.throws(() => labelsOutput(join(dir, 'cells.png')), refused('wrong-format', 'cells.png', /PNG.*OME-Zarr/));
  assert.throws(() => stackOutput(join(dir, 'maps.zarr'), 'tiff'), refused('wrong-format', 'maps.zarr', /OME-Zarr.*TIFF/));
  // The one-piece writers refuse an OME-Zarr path (runSegment used to write a folder of .tif slices named cells.zarr).
  const model = zooModel(dir, 'reference-net', 3);
  await assert.rejects(runPredict(job(model, join(dir, 'none'), join(dir, 'maps.zarr'))), refused('wrong-format', 'maps.zarr'));
  await assert.rejects(runSegment({ pred: join(dir, 'none'), out: join(dir, 'cells.zarr'), options: {}, overwrite: false }),
    refused('wrong-format', 'cells.zarr'));
  assert.ok(!existsSync(join(dir, 'cells.zarr')));

  // The CLI: flags an output written in one piece cannot honour, named with both formats.
  const shape: Vec3 = [1, 40, 48];
  const images = join(dir, 'images');
  await writeStack(images, { depth: shape[0], height: shape[1], width: shape[2], data: await sampleVolume(shape) });
  const maps = join(dir, 'maps.tif');
  await writeStack(maps, { depth: 1, height: 40, width: 48, data: Float32Array.from({ length: 40 * 48 }, (_, i) => (i % 10 === 0 ? 0 : 1)) });
  const predict = ['predict', '--model', model, '--input', images, '--quiet'];
  const cases: [string[], RegExp][] = [
    [[...predict, '--out', join(dir, 'p.tif'), '--shard', '0/2'], /--shard: an ISBI-format multi-page float TIFF output .*written in one piece; --shard needs an OME-Zarr output/],
    [[...predict, '--out', join(dir, 'p/'), '--format', 'png-folder', '--dtype', 'float32'], /--dtype: a folder of PNG slices .*8-bit.*OME-Zarr/],
    [[...predict, '--out', join(dir, 'p.zarr'), '--format', 'tiff'], /--format: tiff writes a multi-page TIFF output, but .*p\.zarr names an OME-Zarr output/],
    [[...predict, '--out', join(dir, 'p.h5')], /HDF5.*OME-Zarr/],
    [['segment', '--pred', maps, '--out', join(dir, 's.tif'), '--restart', '--quiet'], /--restart: a multi-page TIFF output .*OME-Zarr output/],
    [['segment', '--pred', maps, '--out', join(dir, 's.png'), '--quiet'], /PNG cannot hold.*OME-Zarr/],
  ];
  for (const [args, message] of cases) {
    const r = emseg(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
  for (const name of ['p.tif', 'p', 'p.zarr', 'p.h5', 's.tif', 's.png']) assert.ok(!existsSync(join(dir, name)), `${name} not written`);
});
