/**
 * Zarr metadata that cannot be read is refused when the array is opened, naming its metadata file: absurd or
 * malformed shapes and chunks, data types and codecs emseg does not decode (v2 and v3, and every level of a
 * multiscale image); `emseg info` never lists a volume's chunks. Absent chunk files of an input are refused
 * ('missing-chunk', naming the file) unless allowed, then read as the fill value with one notice giving their count.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmsegErrorCode } from '../src/errors.js';
import { valueRange } from '../src/io/formats/inspect.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { openVolume } from '../src/io/registry.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { ZarrSource } from '../src/viewer/zarr-source.js';
import { REPO_ROOT } from './helpers/data.js';
import { writeMaps } from './helpers/segment-maps.js';
import { sampleVolume, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { writeHdf5 } from './helpers/volumes.js';
import { refused } from './helpers/errors.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-zarr-guards-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const BIN = join(REPO_ROOT, 'bin', 'emseg.js');
/** Heap of the spawned CLI: a regression that lists chunks or allocates by the volume fails fast instead of swapping. */
const CLI_HEAP_MB = 256;
let n = 0;


const V2 = { zarr_format: 2, shape: [2, 64, 64], chunks: [1, 32, 32], dtype: '|u1', compressor: null, fill_value: 0, order: 'C', filters: null };

/** A bare Zarr v2 array (no chunks written) with these .zarray fields; returns the folder and its .zarray. */
function v2Array(fields: Record<string, unknown>): { dir: string; meta: string } {
  const dir = join(TMP, `a${n++}.zarr`);
  mkdirSync(dir);
  writeFileSync(join(dir, '.zarray'), JSON.stringify({ ...V2, ...fields }));
  return { dir, meta: join(dir, '.zarray') };
}

const V3 = {
  zarr_format: 3, node_type: 'array', shape: [2, 64, 64], data_type: 'uint8', fill_value: 0,
  chunk_grid: { name: 'regular', configuration: { chunk_shape: [1, 32, 32] } },
  chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
  codecs: [{ name: 'bytes', configuration: { endian: 'little' } }],
};

function v3Array(fields: Record<string, unknown>): { dir: string; meta: string } {
  const dir = join(TMP, `b${n++}.zarr`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'zarr.json'), JSON.stringify({ ...V3, ...fields }));
  return { dir, meta: join(dir, 'zarr.json') };
}

/** `emseg ARGS` with a bounded heap: exit status and the lines it wrote on stderr. */
function cli(...args: string[]): { status: number | null; stdout: string; errors: string[] } {
  const r = spawnSync('node', [`--max-old-space-size=${CLI_HEAP_MB}`, BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, errors: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

test('absurd or malformed shapes are refused when the array is opened, naming .zarray / zarr.json', async () => {
  const cases: [Record<string, unknown>, EmsegErrorCode][] = [
    [{ shape: [1e12, 1e12, 1e12], chunks: [64, 64, 64] }, 'too-large'], // one axis beyond 2^32
    [{ shape: [2 ** 31, 2 ** 31, 2 ** 31], chunks: [64, 64, 64] }, 'too-large'], // every axis fine, 2^93 voxels
    [{ shape: [-2, 64, 64] }, 'corrupt'],
    [{ shape: [2, 64.5, 64] }, 'corrupt'],
    [{ shape: [2, '64', 64] }, 'corrupt'],
    [{ shape: 'big' }, 'corrupt'],
    [{ shape: [0, 64, 64] }, 'empty'],
  ];
  for (const [fields, code] of cases) {
    const { dir, meta } = v2Array(fields);
    await assert.rejects(openVolume(dir), refused(code, meta), JSON.stringify(fields));
  }
  const { dir, meta } = v3Array({ shape: [-1, 64, 64] });
  await assert.rejects(openVolume(dir), refused('corrupt', meta));
  const huge = v3Array({ shape: [1e12, 1e12, 1e12] });
  await assert.rejects(openVolume(huge.dir), refused('too-large', huge.meta));
});

test('chunks of 0, of the wrong rank or larger than one decode may take are refused (v2, v3 and v3 shards)', async () => {
  const cases: [Record<string, unknown>, EmsegErrorCode][] = [
    [{ chunks: [0, 256, 256] }, 'corrupt'],
    [{ chunks: [-1, 32, 32] }, 'corrupt'],
    [{ chunks: [32, 32] }, 'corrupt'],
    [{ shape: [1, 65536, 65536], chunks: [1, 65536, 65536] }, 'too-large'], // a 4 GiB chunk
  ];
  for (const [fields, code] of cases) {
    const { dir, meta } = v2Array(fields);
    await assert.rejects(openVolume(dir), refused(code, meta), JSON.stringify(fields));
  }
  const zero = v3Array({ chunk_grid: { name: 'regular', configuration: { chunk_shape: [0, 256, 256] } } });
  await assert.rejects(openVolume(zero.dir), refused('corrupt', zero.meta));
  const sharded = (inner: number[]) => v3Array({ codecs: [{ name: 'sharding_indexed', configuration: { chunk_shape: inner,
    codecs: [{ name: 'bytes', configuration: { endian: 'little' } }], index_codecs: [{ name: 'bytes', configuration: { endian: 'little' } }] } }] });
  for (const inner of [[1, 0, 32], [1, 24, 32]]) { // a chunk of 0; chunks that do not tile the shard
    const { dir, meta } = sharded(inner);
    await assert.rejects(openVolume(dir), refused('corrupt', meta), JSON.stringify(inner));
  }
  const rect = v3Array({ chunk_grid: { name: 'rectilinear', configuration: { chunk_shapes: [[1, 1], [32, 32], [32, 32]] } } });
  await assert.rejects(openVolume(rect.dir), refused('unsupported', rect.meta));
});

test('codecs and data types emseg does not decode are refused as unsupported, naming the metadata file', async () => {
  const v2: Record<string, unknown>[] = [
    { compressor: { id: 'lzma' } },
    { filters: [{ id: 'quantize-of-my-own', digits: 3 }] },
    { dtype: '<i8' },
    { dtype: '<c8' },
  ];
  for (const fields of v2) {
    const { dir, meta } = v2Array(fields);
    await assert.rejects(openVolume(dir), refused('unsupported', meta), JSON.stringify(fields));
  }
  const v3: Record<string, unknown>[] = [
    { codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'lzma' }] },
    { codecs: [{ name: 'sharding_indexed', configuration: { chunk_shape: [1, 16, 16], codecs: [{ name: 'bytes' }, { name: 'lzma' }], index_codecs: [{ name: 'bytes' }] } }] },
    { data_type: 'int64' },
  ];
  for (const fields of v3) {
    const { dir, meta } = v3Array(fields);
    await assert.rejects(openVolume(dir), refused('unsupported', meta), JSON.stringify(fields));
  }
  // The codecs emseg decodes are accepted: blosc, zlib, gzip, lz4, zstd (v2), and filters such as shuffle and delta.
  for (const id of ['blosc', 'zlib', 'gzip', 'lz4', 'zstd']) await openVolume(v2Array({ compressor: { id } }).dir);
  await openVolume(v2Array({ filters: [{ id: 'delta', dtype: '|u1' }], compressor: { id: 'zlib', level: 1 } }).dir);
});

test('every level of a multiscale image is checked when the image is opened', async () => {
  const dir = join(TMP, 'levels.zarr');
  const w = await createOmeZarr(dir, { shape: [1, 64, 64], dtype: 'uint8', chunks: [1, 32, 32], levels: 2 });
  await w.writeRegion({ start: [0, 0, 0], end: [1, 64, 64] }, new Uint8Array(64 * 64));
  const meta = join(dir, '1', '.zarray');
  writeFileSync(meta, JSON.stringify({ ...JSON.parse(readFileSync(meta, 'utf8')), chunks: [0, 32, 32] }));
  await assert.rejects(openVolume(dir), refused('corrupt', meta));
  await assert.rejects(openVolume(join(dir, '0')), refused('corrupt', meta));
});

test('HDF5: a dataset with an extent of 0 is refused (empty), naming the dataset', async () => {
  const file = join(TMP, 'zero.h5');
  await writeHdf5(file, [{ path: '/raw', data: new Uint8Array(0), shape: [0, 4, 4], dtype: '<B' }]);
  await assert.rejects(openVolume(`${file}:/raw`), refused('empty', `${file}:/raw`));
});

test('emseg info: an absurd .zarray is one error line naming it, exit 1 (no out-of-memory crash, no hang)', () => {
  const huge = v2Array({ shape: [1e12, 1e12, 1e12], chunks: [64, 64, 64] });
  const zero = v2Array({ chunks: [0, 256, 256] });
  const negative = v2Array({ shape: [-2, 64, 64] });
  const codec = v2Array({ compressor: { id: 'lzma' } });
  for (const [args, meta] of [[[huge.dir], huge.meta], [['--exact', zero.dir], zero.meta], [[negative.dir], negative.meta], [[codec.dir], codec.meta]] as const) {
    const r = cli('info', '--quiet', ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.errors.join('\n')}`);
    assert.equal(r.errors.length, 1, r.errors.join('\n'));
    assert.ok(r.errors[0]!.startsWith(`emseg: ${meta}: `), r.errors[0]);
  }
});

test('emseg info samples a volume of 2^52 one-voxel chunks without listing them, and counts the absent chunks it read', () => {
  // Within the limits, but its chunk grid has 2^52 cells: listing them (as info did) runs out of memory at once.
  const { dir } = v2Array({ shape: [2 ** 20, 2 ** 16, 2 ** 16], chunks: [1, 1, 1], fill_value: 7 });
  const r = cli('info', '--json', dir);
  assert.equal(r.status, 0, r.errors.join('\n'));
  const info = JSON.parse(r.stdout) as { range: { min: number; max: number; exact: boolean; voxels: number; missingChunks: { count: number; fill: number } } };
  assert.deepEqual([info.range.min, info.range.max, info.range.exact, info.range.voxels], [7, 7, false, 16]);
  assert.deepEqual([info.range.missingChunks.count, info.range.missingChunks.fill], [16, 7]);
  const text = cli('info', '--quiet', dir);
  assert.match(text.stdout, /^missing: 16 of the chunk files read are absent/m);
});

test('info --exact reads in tiles: the same range as whole reads, and an exact voxel count', async () => {
  const dir = join(TMP, 'exact.zarr');
  const shape: Vec3 = [3, 70, 90];
  const data = Uint8Array.from({ length: 3 * 70 * 90 }, (_, i) => (i * 31) % 199 + 3);
  const w = await createOmeZarr(dir, { shape, dtype: 'uint8', chunks: [2, 32, 32], levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, data);
  const r = await valueRange(await openVolume(dir), true);
  assert.deepEqual([r.min, r.max, r.exact, r.voxels, r.missingChunks], [3, 201, true, 3 * 70 * 90, undefined]);
});

/** A 2 x 64 x 64 OME-Zarr (32 x 32 chunks) with the chunk z=1, y=0, x=1 deleted; `fill` as its fill value. */
async function withHole(fill = 0): Promise<{ dir: string; hole: string; data: Uint8Array }> {
  const dir = join(TMP, `hole${n++}.zarr`);
  const data = Uint8Array.from({ length: 2 * 64 * 64 }, (_, i) => (i * 13) % 250 + 1);
  const w = await createOmeZarr(dir, { shape: [2, 64, 64], dtype: 'uint8', chunks: [1, 32, 32], levels: 1, compression: 'zlib' });
  await w.writeRegion({ start: [0, 0, 0], end: [2, 64, 64] }, data);
  const meta = join(dir, '0', '.zarray');
  writeFileSync(meta, JSON.stringify({ ...JSON.parse(readFileSync(meta, 'utf8')), fill_value: fill }));
  const hole = join(dir, '0', '1', '0', '1');
  rmSync(hole);
  return { dir, hole, data };
}

const whole = { start: [0, 0, 0] as Vec3, end: [2, 64, 64] as Vec3 };
const inHole = (i: number) => Math.floor(i / 4096) === 1 && Math.floor((i % 4096) / 64) < 32 && i % 64 >= 32;

test('an absent chunk file is refused (missing-chunk, naming it); allowed, it reads as the fill value and is counted once', async () => {
  const { dir, hole, data } = await withHole(5);
  const v = await openVolume(dir);
  await assert.rejects(v.readRegion(whole), refused('missing-chunk', hole));
  assert.equal((await v.readRegion({ start: [0, 0, 0], end: [1, 64, 64] })).length, 64 * 64, 'regions away from it read');
  const allowed = await openVolume(dir, { allowMissingChunks: true });
  const got = await allowed.readRegion(whole);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], inHole(i) ? 5 : data[i], `voxel ${i}`);
  await allowed.readRegion(whole); // read twice: still one absent file
  assert.deepEqual(allowed.missingChunks?.(), { count: 1, atLeast: false, fill: 5 });

  // Zarr v3 (chunk keys c/z/y/x) the same way.
  const v3 = v3Array({ fill_value: 0 });
  writeFileSync(join(TMP, 'one.bin'), new Uint8Array(32 * 32));
  mkdirSync(join(v3.dir, 'c', '0', '0'), { recursive: true });
  cpSync(join(TMP, 'one.bin'), join(v3.dir, 'c', '0', '0', '0'));
  await assert.rejects((await openVolume(v3.dir)).readRegion(whole), refused('missing-chunk', join(v3.dir, 'c', '0', '0', '1')));
  const v3allowed = await openVolume(v3.dir, { allowMissingChunks: true });
  await v3allowed.readRegion(whole);
  assert.equal(v3allowed.missingChunks?.().count, 7);
});

test('emseg convert: an absent input chunk is one error line naming it (exit 1, no output); --allow-missing-chunks converts with one notice', async () => {
  const { dir, hole, data } = await withHole();
  const out = join(TMP, 'converted.zarr');
  const refused = cli('convert', '--quiet', dir, out);
  assert.equal(refused.status, 1);
  assert.equal(refused.errors.length, 1, refused.errors.join('\n'));
  assert.ok(refused.errors[0]!.startsWith(`emseg: ${hole}: `) && refused.errors[0]!.includes('--allow-missing-chunks'), refused.errors[0]);
  assert.throws(() => readFileSync(join(out, '.zattrs')), 'no output');
  const ok = cli('convert', '--quiet', '--allow-missing-chunks', dir, out);
  assert.equal(ok.status, 0, ok.errors.join('\n'));
  assert.deepEqual(ok.errors, [`emseg convert: ${dir}: 1 chunk file was absent and read as the fill value 0 (--allow-missing-chunks)`]);
  const got = await (await openVolume(out)).readRegion(whole);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], inHole(i) ? 0 : data[i], `voxel ${i}`);
  const info = cli('info', '--quiet', dir);
  assert.equal(info.status, 0, 'info shows absent chunks instead of refusing them');
  assert.match(info.stdout, /^missing: 1 of the chunk files read is absent/m);
});

test('predict: an input with an absent chunk fails the blocks that read it (missing-chunk); allowed, it predicts the fill value, with one notice', async () => {
  const dir = join(TMP, 'predict');
  const shape: Vec3 = [1, 64, 64];
  const data = await sampleVolume(shape);
  const { zarr } = await writeVolume(join(dir, 'holed'), shape, data, [1, 32, 32]);
  rmSync(join(zarr, '0', '0', '1', '1')); // y 32..63, x 32..63
  const zeroedData = data.map((v, i) => (Math.floor(i / 64) >= 32 && i % 64 >= 32 ? 0 : v));
  const zeroed = (await writeVolume(join(dir, 'zeroed'), shape, zeroedData, [1, 32, 32])).zarr;
  const model = zooModel(dir, 'reference-net', 3);
  const job = { models: [model], membraneProb: false, tta: false, bf16: false, tile: 512, backend: 'auto' as const, dtype: 'float32' as const, block: [1, 32, 32] as Vec3, attempts: 1 };
  const refused = await runVolumePredict({ ...job, input: join(zarr, '0'), out: join(dir, 'a.zarr') });
  assert.ok(!refused.complete && refused.failed.length > 0 && refused.failed.every((f) => f.code === 'missing-chunk'), JSON.stringify(refused.failed));
  const notices: string[] = [];
  const allowed = await runVolumePredict({ ...job, input: join(zarr, '0'), out: join(dir, 'b.zarr'), allowMissingChunks: true, notice: (m) => notices.push(m) });
  assert.ok(allowed.complete && allowed.failed.length === 0);
  assert.deepEqual(notices.filter((m) => m.includes('absent')), [`${join(zarr, '0')}: 1 chunk file was absent and read as the fill value 0 (--allow-missing-chunks)`]);
  const expected = await runVolumePredict({ ...job, input: join(zeroed, '0'), out: join(dir, 'c.zarr') });
  assert.ok(expected.complete);
  const read = async (p: string) => (await openVolume(p)).readRegion({ start: [0, 0, 0], end: shape });
  assert.deepEqual(await read(join(dir, 'b.zarr')), await read(join(dir, 'c.zarr')), 'the absent chunk was predicted as zeros');
});

test('segment: maps with an absent chunk fail its blocks (missing-chunk); allowed, they segment, with one notice', async () => {
  const dir = join(TMP, 'segment');
  mkdirSync(dir);
  const maps = join(dir, 'maps.zarr');
  await writeMaps(maps, [2, 64, 64], [1, 64, 64]);
  rmSync(join(maps, '0', '1', '0', '0'));
  const job = { pred: maps, options: {}, block: [1, 64, 64] as Vec3, halo: 16, attempts: 1 };
  const refused = await runVolumeSegment({ ...job, out: join(dir, 'a.zarr') });
  assert.ok(!refused.complete && refused.failed.length === 1 && refused.failed[0]!.code === 'missing-chunk', JSON.stringify(refused.failed));
  const notices: string[] = [];
  const allowed = await runVolumeSegment({ ...job, out: join(dir, 'b.zarr'), allowMissingChunks: true, notice: (l) => notices.push(l) });
  assert.ok(allowed.complete, JSON.stringify(allowed.failed));
  assert.deepEqual(notices.filter((m) => m.includes('absent')), [`${maps}: 1 chunk file was absent and read as the fill value 0 (--allow-missing-chunks)`]);
});

test('the viewer shows an output still being written: absent chunks are drawn as the fill value, not refused', async () => {
  const { dir, data } = await withHole(3);
  const source = await ZarrSource.open(dir, 'mean');
  const tile = await source.tile(1, 0, 0, 0, 64); // section 1, whose chunk y 0..31, x 32..63 is absent
  assert.deepEqual([tile.width, tile.height], [64, 64]);
  for (let i = 0; i < 64 * 64; i++) assert.equal(tile.data[i], inHole(4096 + i) ? 3 : data[4096 + i], `pixel ${i}`);
});
