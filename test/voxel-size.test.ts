/**
 * Voxel size and unit travel (issue 24, item 3): read from OME-Zarr scales and axis units (NGFF 0.4 on Zarr v2, 0.5 on
 * v3), HDF5 `resolution` (CREMI, nm) and `element_size_um`, TIFF resolution tags with ImageJ's unit and spacing;
 * written to OME-Zarr outputs (scale + unit, labels inside images too) and TIFF outputs (resolution tags, ImageJ
 * description keeping emseg's close_gaps record) by predict, segment and convert; --voxel-size and --unit set or
 * override, said on stderr; a file that says nothing gives nothing. No metadata names the machine's folders.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import { isEmsegError } from '../src/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openTiffWindowed } from '../src/io/formats/tiff-window.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { descriptionAttributes, openStack, writeStack } from '../src/io/index.js';
import { openVolume } from '../src/io/registry.js';
import { buildTiff, pageFromSlice } from '../src/io/tiff-write.js';
import { chooseVoxelSize, normalizeUnit, tiffResolution, voxelSizeOf, type VoxelSize } from '../src/io/voxel-size.js';
import { runPredict } from '../src/pipeline/predict.js';
import { runSegment } from '../src/pipeline/segment.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { runPack } from '../src/cli/pack.js';
import { typedCommand, typedPath } from '../src/util/paths.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { writeHdf5 } from './helpers/volumes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NM: VoxelSize = { size: [50, 4, 4], unit: 'nanometer' };
const SHAPE: Vec3 = [2, 64, 64];
const common = { tta: false, bf16: false, tile: 512, backend: 'auto' as const };

/** The same voxel size, compared as plain data (readers return readonly tuples). */
function same(actual: VoxelSize | undefined, expected: VoxelSize | undefined, what = ''): void {
  assert.deepEqual(actual && { size: [...actual.size], unit: actual.unit }, expected && { size: [...expected.size], unit: expected.unit }, what);
}

async function voxelOf(path: string, options: { scale?: number } = {}): Promise<VoxelSize | undefined> {
  const v = await openVolume(path, options);
  await v.close();
  return v.voxelSize;
}

const zattrs = (dir: string) => JSON.parse(readFileSync(join(dir, '.zattrs'), 'utf8')) as {
  multiscales: { axes: { name: string; unit?: string }[]; datasets: { coordinateTransformations: { scale: number[] }[] }[] }[];
  emseg: Record<string, unknown>;
};

/** The scale of every level and the axes' units an OME-Zarr output records. */
function recorded(dir: string): { scales: number[][]; units: (string | undefined)[] } {
  const ms = zattrs(dir).multiscales[0]!;
  return { scales: ms.datasets.map((d) => d.coordinateTransformations[0]!.scale), units: ms.axes.map((a) => a.unit) };
}

/** Every file under `dir` (run records included), so none of them may hold `path`. */
function assertNowhere(dir: string, path: string): void {
  const files = statSync(dir).isDirectory() ? [] as string[] : [dir];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  if (files.length === 0) walk(dir);
  for (const f of files) assert.ok(!readFileSync(f, 'latin1').includes(path), `${f} names the machine path ${path}`);
}

async function zarrInput(dir: string, voxel?: VoxelSize): Promise<string> {
  const path = join(dir, voxel ? 'raw.zarr' : 'plain.zarr');
  const w = await createOmeZarr(path, { shape: SHAPE, dtype: 'uint8', chunks: [1, 32, 32], voxelSize: voxel?.size, unit: voxel?.unit });
  await w.writeRegion({ start: [0, 0, 0], end: SHAPE }, await sampleVolume(SHAPE));
  await w.buildPyramid();
  return path;
}

/** `emseg ...` as a user runs it (cwd: the repository); returns the exit status and both streams. */
function emseg(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [join(root, 'bin/emseg.js'), ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('units in any spelling become NGFF names; flags override or convert the file\'s voxel size, and say so', () => {
  assert.deepEqual(['nm', 'µm', 'um', 'micron', 'micrometres', 'Nanometers', 'mm', 'pixel', 'parsecs', ''].map(normalizeUnit),
    ['nanometer', 'micrometer', 'micrometer', 'micrometer', 'micrometer', 'nanometer', 'millimeter', undefined, 'parsec', undefined]);
  same(voxelSizeOf([0.05, 4, 4], ['micrometer', 'nanometer', 'nanometer']), NM, 'axes in two units: the finest');
  assert.equal(voxelSizeOf([1, 1, 1], [undefined, undefined, undefined]), undefined, 'scale 1 without units says nothing');
  same(voxelSizeOf([40, 4, 4], [undefined, undefined, undefined]), { size: [40, 4, 4], unit: undefined }, 'relative sizes');
  assert.equal(voxelSizeOf([40, 4, 4], ['nanometer', 'furlong', 'nanometer']), undefined, 'a unit emseg does not know');

  const notices: string[] = [];
  same(chooseVoxelSize(NM, {}, 'in.zarr', (l) => notices.push(l)), NM);
  assert.equal(notices.length, 0, 'the file\'s own: nothing to say');
  same(chooseVoxelSize(NM, { voxelSize: [40, 4, 4] }, 'in.zarr', (l) => notices.push(l)), { size: [40, 4, 4], unit: 'nanometer' });
  same(chooseVoxelSize(NM, { unit: 'um' }, 'in.zarr', (l) => notices.push(l)), { size: [0.05, 0.004, 0.004], unit: 'micrometer' });
  same(chooseVoxelSize(undefined, { voxelSize: [30, 5, 5], unit: 'nm' }, 'in.zarr', (l) => notices.push(l)), { size: [30, 5, 5], unit: 'nanometer' });
  assert.equal(notices.length, 2, 'one line per override that differs from the file; none where the file says nothing');
  assert.match(notices[0]!, /40 x 4 x 4 nanometer.*50 x 4 x 4 nanometer.*in\.zarr/);
  assert.throws(() => chooseVoxelSize(undefined, { unit: 'nm' }, 'in.zarr'), (e) => isEmsegError(e, 'invalid-option') && e.path === '--unit');
  assert.throws(() => chooseVoxelSize(NM, { unit: 'furlong' }, 'in.zarr'), (e) => isEmsegError(e, 'invalid-option') && e.path === '--unit');
  assert.throws(() => chooseVoxelSize(NM, { voxelSize: [0, 4, 4] }, 'in.zarr'), (e) => isEmsegError(e, 'invalid-option') && e.path === '--voxel-size');
});

test('OME-Zarr v2 (NGFF 0.4): the scale of the level read, in its axes\' units; scale 1 without units is no voxel size', async () => {
  const dir = tempDir('voxel-zarr2');
  const path = await zarrInput(dir, NM);
  same(await voxelOf(path), NM);
  same(await voxelOf(path, { scale: 1 }), { size: [50, 8, 8], unit: 'nanometer' }, 'level 1 of the pyramid');
  same(await voxelOf(join(path, '1')), { size: [50, 8, 8], unit: 'nanometer' }, 'the level named by its path');
  assert.equal(await voxelOf(await zarrInput(dir)), undefined, 'emseg\'s default scale 1, no unit');

  // Another writer: z in micrometers, y and x in nanometers, a global scale on top of the level's.
  const attrs = zattrs(path) as unknown as { multiscales: Record<string, unknown>[] };
  const ms = attrs.multiscales[0]!;
  ms.axes = [{ name: 'z', type: 'space', unit: 'micrometer' }, { name: 'y', type: 'space', unit: 'nanometer' }, { name: 'x', type: 'space', unit: 'nanometer' }];
  ms.datasets = (ms.datasets as { path: string }[]).map((d, l) => ({ path: d.path, coordinateTransformations: [{ type: 'scale', scale: [0.025, 2 * 2 ** l, 2 * 2 ** l] }] }));
  ms.coordinateTransformations = [{ type: 'scale', scale: [2, 2, 2] }];
  writeFileSync(join(path, '.zattrs'), JSON.stringify(attrs));
  same(await voxelOf(path), NM);
});

test('Zarr v3 (NGFF 0.5): t, c, z, y, x arrays give the space axes\' scale and unit at every level', async () => {
  registerZarrCodecs();
  const dir = join(tempDir('voxel-zarr3'), 'v3.zarr');
  const store = new FileSystemStore(dir);
  const axes = ['t', 'c', 'z', 'y', 'x'].map((name) => ({ name, type: name === 't' ? 'time' : name === 'c' ? 'channel' : 'space',
    ...(name === 't' ? { unit: 'second' } : name === 'c' ? {} : { unit: 'nanometer' }) }));
  const datasets = [['s0', 1], ['s1', 2]].map(([path, f]) => ({ path, coordinateTransformations: [{ type: 'scale', scale: [1, 1, 40, 4 * (f as number), 4 * (f as number)] }] }));
  await zarr.create(zarr.root(store), { attributes: { ome: { version: '0.5', multiscales: [{ axes, datasets }] } } });
  for (const [path, h] of [['s0', 16], ['s1', 8]] as const) {
    const arr = await zarr.create(zarr.root(store).resolve(path), { shape: [1, 1, 2, h, h], chunkShape: [1, 1, 1, 8, 8], dtype: 'uint8' });
    await zarr.set(arr, null, { data: new Uint8Array(2 * h * h), shape: [1, 1, 2, h, h], stride: [2 * h * h, 2 * h * h, h * h, h, 1] } as never);
  }
  same(await voxelOf(dir), { size: [40, 4, 4], unit: 'nanometer' });
  same(await voxelOf(dir, { scale: 1 }), { size: [40, 8, 8], unit: 'nanometer' });
});

test('HDF5: CREMI\'s resolution (nm), ilastik\'s element_size_um, a 2-D dataset; a dataset without either has none', async () => {
  const file = join(tempDir('voxel-h5'), 'vol.h5');
  const data = new Uint8Array(2 * 16 * 16);
  await writeHdf5(file, [
    { path: '/volumes/raw', data, shape: [2, 16, 16], dtype: '<B', attrs: { resolution: [40, 4, 4] } },
    { path: '/ilastik', data, shape: [2, 16, 16], dtype: '<B', attrs: { element_size_um: [0.04, 0.004, 0.004] } },
    { path: '/both', data, shape: [2, 16, 16], dtype: '<B', attrs: { resolution: [40, 4, 4], element_size_um: [0.05, 0.004, 0.004] } },
    { path: '/section', data: new Uint8Array(256), shape: [16, 16], dtype: '<B', attrs: { resolution: [4, 4] } },
    { path: '/odd', data, shape: [2, 16, 16], dtype: '<B', attrs: { resolution: [4, 4] } },
    { path: '/none', data, shape: [2, 16, 16], dtype: '<B' },
  ]);
  same(await voxelOf(`${file}:/volumes/raw`), { size: [40, 4, 4], unit: 'nanometer' });
  same(await voxelOf(`${file}:/ilastik`), { size: [0.04, 0.004, 0.004], unit: 'micrometer' });
  same(await voxelOf(`${file}:/both`), { size: [0.05, 0.004, 0.004], unit: 'micrometer' }, 'disagreeing: the one whose unit is in its name');
  same(await voxelOf(`${file}:/section`), { size: [1, 4, 4], unit: 'nanometer' });
  assert.equal(await voxelOf(`${file}:/odd`), undefined, 'two sizes for three dimensions');
  assert.equal(await voxelOf(`${file}:/none`), undefined);
});

test('TIFF: ImageJ\'s unit and spacing, resolution tags in centimeters; inch (print) resolution and \'pixel\' give none', async () => {
  const dir = tempDir('voxel-tiff');
  const pages = [0, 1, 2].map(() => pageFromSlice(new Uint8Array(8 * 6), 8, 6));
  const write = (name: string, first: object, rest: object = {}) => {
    const path = join(dir, name);
    writeFileSync(path, buildTiff(pages.map((p, i) => ({ ...p, ...(i === 0 ? first : rest) }))));
    return path;
  };
  const res = (x: number, y: number, unit: number) => ({ resolution: { x: [x, 1], y: [y, 1], unit } });
  const cases: [string, object, VoxelSize | undefined][] = [
    ['imagej.tif', { ...res(250, 200, 1), description: 'ImageJ=1.54f\nimages=3\nslices=3\nunit=micron\nspacing=0.05\nloop=false\n' }, { size: [0.05, 0.005, 0.004], unit: 'micrometer' }],
    ['imagej-nm.tif', { ...res(1, 1, 1), description: 'ImageJ=1.54f\nunit=nm\n' }, { size: [1, 1, 1], unit: 'nanometer' }],
    ['imagej-cm-um.tif', { ...res(25, 25, 3), description: 'ImageJ=1.54f\nunit=um\nspacing=0.4\n' }, { size: [0.4, 400, 400], unit: 'micrometer' }],
    ['centimeter.tif', res(25000, 25000, 3), { size: [1, 0.4, 0.4], unit: 'micrometer' }],
    ['inch.tif', res(72, 72, 2), undefined],
    ['no-unit-tag.tif', { resolution: { x: [300, 1], y: [300, 1], unit: 2 } }, undefined],
    ['pixel.tif', { ...res(1, 1, 1), description: 'ImageJ=1.54f\nunit=pixel\n' }, undefined],
    ['none.tif', {}, undefined],
  ];
  for (const [name, tags, expected] of cases) {
    const path = write(name, tags);
    same(await voxelOf(path), expected, `${name} read as a stack`);
    const windowed = await openTiffWindowed(path);
    same(windowed.voxelSize, expected, `${name} read by window`);
    await windowed.close();
  }
});

test('TIFF outputs: resolution tags and ImageJ\'s description, which keeps emseg\'s record; without a voxel size nothing changes', async () => {
  const dir = tempDir('voxel-tiff-out');
  const stack = { width: 12, height: 10, depth: 3, data: new Uint8Array(360).map((_, i) => i % 251) };
  const record = JSON.stringify({ emseg: { close_gaps: { sigma: 2 } } });
  for (const v of [NM, { size: [0.05, 0.0037, 1 / 3], unit: 'micrometer' }] as VoxelSize[]) {
    const out = join(dir, `${v.unit}.tif`);
    await writeStack(out, stack, { voxelSize: v, description: record });
    const back = await openStack(out);
    same(back.voxelSize, { size: v.size.map((s) => Number(s.toPrecision(12))) as unknown as Vec3, unit: v.unit });
    assert.match(back.description!, /^ImageJ=1\.11a\n/);
    assert.doesNotMatch(back.description!, /images=/, 'no images= line: ImageJ would read the pages as one contiguous block');
    assert.deepEqual(descriptionAttributes(back.description), JSON.parse(record), 'the close_gaps record survives');
  }
  const folder = join(dir, 'slices');
  await writeStack(folder, stack, { format: 'tiff-folder', voxelSize: NM });
  same((await openStack(folder)).voxelSize, NM, 'every slice of a folder carries it (the first is read)');

  const plain = join(dir, 'plain.tif');
  await writeStack(plain, stack, { description: record });
  assert.equal((await openStack(plain)).description, record, 'no voxel size: the JSON record as before');
  assert.equal((await openStack(plain)).voxelSize, undefined);
  const before = readFileSync(plain);
  await writeStack(plain, stack, { description: record, overwrite: true, voxelSize: { size: [40, 4, 4] } });
  assert.deepEqual(readFileSync(plain), before, 'sizes without a unit are not written to a TIFF');
  assert.deepEqual(tiffResolution(NM), { x: [1, 4], y: [1, 4], unit: 1 }, 'ImageJ\'s convention: 1 / size, unit none');
});

test('blockwise predict and segment carry the voxel size to maps.zarr, cells.zarr and labels inside the maps; paths relative', async () => {
  const dir = tempDir('voxel-volume');
  const model = zooModel(dir, 'reference-net', 3);
  const input = await zarrInput(dir, NM);
  const notices: string[] = [];
  const job = { ...common, models: [model], input: join(input, '0'), membraneProb: true, dtype: 'uint8' as const, block: [1, 32, 32] as Vec3,
    notice: (l: string) => notices.push(l) };
  const maps = join(dir, 'maps.zarr');
  assert.ok((await runVolumePredict({ ...job, out: maps })).complete);
  assert.deepEqual(recorded(maps), { scales: [[50, 4, 4], [50, 8, 8]], units: ['nanometer', 'nanometer', 'nanometer'] });
  same(await voxelOf(maps), NM);
  assert.deepEqual([zattrs(maps).emseg.input, zattrs(maps).emseg.models], ['../raw.zarr/0', ['../model-reference-net']]);
  assert.equal(notices.length, 0);

  const cells = join(dir, 'cells.zarr');
  await runVolumeSegment({ pred: maps, out: cells, options: {}, block: [1, 32, 32], halo: 8 });
  same(await voxelOf(cells), NM);
  assert.equal(zattrs(cells).emseg.maps, '../maps.zarr');
  const inside = join(maps, 'labels', 'cells');
  await assert.rejects(runVolumeSegment({ pred: maps, out: inside, options: {}, block: [1, 32, 32], halo: 8, voxelSize: [40, 4, 4] }),
    (e) => isEmsegError(e, 'invalid-option') && e.path === '--voxel-size');
  await runVolumeSegment({ pred: maps, out: inside, options: {}, block: [1, 32, 32], halo: 8 });
  same(await voxelOf(inside), NM, 'labels take their image\'s scale');

  const over = join(dir, 'over.zarr');
  await runVolumePredict({ ...job, out: over, voxelSize: [45, 3, 3], unit: 'nm' });
  assert.deepEqual(recorded(over).scales[0], [45, 3, 3]);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /45 x 3 x 3 nanometer.*--voxel-size.*50 x 4 x 4 nanometer/);
  // A rerun resumes with the voxel size it was started with; another one is refused, not dropped in silence.
  assert.ok((await runVolumePredict({ ...job, out: over, voxelSize: [45, 3, 3], unit: 'nm' })).complete);
  await assert.rejects(runVolumePredict({ ...job, out: over }), (e) => isEmsegError(e, 'mismatch') && e.path === join(over, '.zattrs'));
  assert.deepEqual(recorded(over).scales[0], [45, 3, 3]);
  const converted = join(dir, 'cells-um.zarr');
  await runVolumeSegment({ pred: maps, out: converted, options: {}, block: [1, 32, 32], halo: 8, unit: 'micrometer' });
  same(await voxelOf(converted), { size: [0.05, 0.004, 0.004], unit: 'micrometer' });
  for (const out of [maps, cells, over, converted]) assertNowhere(out, dir);
});

test('an HDF5 volume with CREMI\'s resolution and one that says nothing: maps at 40 x 4 x 4 nm, and scale 1 without a unit', async () => {
  const dir = tempDir('voxel-h5-predict');
  const model = zooModel(dir, 'reference-net', 3);
  const file = join(dir, 'vol.h5');
  const data = await sampleVolume(SHAPE);
  await writeHdf5(file, [{ path: '/volumes/raw', data, shape: [...SHAPE], dtype: '<B', attrs: { resolution: [40, 4, 4] } },
    { path: '/raw', data, shape: [...SHAPE], dtype: '<B' }]);
  const job = { ...common, models: [model], membraneProb: false, dtype: 'uint8' as const, block: [1, 32, 32] as Vec3 };
  const maps = join(dir, 'maps.zarr');
  await runVolumePredict({ ...job, input: `${file}:/volumes/raw`, out: maps });
  assert.deepEqual(recorded(maps), { scales: [[40, 4, 4], [40, 8, 8]], units: ['nanometer', 'nanometer', 'nanometer'] });
  assert.equal(zattrs(maps).emseg.input, '../vol.h5:/volumes/raw');
  const plain = join(dir, 'plain.zarr');
  await runVolumePredict({ ...job, input: `${file}:/raw`, out: plain });
  assert.deepEqual(recorded(plain), { scales: [[1, 1, 1], [1, 2, 2]], units: [undefined, undefined, undefined] }, 'today\'s default');
  for (const out of [maps, plain]) assertNowhere(out, dir);
});

test('stack predict and segment to TIFF carry an ImageJ stack\'s calibration, and the close_gaps record still reaches segment', async () => {
  const dir = tempDir('voxel-stack');
  const shape: Vec3 = [2, 64, 64];
  const record = { sigma: 1, mergeThreshold: 0.3 };
  const model = zooModel(dir, 'reference-net', 5, { close_gaps: record });
  const images = join(dir, 'images.tif');
  const v: VoxelSize = { size: [0.05, 0.004, 0.004], unit: 'micrometer' };
  await writeStack(images, { width: shape[2], height: shape[1], depth: shape[0], data: await sampleVolume(shape) }, { voxelSize: v });
  const base = { ...common, models: [model], input: images, membraneProb: false, overwrite: false };
  for (const format of ['tiff', 'isbi'] as const) {
    const out = join(dir, `maps-${format}.tif`);
    await runPredict({ ...base, out, format });
    const maps = await openStack(out);
    same(maps.voxelSize, v, format);
    assert.deepEqual(descriptionAttributes(maps.description).emseg, { kind: 'membrane', polarity: 'membrane-low', close_gaps: { ...(await import('../src/segment/index.js')).DEFAULT_SEGMENT_OPTIONS, ...record } });
  }
  const notices: string[] = [];
  const labels = join(dir, 'cells.tif');
  await runSegment({ pred: join(dir, 'maps-tiff.tif'), out: labels, membraneProb: false, options: {}, overwrite: false, notice: (l) => notices.push(l) });
  same((await openStack(labels)).voxelSize, v);
  assert.ok(notices.some((l) => l.includes('close_gaps')), `the record was used: ${notices.join(' | ')}`);
  const folder = join(dir, 'cells/');
  await runSegment({ pred: join(dir, 'maps-tiff.tif'), out: folder, membraneProb: false, options: {}, overwrite: false, voxelSize: [0.03, 0.004, 0.004] });
  same((await openStack(folder)).voxelSize, { size: [0.03, 0.004, 0.004], unit: 'micrometer' }, 'the flag over the maps\' own');

  const png = join(dir, 'png-maps.tif');
  const { stack } = await writeVolume(dir, shape, await sampleVolume(shape), shape);
  await runPredict({ ...base, input: stack, out: png, format: 'tiff' });
  assert.equal((await openStack(png)).voxelSize, undefined, 'PNG slices say nothing, and so do the maps');
});

test('convert passes the source\'s voxel size, or the flags\' (said on stderr); the source is named relative to the output', async () => {
  const dir = tempDir('voxel-convert');
  const file = join(dir, 'vol.h5');
  await writeHdf5(file, [{ path: '/volumes/raw', data: await sampleVolume(SHAPE), shape: [...SHAPE], dtype: '<B', attrs: { resolution: [40, 4, 4] } }]);
  const src = await openVolume(`${file}:/volumes/raw`);
  const labels = await openVolume(`${file}:/volumes/raw`);
  const out = join(dir, 'vol.zarr');
  await convertToOmeZarr(src, out, { chunks: [1, 32, 32], labels });
  await Promise.all([src.close(), labels.close()]);
  assert.deepEqual(recorded(out).scales[0], [40, 4, 4]);
  same(await voxelOf(out), { size: [40, 4, 4], unit: 'nanometer' });
  same(await voxelOf(join(out, 'labels', 'cells')), { size: [40, 4, 4], unit: 'nanometer' }, 'the labels image too');
  assert.equal(zattrs(out).emseg.source, '../vol.h5:/volumes/raw');
  assertNowhere(out, dir);

  const cli = join(dir, 'cli.zarr');
  const r = emseg(['convert', `${file}:/volumes/raw`, cli, '--voxel-size', '30,4,4', '--unit', 'nm', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /emseg convert: voxel size 30 x 4 x 4 nanometer .*not the 40 x 4 x 4 nanometer/);
  same(await voxelOf(cli), { size: [30, 4, 4], unit: 'nanometer' });
  assertNowhere(cli, dir);
  const info = emseg(['info', cli, '--json', '--quiet']);
  assert.deepEqual((JSON.parse(info.stdout) as { voxelSize: unknown }).voxelSize, { size: [30, 4, 4], unit: 'nanometer' }, 'emseg info shows it');
  const bad = emseg(['convert', `${file}:/volumes/raw`, join(dir, 'bad.zarr'), '--unit', 'furlong']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--unit/);
});

test('emseg predict and segment take --voxel-size and --unit, and say when they differ from the file', async () => {
  const dir = tempDir('voxel-cli');
  const model = zooModel(dir, 'reference-net', 3);
  const input = await zarrInput(dir, NM);
  const maps = join(dir, 'maps.zarr');
  const p = emseg(['predict', '--model', model, '--input', input, '--out', maps, '--block', '1,32,32', '--voxel-size', '45,4,4', '--quiet']);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stderr, /emseg predict: voxel size 45 x 4 x 4 nanometer .*not the 50 x 4 x 4 nanometer/);
  same(await voxelOf(maps), { size: [45, 4, 4], unit: 'nanometer' }, '--voxel-size alone keeps the file\'s unit');
  const cells = join(dir, 'cells.zarr');
  const s = emseg(['segment', '--pred', maps, '--out', cells, '--block', '1,32,32', '--halo', '8', '--unit', 'um', '--quiet']);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stderr, /voxel size 0\.045 x 0\.004 x 0\.004 micrometer/);
  same(await voxelOf(cells), { size: [0.045, 0.004, 0.004], unit: 'micrometer' });
  for (const out of [maps, cells]) assertNowhere(out, dir);
});

test('paths in models\' and exports\' records are typed from the working folder, never absolute', () => {
  const dir = tempDir('voxel-paths');
  const abs = zooModel(dir, 'reference-net', 3);
  runPack({ models: [abs], out: join(dir, 'packed'), f16: false, overwrite: false });
  const meta = JSON.parse(readFileSync(join(dir, 'packed', 'meta.json'), 'utf8')) as { packed: { from: string } };
  assert.equal(meta.packed.from, typedPath(abs), 'emseg pack records its source as typed from here');
  assert.ok(!isAbsolute(typedPath(abs)));
  assert.equal(typedPath(abs), relative(process.cwd(), abs).split('\\').join('/'));
  assert.equal(typedPath('runs/a'), 'runs/a', 'a relative path as typed');
  assert.equal(typedCommand(['emseg', 'export', abs, `--out=${abs}.zip`]), `emseg export ${typedPath(abs)} --out=${typedPath(`${abs}.zip`)}`);
});
