/**
 * Volume formats through the io registry: OME-Zarr written as NGFF 0.4 / Zarr v2 (layout checked against the
 * spec by reading its JSON and inflating its chunk files with node:zlib, independently of zarrita, since no
 * zarr-python is available here), read back through zarrita; Zarr v3 / NGFF 0.5; HDF5 made with h5wasm;
 * BigTIFF and classic TIFF by window; PNG stacks; labels and membrane-map metadata; emseg info / convert.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import { isEmsegError } from '../src/errors.js';
import { encodeTiff, readStack } from '../src/io/index.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { valueRange } from '../src/io/formats/inspect.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { downsample2x } from '../src/io/formats/pyramid.js';
import { openTiffWindowed } from '../src/io/formats/tiff-window.js';
import type { Region, Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { openVolume } from '../src/io/registry.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { pattern, writeBigTiff, writeHdf5 } from './helpers/volumes.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-volume-formats-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const IMAGES = join(SAMPLES, 'images');
const LABELS = join(SAMPLES, 'labels');
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, any>;

/** Voxels of `region` cut from a whole (z, y, x) array, computed here without any reader. */
function crop(all: ArrayLike<number>, shape: Vec3, r: Region): number[] {
  const out: number[] = [];
  for (let z = r.start[0]; z < r.end[0]; z++) {
    for (let y = r.start[1]; y < r.end[1]; y++) {
      for (let x = r.start[2]; x < r.end[2]; x++) out.push(all[(z * shape[1] + y) * shape[2] + x]!);
    }
  }
  return out;
}

test('a PNG stack converts to OME-Zarr whose files follow NGFF 0.4 / Zarr v2 (JSON and zlib chunks read without zarrita)', async () => {
  const src = await openVolume(IMAGES);
  assert.equal(src.format, 'stack');
  assert.deepEqual([...src.shape], [2, 512, 512]);
  const all = (await readStack(IMAGES)).data;
  const out = join(TMP, 'stack.zarr');
  await convertToOmeZarr(src, out, { chunks: [1, 200, 300], compression: 'zlib', voxelSize: [50, 4, 4], unit: 'nanometer' });

  assert.deepEqual(json(join(out, '.zgroup')), { zarr_format: 2 });
  const ms = json(join(out, '.zattrs')).multiscales[0];
  assert.equal(ms.version, '0.4');
  assert.deepEqual(ms.axes.map((a: { name: string; type: string; unit: string }) => [a.name, a.type, a.unit]), [['z', 'space', 'nanometer'], ['y', 'space', 'nanometer'], ['x', 'space', 'nanometer']]);
  assert.deepEqual(ms.datasets.map((d: { path: string }) => d.path), ['0', '1', '2']); // 512 -> 256 -> 128 fits one 200x300 chunk
  assert.deepEqual(ms.datasets[2].coordinateTransformations, [{ type: 'scale', scale: [50, 16, 16] }]);
  const za = json(join(out, '0', '.zarray'));
  assert.deepEqual(
    { shape: za.shape, chunks: za.chunks, dtype: za.dtype, order: za.order, fill: za.fill_value, sep: za.dimension_separator, comp: za.compressor.id, fmt: za.zarr_format },
    { shape: [2, 512, 512], chunks: [1, 200, 300], dtype: '|u1', order: 'C', fill: 0, sep: '/', comp: 'zlib', fmt: 2 },
  );
  // Every chunk, edge ones included, is stored whole (chunk shape) in C order under the key z/y/x.
  for (const [cz, cy, cx] of [[0, 0, 0], [1, 2, 1], [0, 1, 1]] as const) {
    const raw = inflateSync(readFileSync(join(out, '0', String(cz), String(cy), String(cx))));
    assert.equal(raw.length, 200 * 300, `chunk ${cz}/${cy}/${cx} size`);
    const r: Region = { start: [cz, cy * 200, cx * 300], end: [cz + 1, Math.min(cy * 200 + 200, 512), Math.min(cx * 300 + 300, 512)] };
    const want = crop(all, [2, 512, 512], r);
    const w = r.end[2] - r.start[2];
    const got: number[] = [];
    for (let y = 0; y < r.end[1] - r.start[1]; y++) got.push(...raw.subarray(y * 300, y * 300 + w));
    assert.deepEqual(got, want, `chunk ${cz}/${cy}/${cx} content`);
  }
  // Level 1 is the 2x2 mean of level 0, computed here by hand for one voxel.
  const l1 = inflateSync(readFileSync(join(out, '1', '1', '0', '0')));
  const at = (y: number, x: number) => all[512 * 512 + y * 512 + x]!;
  assert.equal(l1[7 * 300 + 9], Math.round((at(14, 18) + at(14, 19) + at(15, 18) + at(15, 19)) / 4));
  assert.ok(!readdirSync(TMP).some((n) => n.endsWith('.tmp')), 'no temporary folder left');
});

test('blosc OME-Zarr round-trips through the registry: unaligned regions, every level, `vol.zarr/1` == `vol.zarr` at scale 1', async () => {
  const src = await openVolume(IMAGES);
  const all = await src.readRegion({ start: [0, 0, 0], end: src.shape });
  const out = join(TMP, 'blosc.zarr');
  await convertToOmeZarr(src, out, { chunks: [1, 128, 128] });
  assert.equal(json(join(out, '0', '.zarray')).compressor.id, 'blosc');
  const v = await openVolume(out);
  assert.equal(v.format, 'zarr');
  assert.deepEqual(v.scales.map((s) => [...s.shape]), [[2, 512, 512], [2, 256, 256], [2, 128, 128]]);
  const r: Region = { start: [0, 100, 37], end: [2, 333, 301] };
  assert.deepEqual([...(await v.readRegion(r))], crop(all, src.shape, r));
  const byPath = await openVolume(join(out, '1'));
  const byScale = await openVolume(out, { scale: 1 });
  assert.equal(byPath.level, 1);
  const whole1: Region = { start: [0, 0, 0], end: [2, 256, 256] };
  const l1 = await byPath.readRegion(whole1);
  assert.deepEqual(l1, await byScale.readRegion(whole1));
  assert.deepEqual(l1, downsample2x(all, src.shape, 'mean'));
});

test('Zarr v3 with NGFF 0.5 metadata (zarr.json, attributes.ome) and 5-D t,c,z,y,x arrays read as z,y,x', async () => {
  registerZarrCodecs();
  const dir = join(TMP, 'v3.zarr');
  const store = new FileSystemStore(dir);
  const data = Uint16Array.from(pattern(3 * 20 * 30, 65535));
  const axes = ['t', 'c', 'z', 'y', 'x'].map((name) => ({ name, type: name === 't' ? 'time' : name === 'c' ? 'channel' : 'space' }));
  await zarr.create(zarr.root(store), {
    attributes: { ome: { version: '0.5', multiscales: [{ axes, datasets: [{ path: 's0', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1, 1, 1] }] }, { path: 's1', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1, 2, 2] }] }] }] } },
  });
  for (const [path, h, w] of [['s0', 20, 30], ['s1', 10, 15]] as const) {
    const arr = await zarr.create(zarr.root(store).resolve(path), { shape: [1, 1, 3, h, w], chunkShape: [1, 1, 2, 8, 16], dtype: 'uint16', codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'gzip', configuration: { level: 1 } }] });
    const vals = path === 's0' ? data : downsample2x(data, [3, 20, 30], 'mean');
    await zarr.set(arr, null, { data: vals, shape: [1, 1, 3, h, w], stride: [3 * h * w, 3 * h * w, h * w, w, 1] } as never);
  }
  const v = await openVolume(dir);
  assert.deepEqual([...v.shape], [3, 20, 30]);
  assert.equal(v.dtype, 'uint16');
  assert.deepEqual([...v.chunks], [2, 8, 16]);
  const r: Region = { start: [1, 3, 5], end: [3, 19, 29] };
  assert.deepEqual([...(await v.readRegion(r))], crop(data, [3, 20, 30], r));
  const s1 = await openVolume(dir, { scale: 1 });
  assert.deepEqual([...s1.shape], [3, 10, 15]);
  assert.deepEqual(s1.scales.map((s) => s.path), ['s0', 's1']);
});

test('a plain Zarr v2 array (no OME metadata): Fortran order, big-endian uint16, "." chunk keys, 2-D', async () => {
  const dir = join(TMP, 'plain.zarr');
  const [d, h, w] = [2, 3, 5];
  const values = pattern(d * h * w, 65535, 4);
  const bytes = Buffer.alloc(2 * values.length);
  for (let z = 0; z < d; z++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bytes.writeUInt16BE(values[(z * h + y) * w + x]!, 2 * (z + d * y + d * h * x));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.zarray'), JSON.stringify({ zarr_format: 2, shape: [d, h, w], chunks: [d, h, w], dtype: '>u2', compressor: null, fill_value: 0, order: 'F', filters: null }));
  writeFileSync(join(dir, '0.0.0'), bytes);
  const v = await openVolume(dir);
  assert.deepEqual([[...v.shape], v.dtype, v.scales.length], [[2, 3, 5], 'uint16', 1]);
  assert.deepEqual([...(await v.readRegion({ start: [0, 1, 1], end: [2, 3, 4] }))], crop(values, [d, h, w], { start: [0, 1, 1], end: [2, 3, 4] }));
  const flat = join(TMP, 'flat.zarr');
  mkdirSync(flat);
  writeFileSync(join(flat, '.zarray'), JSON.stringify({ zarr_format: 2, shape: [3, 5], chunks: [2, 2], dtype: '|u1', compressor: null, fill_value: 9, order: 'C', filters: null }));
  writeFileSync(join(flat, '0.0'), Buffer.from([1, 2, 3, 4]));
  // Absent chunks read as the fill value, as the spec says, when allowed (refused by default: test/volume-missing-chunks).
  const f = await openVolume(flat, { allowMissingChunks: true });
  assert.deepEqual([...(await f.readRegion({ start: [0, 0, 0], end: [1, 3, 5] }))], [1, 2, 9, 9, 9, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9]);
  assert.deepEqual(f.missingChunks?.(), { count: 5, atLeast: false, fill: 9 }); // 6 chunks of 2 x 2, one written
});

test('HDF5 datasets by path (file.h5:/group/raw): chunked+gzip 3-D and contiguous 2-D, read as hyperslabs; convert to OME-Zarr', async () => {
  const file = join(TMP, 'vol.h5');
  const raw = Uint16Array.from(pattern(4 * 33 * 47, 4000));
  const flat = Uint8Array.from(pattern(33 * 47, 255, 7));
  await writeHdf5(file, [
    { path: '/grp/raw', data: raw, shape: [4, 33, 47], dtype: '<H', chunks: [2, 16, 16] },
    { path: '/section', data: flat, shape: [33, 47], dtype: '<B' },
  ]);
  const v = await openVolume(`${file}:/grp/raw`);
  assert.equal(v.format, 'hdf5');
  assert.deepEqual([v.shape, v.chunks, v.dtype], [[4, 33, 47], [2, 16, 16], 'uint16']);
  const r: Region = { start: [1, 5, 9], end: [4, 30, 40] };
  assert.deepEqual([...(await v.readRegion(r))], crop(raw, [4, 33, 47], r));
  const s = await openVolume(`${file}:section`);
  assert.deepEqual([...s.shape], [1, 33, 47]);
  assert.deepEqual([...(await s.readRegion({ start: [0, 0, 0], end: [1, 33, 47] }))], [...flat]);
  const out = join(TMP, 'fromh5.zarr');
  await convertToOmeZarr(v, out, { chunks: [2, 16, 16] });
  await v.close();
  await s.close();
  const z = await openVolume(out);
  assert.deepEqual([...(await z.readRegion({ start: [0, 0, 0], end: [4, 33, 47] }))], [...raw]);
});

test('BigTIFF pages are read by window (strips), and a classic TIFF reads the same through the window reader as through the stack reader', async () => {
  const file = join(TMP, 'big.tif');
  const [w, h] = [45, 37];
  const pages = [0, 1, 2].map((p) => Uint16Array.from(pattern(w * h, 65535, p + 3)));
  writeBigTiff(file, pages, w, h, 5);
  const v = await openVolume(file);
  assert.equal(v.format, 'tiff');
  assert.deepEqual([...v.shape], [3, h, w]);
  assert.deepEqual([...v.chunks], [1, 5, w]);
  const all = pages.flatMap((p) => [...p]);
  const r: Region = { start: [1, 6, 3], end: [3, 23, 44] };
  assert.deepEqual([...(await v.readRegion(r))], crop(all, [3, h, w], r));
  await v.close();

  const classic = join(TMP, 'classic.tif');
  const slices = [0, 1].map((z) => Float32Array.from(pattern(64 * 48, 1000, z + 9), (x) => x / 1000));
  writeFileSync(classic, encodeTiff(slices, 64, 48));
  const windowed = await openTiffWindowed(classic);
  const stack = await openVolume(classic);
  assert.equal(stack.format, 'stack'); // small classic TIFFs stay with the stack reader
  const rr: Region = { start: [0, 10, 11], end: [2, 40, 60] };
  assert.deepEqual(await windowed.readRegion(rr), await stack.readRegion(rr));
  await windowed.close();
});

test('multi-page TIFF stacks read sections in any order, matching readStack', async () => {
  const files = [0, 1].map((f) => {
    const path = join(TMP, `pages${f}.tif`);
    writeFileSync(path, encodeTiff([0, 1, 2].map((z) => Uint16Array.from(pattern(40 * 30, 60000, 10 * f + z))), 40, 30));
    return path;
  });
  const v = await openVolume(files);
  const all = (await readStack(files)).data;
  assert.deepEqual([...v.shape], [6, 30, 40]);
  for (const z of [4, 1, 5, 0, 3, 2]) {
    const r: Region = { start: [z, 3, 2], end: [z + 1, 29, 37] };
    assert.deepEqual([...(await v.readRegion(r))], crop(all, [6, 30, 40], r), `section ${z}`);
  }
  await v.close();
});

test('labels become an OME-Zarr labels image (labels/cells, image-label metadata, mode pyramid); membrane maps record their polarity', async () => {
  const out = join(TMP, 'labelled.zarr');
  await convertToOmeZarr(await openVolume(IMAGES), out, { chunks: [1, 256, 256], labels: await openVolume(LABELS) });
  assert.deepEqual(json(join(out, 'labels', '.zattrs')), { labels: ['cells'] });
  const la = json(join(out, 'labels', 'cells', '.zattrs'));
  assert.deepEqual(la['image-label'].source, { image: '../../' });
  assert.equal(la.multiscales[0].type, 'mode');
  const cells = await openVolume(join(out, 'labels', 'cells'));
  const l0 = await cells.readRegion({ start: [0, 0, 0], end: cells.shape });
  const l1 = await (await openVolume(join(out, 'labels', 'cells'), { scale: 1 })).readRegion({ start: [0, 0, 0], end: [2, 256, 256] });
  for (let i = 0; i < l1.length; i += 97) {
    const [z, y, x] = [Math.floor(i / 65536), Math.floor((i % 65536) / 256), i % 256];
    const cell = [0, 1].flatMap((dy) => [0, 1].map((dx) => l0[(z * 512 + 2 * y + dy) * 512 + 2 * x + dx]!));
    assert.ok(cell.includes(l1[i]!), `label ${l1[i]} at ${z},${y},${x} comes from its 2x2 cell ${cell}`);
  }

  const map = join(TMP, 'map.zarr');
  const w = await createOmeZarr(map, { shape: [1, 64, 64], dtype: 'float32', chunks: [1, 64, 64], kind: 'membrane', polarity: 'membrane-high' });
  await w.writeRegion({ start: [0, 0, 0], end: [1, 64, 64] }, new Float32Array(64 * 64).fill(0.25));
  assert.deepEqual(json(join(map, '.zattrs')).emseg, { kind: 'membrane', polarity: 'membrane-high' });
  assert.equal(json(join(map, '0', '.zarray')).dtype, '<f4');
  await assert.rejects(createOmeZarr(join(TMP, 'nopol.zarr'), { shape: [1, 8, 8], dtype: 'uint8', chunks: [1, 8, 8], kind: 'membrane' }),
    (e) => isEmsegError(e, 'invalid-option') && e.path === 'polarity');
});

test('value range: exact reads every voxel, sampled reads a few chunks and says so', async () => {
  const v = await openVolume(IMAGES);
  const all = await v.readRegion({ start: [0, 0, 0], end: v.shape });
  const exact = await valueRange(v, true);
  assert.deepEqual([exact.min, exact.max, exact.exact], [Array.from(all).reduce((a, b) => Math.min(a, b)), Array.from(all).reduce((a, b) => Math.max(a, b)), true]);
  const out = join(TMP, 'range.zarr');
  await convertToOmeZarr(v, out, { chunks: [1, 64, 64] });
  const sampled = await valueRange(await openVolume(out), false);
  assert.equal(sampled.exact, false);
  assert.equal(sampled.voxels, 16 * 64 * 64);
  assert.ok(sampled.min >= exact.min && sampled.max <= exact.max);
});

test('emseg convert and emseg info on the command line', () => {
  const bin = join(REPO_ROOT, 'bin', 'emseg.js');
  const out = join(TMP, 'cli.zarr');
  const said = execFileSync('node', [bin, 'convert', IMAGES, out, '--chunks', '1,256,256', '--compression', 'gzip', '--quiet'], { encoding: 'utf8' });
  assert.match(said, /2 x 512 x 512 uint8, chunks 1 x 256 x 256, 2 levels/);
  const info = JSON.parse(execFileSync('node', [bin, 'info', out, '--json', '--exact'], { encoding: 'utf8' })) as { shape: number[]; dtype: string; scales: unknown[]; range: { exact: boolean; min: number } };
  assert.deepEqual([info.shape, info.dtype, info.scales.length, info.range.exact], [[2, 512, 512], 'uint8', 2, true]);
  const text = execFileSync('node', [bin, 'info', `${out}/1`, '--quiet'], { encoding: 'utf8' });
  assert.match(text, /shape: +2 x 256 x 256/);
  assert.match(text, /reading level 1/);
  assert.ok(existsSync(join(out, '1', '.zarray')));
});


test('a multi-page TIFF stack read by many regions at once (a blockwise run reads ahead) gives every section its own pages', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-stack-concurrent-'));
  const [w, h, depth] = [40, 30, 6];
  const pages = Array.from({ length: depth }, (_, z) => Uint16Array.from(pattern(w * h, 60000, 7 + z)));
  const path = join(dir, 'stack.tif');
  writeFileSync(path, encodeTiff(pages, w, h));
  const v = await openVolume(path);
  try {
    // Backwards and forwards at once: each read that restarts the page cursor overlaps the others.
    const order = [5, 0, 3, 1, 4, 2, 0, 5];
    const got = await Promise.all(order.map((z) => v.readRegion({ start: [z, 0, 0], end: [z + 1, h, w] })));
    order.forEach((z, i) => assert.deepEqual(got[i], pages[z], `section ${z}`));
  } finally {
    await v.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
