/**
 * Chunk digests (src/io/formats/chunk-digests.ts): a Zarr chunk emseg wrote that changes on disk afterwards (one bit
 * flipped, same size) is refused on read with code 'corrupt' naming the chunk, for convert outputs (digest record
 * per array) and blockwise predictions (crc32 in the done markers), whose resume redoes the changed block; a Zarr
 * array written by another program (no digests) reads as before, changed bytes and all.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { isEmsegError } from '../src/errors.js';
import { crc32, crc32Table } from '../src/io/formats/chunk-digests.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import type { Vec3, VolumeReader } from '../src/io/formats/volume.js';
import { openVolume } from '../src/io/registry.js';
import { runVolumePredict, type VolumePredictJob } from '../src/pipeline/volume-predict.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');

/**
 * Flips one bit of the chunk's last byte: same size, and still decodable (the last bytes of an LZ4 block are
 * literals, and a blosc block stored as is is copied), so without digests the change would pass as data.
 */
function flipLastByte(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - 1]! ^= 0x10;
  writeFileSync(file, bytes);
}

async function readAll(path: string): Promise<number[]> {
  const v: VolumeReader = await openVolume(path);
  try {
    return Array.from(await v.readRegion({ start: [0, 0, 0], end: v.shape }));
  } finally {
    await v.close();
  }
}

const corruptAt = (file: string) => (err: unknown) => {
  assert.ok(isEmsegError(err, 'corrupt'), String(err));
  assert.equal(err.path, file);
  assert.match(err.message, /changed after emseg wrote it/);
  return true;
};

test('crc32 is zlib\'s CRC-32, with or without the native one', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(crc32Table(check), 0xcbf43926);
  assert.equal(crc32(check), 0xcbf43926);
  const data = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 131) % 251);
  assert.equal(crc32Table(data), crc32(data));
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) assert.equal(crc32(data), native(data) >>> 0);
});

test('convert: a flipped bit in a level-0, pyramid or labels chunk is refused on read with code corrupt, naming the chunk', async () => {
  const dir = tempDir('digests-convert');
  const out = join(dir, 'vol.zarr');
  await convertToOmeZarr(await openVolume(join(SAMPLES, 'images')), out, { chunks: [1, 128, 128], labels: await openVolume(join(SAMPLES, 'labels')) });
  const records = readdirSync(join(out, '.emseg', 'chunks')).sort();
  assert.deepEqual(records, ['0.crc32', '1.crc32', '2.crc32'], 'one record per array, in the hidden folder');
  assert.ok(existsSync(join(out, 'labels', 'cells', '.emseg', 'chunks', '0.crc32')));
  // The arrays' metadata stays plain Zarr v2 (no checksum codec foreign readers might not have).
  const zarray = JSON.parse(readFileSync(join(out, '0', '.zarray'), 'utf8')) as { filters: unknown; compressor: { id: string } };
  assert.deepEqual([zarray.filters, zarray.compressor.id], [null, 'blosc']);
  const before = await readAll(out);

  for (const chunk of [join(out, '0', '1', '2', '3'), join(out, '1', '0', '1', '0'), join(out, 'labels', 'cells', '0', '0', '3', '1')]) {
    const saved = readFileSync(chunk);
    flipLastByte(chunk);
    const array = dirname(dirname(dirname(chunk)));
    await assert.rejects(readAll(array), corruptAt(chunk));
    writeFileSync(chunk, saved);
    await readAll(array);
  }
  assert.deepEqual(await readAll(out), before);
  // The CLI says the same, with exit status 1.
  const chunk = join(out, '0', '0', '0', '0');
  flipLastByte(chunk);
  const run = spawnSync(process.execPath, [CLI, 'convert', out, join(dir, 'copy.zarr')], { encoding: 'utf8' });
  assert.equal(run.status, 1);
  assert.ok(run.stderr.includes(`${chunk}: chunk changed after emseg wrote it`), run.stderr);
});

test('a Zarr array written by another program (no digests) reads as before, changed bytes included', async () => {
  const dir = tempDir('digests-foreign');
  const arr = join(dir, 'foreign.zarr');
  mkdirSync(arr);
  writeFileSync(join(arr, '.zarray'), JSON.stringify({ zarr_format: 2, shape: [1, 4, 4], chunks: [1, 4, 4], dtype: '|u1', compressor: null,
    fill_value: 0, order: 'C', filters: null }));
  const values = Array.from({ length: 16 }, (_, i) => i * 10);
  writeFileSync(join(arr, '0.0.0'), Uint8Array.from(values));
  assert.deepEqual(await readAll(arr), values);
  flipLastByte(join(arr, '0.0.0'));
  assert.deepEqual(await readAll(arr), [...values.slice(0, 15), 150 ^ 0x10]);
  assert.ok(!existsSync(join(arr, '.emseg')) && !existsSync(join(dir, '.emseg')), 'reading writes nothing');

  // An emseg output whose hidden folder is gone is foreign data too.
  const out = join(dir, 'vol.zarr');
  await convertToOmeZarr(await openVolume(join(SAMPLES, 'images')), out, { chunks: [1, 256, 256], levels: 1 });
  rmSync(join(out, '.emseg'), { recursive: true });
  flipLastByte(join(out, '0', '0', '0', '0'));
  assert.equal((await readAll(out)).length, 2 * 512 * 512);
});

test('blockwise predict: a changed chunk (same size) is refused on read, and the rerun redoes only its block', async () => {
  const dir = tempDir('digests-predict');
  const shape: Vec3 = [2, 128, 128];
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), [1, 64, 64]);
  const job: VolumePredictJob = { models: [zooModel(dir, 'reference-net', 5)], input: join(zarr, '0'), out: join(dir, 'maps.zarr'),
    membraneProb: false, tta: false, bf16: false, tile: 512, backend: 'auto', dtype: 'uint8', block: [1, 64, 64] };
  const first = await runVolumePredict(job);
  assert.ok(first.complete);
  const marker = JSON.parse(readFileSync(join(job.out, '.emseg', 'blocks', '1.0.1.done.json'), 'utf8')) as { files: { path: string; crc32: number }[] };
  const chunk = join(job.out, '0', '1', '0', '1');
  assert.deepEqual(marker.files.map((f) => f.path), ['0/1/0/1']);
  assert.equal(marker.files[0]!.crc32, crc32(readFileSync(chunk)));
  const good = readFileSync(chunk);
  const maps = await readAll(job.out);

  flipLastByte(chunk);
  assert.equal(readFileSync(chunk).length, good.length);
  await assert.rejects(readAll(join(job.out, '0')), corruptAt(chunk));
  // Segmenting the maps refuses them too (the block fails, and the command exits non-zero).
  const seg = spawnSync(process.execPath, [CLI, 'segment', '--pred', job.out, '--out', join(dir, 'cells.zarr'), '--quiet'], { encoding: 'utf8' });
  assert.equal(seg.status, 1);
  assert.match(seg.stderr, /chunk changed after emseg wrote it/);

  const again = await runVolumePredict(job);
  assert.deepEqual([again.computed, again.skipped, again.failed.length], [1, first.plan.count - 1, 0]);
  assert.ok(readFileSync(chunk).equals(good), 'the block is computed again, to the same bytes');
  assert.deepEqual(await readAll(job.out), maps);
});
