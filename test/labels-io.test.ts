// Label volumes as people have them: uint64 (and signed) neuron ids in HDF5 and Zarr v2 / v3, read region by region
// through openLabels (ids above 2^53 exact), refused as images naming the file, shown by `emseg info` and scored by
// `emseg eval --seg`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import type { Region, Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { openLabels, openVolume } from '../src/io/registry.js';
import { Contingency3d, neuronScores } from '../src/metrics/index.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { writeHdf5 } from './helpers/volumes.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-labels-io-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const SHAPE: Vec3 = [3, 10, 12];
const N = SHAPE[0] * SHAPE[1] * SHAPE[2];
/** Ids above 2^53 that a float64 would round onto each other. */
const BIG = 2n ** 60n;

/** Neurons in bands along x, ids BIG + 1 .. BIG + 3 (and 0 on the first row): exact only as bigint. */
function bigIds(): BigUint64Array {
  return BigUint64Array.from({ length: N }, (_, i) => {
    const x = i % SHAPE[2];
    const y = Math.floor(i / SHAPE[2]) % SHAPE[1];
    return y === 0 ? 0n : BIG + BigInt(x < 4 ? 1 : x < 8 ? 2 : 3);
  });
}
const IDS = bigIds();

/** Voxels of `region` cut from the whole array, without any reader. */
function crop<T>(all: ArrayLike<T>, r: Region): T[] {
  const out: T[] = [];
  for (let z = r.start[0]; z < r.end[0]; z++) {
    for (let y = r.start[1]; y < r.end[1]; y++) {
      for (let x = r.start[2]; x < r.end[2]; x++) out.push(all[(z * SHAPE[1] + y) * SHAPE[2] + x]!);
    }
  }
  return out;
}

/** Runs `emseg` as a user would (bin/emseg.js in its own process) and returns its stdout. */
function runCli(args: string[]): string {
  return execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'emseg.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A Zarr v2 array written by hand (uncompressed chunks, C order): `dtype` a numpy type string such as '<i8'. */
function writeZarrV2(dir: string, dtype: string, data: BigInt64Array | Int32Array, chunks: Vec3): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.zarray'), JSON.stringify({ zarr_format: 2, shape: SHAPE, chunks, dtype, compressor: null, fill_value: 0,
    order: 'C', filters: null }));
  const Ctor = data.constructor as { new (n: number): BigInt64Array | Int32Array };
  for (let cz = 0; cz * chunks[0] < SHAPE[0]; cz++) {
    for (let cy = 0; cy * chunks[1] < SHAPE[1]; cy++) {
      for (let cx = 0; cx * chunks[2] < SHAPE[2]; cx++) {
        const chunk = new Ctor(chunks[0] * chunks[1] * chunks[2]);
        for (let z = 0; z < chunks[0]; z++) {
          for (let y = 0; y < chunks[1]; y++) {
            for (let x = 0; x < chunks[2]; x++) {
              const [gz, gy, gx] = [cz * chunks[0] + z, cy * chunks[1] + y, cx * chunks[2] + x];
              if (gz >= SHAPE[0] || gy >= SHAPE[1] || gx >= SHAPE[2]) continue;
              (chunk as Int32Array)[(z * chunks[1] + y) * chunks[2] + x] = (data as Int32Array)[(gz * SHAPE[1] + gy) * SHAPE[2] + gx]!;
            }
          }
        }
        writeFileSync(join(dir, `${cz}.${cy}.${cx}`), new Uint8Array(chunk.buffer));
      }
    }
  }
}

const H5 = join(TMP, 'gt.h5');
const H5_IDS = `${H5}:/volumes/labels/neuron_ids`;
await writeHdf5(H5, [
  { path: '/volumes/labels/neuron_ids', data: IDS, shape: [...SHAPE], dtype: '<Q', chunks: [1, 4, 5], attrs: { resolution: [40, 4, 4] } },
  { path: '/signed', data: BigInt64Array.from(IDS, (v) => BigInt.asIntN(64, v)), shape: [...SHAPE], dtype: '<q' },
  { path: '/negative', data: BigInt64Array.from({ length: N }, (_, i) => (i === 17 ? -1n : 5n)), shape: [...SHAPE], dtype: '<q' },
]);
const REGION: Region = { start: [1, 2, 3], end: [3, 9, 11] };

test('HDF5 uint64 and int64 ids: read by region through openLabels, exact above 2^53; refused as an image naming the dataset', async () => {
  const r = await openLabels(H5_IDS);
  try {
    assert.equal(r.labelType, 'uint64');
    assert.deepEqual([...r.shape], [...SHAPE]);
    const got = await r.readLabels(REGION);
    assert.ok(got instanceof BigUint64Array);
    assert.deepEqual([...got], crop(IDS, REGION));
    assert.ok(got.includes(BIG + 3n) && !got.includes(BIG + 4n));
  } finally {
    await r.close();
  }
  const s = await openLabels(`${H5}:/signed`);
  assert.equal(s.labelType, 'int64');
  assert.deepEqual([...(await s.readLabels(REGION))], crop(IDS, REGION));
  await s.close();
  const neg = await openLabels(`${H5}:/negative`);
  await assert.rejects(neg.readLabels({ start: [0, 0, 0], end: SHAPE }), refused('invalid-data', 'gt.h5:/negative'));
  await neg.close();
  await assert.rejects(openVolume(H5_IDS), refused('unsupported', 'gt.h5:/volumes/labels/neuron_ids'));
  const floats = join(TMP, 'floats.h5');
  await writeHdf5(floats, [{ path: '/f', data: new Float32Array(N), shape: [...SHAPE], dtype: '<f' }]);
  await assert.rejects(openLabels(`${floats}:/f`), refused('invalid-data', 'floats.h5:/f'));
});

test('Zarr v3 uint64 and Zarr v2 int64 / int32 ids read by region; uint64 refused as an image', async () => {
  registerZarrCodecs();
  const v3 = join(TMP, 'ids-v3.zarr');
  const store = new FileSystemStore(v3);
  await zarr.create(zarr.root(store), { shape: [...SHAPE], chunkShape: [2, 4, 5], dtype: 'uint64', fillValue: 0 as never,
    codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'gzip', configuration: { level: 1 } }] });
  const arr = await zarr.open.v3(zarr.root(store), { kind: 'array' }); // opened again: the fill value as a bigint
  await zarr.set(arr, null, { data: IDS, shape: [...SHAPE], stride: [SHAPE[1] * SHAPE[2], SHAPE[2], 1] } as never);
  const r3 = await openLabels(v3);
  assert.equal(r3.labelType, 'uint64');
  assert.deepEqual([...(await r3.readLabels(REGION))], crop(IDS, REGION));
  await assert.rejects(openVolume(v3), refused('unsupported', 'ids-v3.zarr/zarr.json'));

  const v2 = join(TMP, 'ids-v2.zarr');
  writeZarrV2(v2, '<i8', BigInt64Array.from(IDS, (v) => BigInt.asIntN(64, v)), [2, 3, 7]);
  const r2 = await openLabels(v2);
  assert.equal(r2.labelType, 'int64');
  assert.deepEqual([...(await r2.readLabels(REGION))], crop(IDS, REGION));
  const small = Int32Array.from({ length: N }, (_, i) => i % 7);
  const i4 = join(TMP, 'ids-i4.zarr');
  writeZarrV2(i4, '<i4', small, [3, 10, 12]);
  // A multiscale (NGFF 0.5) group of uint64 ids: a scale level is read as labels too.
  const pyramid = join(TMP, 'ids-pyramid.zarr');
  const pstore = new FileSystemStore(pyramid);
  const axes = ['z', 'y', 'x'].map((name) => ({ name, type: 'space' }));
  await zarr.create(zarr.root(pstore), { attributes: { ome: { version: '0.5', multiscales: [{ axes, datasets: [
    { path: 's0', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1] }] },
    { path: 's1', coordinateTransformations: [{ type: 'scale', scale: [1, 2, 2] }] }] }] } } });
  for (const [path, h, w] of [['s0', SHAPE[1], SHAPE[2]], ['s1', SHAPE[1] / 2, SHAPE[2] / 2]] as const) {
    await zarr.create(zarr.root(pstore).resolve(path), { shape: [SHAPE[0], h, w], chunkShape: [1, 5, 6], dtype: 'uint64', fillValue: 0 as never });
  }
  const level1 = await openLabels(pyramid, { scale: 1 });
  assert.equal(level1.labelType, 'uint64');
  assert.equal(level1.level, 1);
  assert.deepEqual([...level1.shape], [SHAPE[0], SHAPE[1] / 2, SHAPE[2] / 2]);
  const r4 = await openLabels(i4);
  const got = await r4.readLabels(REGION);
  assert.ok(got instanceof Uint32Array);
  assert.deepEqual([...got], crop(small, REGION));
});

test('emseg info shows a uint64 label volume: its type as labels only and its id range, exact as text above 2^53', async () => {
  const doc = JSON.parse(runCli(['info', H5_IDS, '--json', '--exact']));
  assert.equal(doc.kind, 'labels');
  assert.equal(doc.dtype, 'uint64');
  assert.deepEqual(doc.range, { min: 0, max: (BIG + 3n).toString(), exact: true, voxels: N });
  const text = runCli(['info', H5_IDS, '--quiet']);
  assert.match(text, /dtype: +uint64 \(read as labels only/);
});

test('emseg eval --seg on uint64 ids (HDF5 labels and segmentation): the scores of the same ids as small numbers', async () => {
  const seg = join(TMP, 'seg.h5');
  // Segmentation: neuron BIG+1 split at z = 1, BIG+2 and BIG+3 merged.
  const segIds = BigUint64Array.from(IDS, (v, i) => (v === BIG + 1n ? (Math.floor(i / 120) < 1 ? 7n : BIG + 9n) : v === 0n ? 0n : 2n ** 63n));
  await writeHdf5(seg, [{ path: '/ids', data: segIds, shape: [...SHAPE], dtype: '<Q' }]);
  const doc = JSON.parse(runCli(['eval', '--quiet', '--seg', `${seg}:/ids`, '--labels', H5_IDS, '--json']));
  const small = (a: BigUint64Array) => Uint32Array.from(a, (v) => (v === 0n ? 0 : Number(v % 1000n) + 1));
  const t = new Contingency3d();
  t.add(small(IDS), small(segIds), { shape: SHAPE });
  const want = neuronScores(t);
  assert.equal(doc.voi_split, want.voiSplit);
  assert.equal(doc.voi_merge, want.voiMerge);
  assert.equal(doc.arand, want.arand);
  assert.ok(doc.voi_split > 0 && doc.voi_merge > 0);
  assert.equal(doc.worst_merges[0].id, (2n ** 63n).toString());
});
