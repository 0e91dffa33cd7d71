/**
 * Hostile volumes: truncated chunks, wrong data types, missing .zarray / zarr.json, broken JSON, an HDF5 file
 * asked for a dataset it lacks, image and labels of different shapes. Each gives an EmsegError with a stable
 * code naming the file, array or dataset, and a failed conversion leaves no output and no temporary folder.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { EmsegError } from '../src/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../src/io/registry.js';
import { SAMPLES } from './helpers/data.js';
import { writeHdf5 } from './helpers/volumes.js';
import { refused } from './helpers/errors.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-volume-hostile-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;

/** A fresh 2 x 64 x 64 uint8 OME-Zarr with 32 x 32 chunks (zlib unless told). */
async function small(compression: 'zlib' | 'none' = 'zlib'): Promise<string> {
  const dir = join(TMP, `v${n++}.zarr`);
  const w = await createOmeZarr(dir, { shape: [2, 64, 64], dtype: 'uint8', chunks: [1, 32, 32], compression, levels: 2 });
  await w.writeRegion({ start: [0, 0, 0], end: [2, 64, 64] }, Uint8Array.from({ length: 2 * 64 * 64 }, (_, i) => (i * 7) % 251));
  await w.buildPyramid();
  return dir;
}


const whole = { start: [0, 0, 0] as const, end: [2, 64, 64] as const };

test('a truncated compressed chunk, and a truncated uncompressed one, are corrupt errors naming the chunk file', async () => {
  for (const compression of ['zlib', 'none'] as const) {
    const dir = await small(compression);
    const chunk = join(dir, '0', '1', '1', '0');
    truncateSync(chunk, Math.floor(readFileSync(chunk).length / 2));
    const v = await openVolume(dir);
    await assert.rejects(v.readRegion(whole), refused('corrupt', chunk));
    // Regions that do not touch the damaged chunk still read.
    assert.equal((await v.readRegion({ start: [0, 0, 0], end: [1, 64, 64] })).length, 64 * 64);
  }
});

test('blosc: a truncated chunk stored uncompressed (incompressible data), a truncated compressed one and garbage are corrupt, naming the chunk', async () => {
  const dir = join(TMP, 'blosc.zarr');
  const w = await createOmeZarr(dir, { shape: [1, 64, 64], dtype: 'uint8', chunks: [1, 32, 32], compression: 'blosc', levels: 1 });
  const noise = new Uint8Array(randomBytes(32 * 64));
  const smooth = Uint8Array.from({ length: 32 * 64 }, (_, i) => i % 64);
  await w.writeRegion({ start: [0, 0, 0], end: [1, 32, 64] }, noise); // blosc stores these chunks as they are
  await w.writeRegion({ start: [0, 32, 0], end: [1, 64, 64] }, smooth);
  const stored = join(dir, '0', '0', '0', '0');
  const packed = join(dir, '0', '0', '1', '0');
  assert.ok(readFileSync(stored).length > 32 * 32, 'the noise chunk is stored uncompressed');
  assert.ok(readFileSync(packed).length < 32 * 32, 'the smooth chunk is compressed');
  const v = await openVolume(dir);
  const region = (y: number, x: number) => ({ start: [0, y, x] as const, end: [1, y + 32, x + 32] as const });
  assert.deepEqual([...(await v.readRegion(region(0, 0))).subarray(0, 32)], [...noise.subarray(0, 32)], 'intact chunks read');
  truncateSync(stored, 600);
  await assert.rejects(v.readRegion(region(0, 0)), refused('corrupt', stored));
  truncateSync(packed, Math.floor(readFileSync(packed).length / 2));
  await assert.rejects(v.readRegion(region(32, 0)), refused('corrupt', packed));
  const other = join(dir, '0', '0', '0', '1');
  writeFileSync(other, 'this is not a blosc chunk at all');
  await assert.rejects(v.readRegion(region(0, 32)), refused('corrupt', other));
  // A well-formed blosc chunk of another size (a chunk from a differently shaped array) is refused too.
  const foreign = join(TMP, 'blosc-small.zarr');
  const fw = await createOmeZarr(foreign, { shape: [1, 16, 16], dtype: 'uint8', chunks: [1, 16, 16], compression: 'blosc', levels: 1 });
  await fw.writeRegion({ start: [0, 0, 0], end: [1, 16, 16] }, new Uint8Array(randomBytes(256)));
  const swapped = join(dir, '0', '0', '1', '1');
  cpSync(join(foreign, '0', '0', '0', '0'), swapped);
  await assert.rejects(v.readRegion(region(32, 32)), refused('corrupt', swapped));
});

test('a zlib chunk that inflates past its chunk size (a compression bomb) is refused, not inflated', async () => {
  const dir = await small('zlib');
  const chunk = join(dir, '0', '0', '0', '1');
  writeFileSync(chunk, deflateSync(new Uint8Array(64 * 2 ** 20))); // 64 MiB of zeros for a 1 KiB chunk
  const v = await openVolume(dir);
  await assert.rejects(v.readRegion(whole), refused('corrupt', chunk));
});

test('an unsupported data type is refused by name; a chunk holding another data type than .zarray says is corrupt', async () => {
  const dir = await small('none');
  const meta = join(dir, '0', '.zarray');
  const zarray = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, unknown>;
  writeFileSync(meta, JSON.stringify({ ...zarray, dtype: '<c8' }));
  await assert.rejects(openVolume(join(dir, '0')), refused('unsupported', meta));
  writeFileSync(meta, JSON.stringify({ ...zarray, dtype: '<i8' }));
  await assert.rejects(openVolume(dir), refused('unsupported', meta));
  writeFileSync(meta, JSON.stringify({ ...zarray, dtype: '<u2' })); // chunks hold 1-byte values: half the bytes needed
  const v = await openVolume(dir);
  await assert.rejects(v.readRegion(whole), refused('corrupt', join(dir, '0', '0', '0', '0')));
});

test('missing .zarray, missing zarr.json, broken JSON and a missing scale level are named', async () => {
  const dir = await small();
  rmSync(join(dir, '1', '.zarray'));
  rmSync(join(dir, '1', '.zattrs'));
  await assert.rejects(openVolume(join(dir, '1')), refused('corrupt', join(dir, '1')));
  await assert.rejects(openVolume(dir), refused('corrupt', join(dir, '1'))); // level shapes are read for scales
  await assert.rejects(openVolume(dir, { scale: 5 }), refused('not-found', dir));

  const v3 = join(TMP, 'nozarrjson.zarr');
  cpSync(dir, v3, { recursive: true });
  rmSync(join(v3, '.zgroup'));
  rmSync(join(v3, '.zattrs'));
  writeFileSync(join(v3, 'zarr.json'), JSON.stringify({ zarr_format: 3, node_type: 'group', attributes: { ome: { version: '0.5', multiscales: [{ axes: ['z', 'y', 'x'], datasets: [{ path: '0' }] }] } } }));
  await assert.rejects(openVolume(v3), refused('corrupt', join(v3, '0'))); // a v3 image's level 0 needs zarr.json; .zarray is not taken
  const broken = await small();
  writeFileSync(join(broken, '.zattrs'), '{"multiscales": [');
  await assert.rejects(openVolume(broken), refused('corrupt', join(broken, '.zattrs')));
});

test('HDF5: a wrong dataset path lists what the file holds; a file without a dataset part, a float64 and a 4-D dataset are refused', async () => {
  const file = join(TMP, 'h.h5');
  await writeHdf5(file, [
    { path: '/volumes/raw', data: new Uint8Array(2 * 4 * 4), shape: [2, 4, 4], dtype: '<B' },
    { path: '/volumes/f64', data: new Float64Array(16), shape: [4, 4], dtype: '<d' },
    { path: '/four', data: new Uint8Array(16), shape: [1, 2, 2, 4], dtype: '<B' },
  ]);
  await assert.rejects(openVolume(`${file}:/volumes/nope`), (e) => {
    refused('not-found', `${file}:/volumes/nope`)(e);
    assert.match((e as Error).message, /\/volumes\/raw/);
    return true;
  });
  await assert.rejects(openVolume(`${file}:/volumes`), refused('not-found', `${file}:/volumes`));
  await assert.rejects(openVolume(file), refused('not-found', file));
  await assert.rejects(openVolume(`${file}:/volumes/f64`), refused('unsupported', `${file}:/volumes/f64`));
  await assert.rejects(openVolume(`${file}:/four`), refused('unsupported', `${file}:/four`));
  const notH5 = join(TMP, 'fake.h5');
  writeFileSync(notH5, 'not hdf5 at all');
  await assert.rejects(openVolume(`${notH5}:/raw`), refused('corrupt', notH5));
  await assert.rejects(openVolume(join(TMP, 'absent.h5:/raw')), refused('not-found', join(TMP, 'absent.h5')));
});

test('image and labels of different shapes are refused before anything is written; a conversion that fails midway leaves nothing', async () => {
  const out = join(TMP, 'mismatch.zarr');
  const labels = await openVolume(join(SAMPLES, 'labels', '23.png'));
  await assert.rejects(convertToOmeZarr(await openVolume(join(SAMPLES, 'images')), out, { labels }), refused('mismatch', labels.path));
  assert.ok(!existsSync(out));

  const bad = await small();
  truncateSync(join(bad, '0', '1', '0', '1'), 3);
  const out2 = join(TMP, 'midway.zarr');
  await assert.rejects(convertToOmeZarr(await openVolume(join(bad, '0')), out2, { chunks: [1, 32, 32] }), refused('corrupt', join(bad, '0', '1', '0', '1')));
  assert.ok(!existsSync(out2), 'no output under the final name');
  assert.deepEqual(readdirSync(TMP).filter((f) => f.includes('midway')), [], 'no temporary folder left');

  await assert.rejects(convertToOmeZarr(await openVolume(join(SAMPLES, 'images')), bad), refused('exists', bad));
});

test('a band that fails while the previous band is being written is reported by the conversion, not as an unhandled rejection', async () => {
  const real = await openVolume(join(await small(), '0'));
  const bad = join(TMP, 'bad-band');
  let reads = 0;
  // Every read after the first fails at once, so it settles while the first band's chunks are still being written.
  const failing = { ...real, readRegion: (region: Parameters<typeof real.readRegion>[0]) =>
    reads++ === 0 ? real.readRegion(region) : Promise.reject(new EmsegError('corrupt', bad, 'damaged band')) };
  const out = join(TMP, 'bad-band.zarr');
  await assert.rejects(convertToOmeZarr(failing, out, { chunks: [1, 32, 32] }), refused('corrupt', bad));
  assert.ok(reads >= 2, 'the second band was read ahead');
  assert.ok(!existsSync(out));
});

test('regions outside the volume and writes that are not chunk-aligned are refused', async () => {
  const dir = await small();
  const v = await openVolume(dir);
  await assert.rejects(v.readRegion({ start: [0, 0, 0], end: [3, 64, 64] }), refused('invalid-option', dir));
  await assert.rejects(v.readRegion({ start: [0, 10, 0], end: [1, 10, 64] }), refused('invalid-option', dir));
  const w = await createOmeZarr(join(TMP, 'align.zarr'), { shape: [1, 64, 64], dtype: 'uint8', chunks: [1, 32, 32] });
  await assert.rejects(w.writeRegion({ start: [0, 16, 0], end: [1, 48, 32] }, new Uint8Array(32 * 32)), refused('invalid-option', join(TMP, 'align.zarr', '0')));
  await assert.rejects(w.writeRegion({ start: [0, 0, 0], end: [1, 32, 32] }, new Uint8Array(5)), refused('invalid-option', join(TMP, 'align.zarr', '0')));
});
