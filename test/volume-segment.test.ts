/**
 * Blockwise segmentation with halos and stitching agrees with whole-section segmentation on a 1024x1024 mosaic
 * of the ISBI sample sections (V_rand >= 0.999), with labels unique across the volume; the watershed options come
 * from the flags, else the model's tuned record that emseg predict left in the maps, else the defaults.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { EmsegError } from '../src/errors.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { readStack } from '../src/io/index.js';
import { openVolume } from '../src/io/registry.js';
import { OverlapCounter } from '../src/metrics/overlap.js';
import { vRand } from '../src/metrics/rand.js';
import { readRunStatus } from '../src/pipeline/markers.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { labelsOutput } from '../src/io/outputs.js';
import { DEFAULT_SEGMENT_OPTIONS, segmentSection } from '../src/segment/index.js';
import { UnionFind, mutualBestMatches } from '../src/segment/stitch.js';
import { SAMPLES } from './helpers/data.js';
import { writeMaps } from './helpers/segment-maps.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { sampleMaps } from './helpers/segment-maps.js';

const MOSAIC = 1024;
const SECTION = 512;
/** Weight of the label mask in the synthetic map (the rest is the raw image, so seeds and merges are not trivial). */
const LABEL_WEIGHT = 0.9;

/**
 * A 2 x 1024 x 1024 map volume (ISBI polarity, uint8): each section a 2x2 mosaic of the two samples' label
 * masks mixed with their raw images, the second section mirrored so the two differ.
 */
async function mosaicMaps(): Promise<Uint8Array> {
  const map = [];
  for (const name of ['23.png', '24.png']) {
    const raw = (await readStack(join(SAMPLES, 'images', name))).data as Uint8Array;
    const label = (await readStack(join(SAMPLES, 'labels', name))).data as Uint8Array;
    map.push(Uint8Array.from(raw, (r, i) => Math.round(LABEL_WEIGHT * label[i]! + (1 - LABEL_WEIGHT) * r)));
  }
  const out = new Uint8Array(2 * MOSAIC * MOSAIC);
  for (let z = 0; z < 2; z++) {
    for (let y = 0; y < MOSAIC; y++) {
      for (let x = 0; x < MOSAIC; x++) {
        const tile = (Math.floor(y / SECTION) + Math.floor(x / SECTION) + z) % 2;
        const sy = y % SECTION;
        const sx = z === 0 ? x % SECTION : SECTION - 1 - (x % SECTION);
        out[(z * MOSAIC + y) * MOSAIC + x] = map[tile]![sy * SECTION + sx]!;
      }
    }
  }
  return out;
}

function score(a: Int32Array, b: Int32Array): number {
  const max = (v: Int32Array) => v.reduce((m, x) => Math.max(m, x), 0);
  return vRand(new OverlapCounter().count(a, max(a), b, max(b))).score;
}

test('blockwise segmentation of 1024x1024 sections matches whole-section segmentation (V_rand >= 0.999)', async () => {
  const dir = tempDir('vsegment');
  const shape: Vec3 = [2, MOSAIC, MOSAIC];
  const maps = await mosaicMaps();
  const pred = join(dir, 'maps.zarr');
  const w = await createOmeZarr(pred, { shape, dtype: 'uint8', chunks: [1, 256, 256], kind: 'membrane', polarity: 'membrane-low', levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, maps);
  const out = join(dir, 'cells.zarr');
  const r = await runVolumeSegment({ pred, out, options: { ...DEFAULT_SEGMENT_OPTIONS }, block: [1, 320, 320], halo: 96 });
  assert.equal(r.plan.count, 2 * 4 * 4);
  assert.ok((r.joined ?? 0) > 0, 'cells crossing block borders were joined');
  assert.ok(r.complete);
  const cells = await openVolume(join(out, '0'));
  assert.equal(cells.dtype, 'uint32');
  const labels = (await cells.readRegion({ start: [0, 0, 0], end: shape })) as Uint32Array;
  await cells.close();
  const n = MOSAIC * MOSAIC;
  const seen = [new Set<number>(), new Set<number>()];
  for (let z = 0; z < 2; z++) {
    const plane = labels.subarray(z * n, (z + 1) * n);
    plane.forEach((l) => seen[z]!.add(l));
    const p = Float32Array.from(maps.subarray(z * n, (z + 1) * n), (v) => 1 - v / 255);
    const whole = segmentSection(p, MOSAIC, MOSAIC, DEFAULT_SEGMENT_OPTIONS).labels;
    const v = score(whole, Int32Array.from(plane));
    if (process.env.EMSEG_DEBUG) console.log(z, v, vRand(new OverlapCounter().count(whole, whole.reduce((m, x) => Math.max(m, x), 0), Int32Array.from(plane), plane.reduce((m, x) => Math.max(m, x), 0))));
    assert.ok(v >= 0.999, `section ${z}: V_rand ${v} between blockwise and whole-section segmentation`);
  }
  assert.ok(![...seen[0]!].some((l) => seen[1]!.has(l)), 'labels are unique across sections');
  assert.ok(!seen[0]!.has(0) && !seen[1]!.has(0), 'every voxel is labelled');
  assert.equal(seen[0]!.size + seen[1]!.size, r.cells, 'ids are consecutive');
});

test('stitching joins segments that are each other\'s largest overlap, and only those', () => {
  // Voxels seen by two blocks: a's 1 is b's 5 (mostly); a's 2 is split between b's 6 and 7; b's 7 is mostly a's 3.
  const a = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0];
  const b = [5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8];
  assert.deepEqual(mutualBestMatches(a, b).sort(), [[1, 5], [2, 6], [3, 7]]);
  const sets = new UnionFind();
  sets.grow(8);
  sets.union(5, 1);
  sets.union(7, 3);
  assert.deepEqual([...sets.compact()], [0, 1, 2, 3, 4, 1, 5, 3, 6]);
});

test('a map volume of another data type, or values outside [0, 1], is refused naming the volume', async () => {
  const dir = tempDir('vsegment-bad');
  const shape: Vec3 = [1, 40, 40];
  const u16 = join(dir, 'u16.zarr');
  await (await createOmeZarr(u16, { shape, dtype: 'uint16', chunks: shape, levels: 1 })).writeRegion({ start: [0, 0, 0], end: shape }, new Uint16Array(1600));
  await assert.rejects(runVolumeSegment({ pred: u16, out: join(dir, 'a.zarr'), options: { ...DEFAULT_SEGMENT_OPTIONS } }),
    (e) => e instanceof EmsegError && e.code === 'unsupported');
  const f = join(dir, 'f.zarr');
  await (await createOmeZarr(f, { shape, dtype: 'float32', chunks: shape, levels: 1 })).writeRegion({ start: [0, 0, 0], end: shape }, new Float32Array(1600).fill(2));
  // Values outside [0, 1] are found while a block is segmented: the block fails (named, never marked done).
  const r = await runVolumeSegment({ pred: f, out: join(dir, 'b.zarr'), options: { ...DEFAULT_SEGMENT_OPTIONS }, attempts: 1 });
  assert.equal(r.complete, false);
  assert.deepEqual(r.failed.map((b) => [b.grid, b.code]), [[[0, 0, 0], 'invalid-data']]);
  assert.match(r.failed[0]!.message, /voxel \[0,0,0\] is 2/);
  assert.equal((await readRunStatus(join(dir, 'b.zarr'))).done, 0);
});

/** Every file under `root` outside its labels/ folder, with its bytes. */
function imageFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (relative(root, p) === 'labels') continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

test('cells as an NGFF labels image inside the maps: the image\'s files untouched, foreign images and other shapes refused', async () => {
  const dir = tempDir('vsegment-labels');
  const shape: Vec3 = [2, 256, 256];
  const maps = join(dir, 'maps.zarr');
  await writeMaps(maps, shape, [1, 64, 64], 3);
  const before = imageFiles(maps);
  // `emseg segment --out` takes the blockwise path for IMAGE/labels/NAME only when IMAGE is a Zarr group.
  assert.ok(labelsOutput(join(maps, 'labels', 'cells')).blockwise && labelsOutput(join(dir, 'cells.zarr')).blockwise);
  assert.ok(!labelsOutput(join(dir, 'not-an-image', 'labels', 'cells')).blockwise, 'a plain folder stays a stack output');
  const job = { pred: maps, options: { ...DEFAULT_SEGMENT_OPTIONS }, block: [1, 64, 64] as Vec3, halo: 32 };
  const inside = await runVolumeSegment({ ...job, out: join(maps, 'labels', 'cells') });
  assert.ok(inside.complete);
  const after = imageFiles(maps);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no file of the image added or removed outside labels/');
  for (const [k, v] of before) assert.ok(v.equals(after.get(k)!), `${k} changed`);
  assert.deepEqual(JSON.parse(readFileSync(join(maps, 'labels', '.zattrs'), 'utf8')), { labels: ['cells'] });
  const attrs = JSON.parse(readFileSync(join(maps, 'labels', 'cells', '.zattrs'), 'utf8'));
  assert.deepEqual(attrs['image-label'], { version: '0.4', source: { image: '../../' } });
  assert.equal(attrs.multiscales[0].datasets.length, 3, 'as many levels as the image');
  assert.deepEqual((await openVolume(maps)).attributes.labels, ['cells']);
  // The same labels as a standalone cells.zarr, chunk for chunk.
  const alone = join(dir, 'alone', 'cells.zarr');
  await runVolumeSegment({ ...job, out: alone });
  const level0 = (root: string) => new Map([...imageFiles(root)].filter(([k]) => k.startsWith('0/')));
  const [a, b] = [level0(join(maps, 'labels', 'cells')), level0(alone)];
  assert.ok(a.size === b.size && a.size > 0 && [...a].every(([k, v]) => v.equals(b.get(k)!)));

  // An OME-Zarr image emseg did not write: refused (naming its .zattrs) unless asked; nothing written.
  const foreign = join(dir, 'foreign.zarr');
  cpSync(maps, foreign, { recursive: true });
  rmSync(join(foreign, 'labels'), { recursive: true });
  const fattrs = JSON.parse(readFileSync(join(foreign, '.zattrs'), 'utf8'));
  delete fattrs.emseg;
  writeFileSync(join(foreign, '.zattrs'), JSON.stringify(fattrs));
  await assert.rejects(runVolumeSegment({ ...job, out: join(foreign, 'labels', 'cells') }),
    (e) => e instanceof EmsegError && e.code === 'foreign-file' && e.path === join(foreign, '.zattrs'));
  assert.ok(!existsSync(join(foreign, 'labels')));
  assert.ok((await runVolumeSegment({ ...job, out: join(foreign, 'labels', 'cells'), foreignImage: true })).complete);

  // An image of another shape than the maps: refused naming the image, nothing written.
  const small = join(dir, 'small.zarr');
  await writeMaps(small, [2, 128, 128], [1, 64, 64]);
  await assert.rejects(runVolumeSegment({ ...job, out: join(small, 'labels', 'cells') }),
    (e) => e instanceof EmsegError && e.code === 'mismatch' && e.path === small);
  assert.ok(!existsSync(join(small, 'labels')));
});

test('predict records the model\'s tuned close_gaps in the maps; segment uses it for the options not given, says so, and refuses a damaged one', async () => {
  const dir = tempDir('vsegment-tuned');
  const shape: Vec3 = [1, 96, 96];
  const record = { sigma: 1, mergeThreshold: 0.3 };
  const model = zooModel(dir, 'reference-net', 5, { close_gaps: record });
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), shape);
  const predicted = join(dir, 'predicted.zarr');
  await runVolumePredict({ models: [model], input: join(zarr, '0'), out: predicted, membraneProb: false, tta: false, bf16: false,
    tile: 512, threads: 1, backend: 'auto', dtype: 'uint8', block: shape });
  const tuned = { ...DEFAULT_SEGMENT_OPTIONS, ...record };
  assert.deepEqual(((await openVolume(predicted)).attributes.emseg as { close_gaps?: unknown }).close_gaps, tuned);

  // Maps that carry a record (written directly, so the segments are not trivial), and the same maps without one.
  const data = await sampleMaps(shape);
  const maps = async (name: string, extra: Record<string, unknown>) => {
    const path = join(dir, name);
    await (await createOmeZarr(path, { shape, dtype: 'uint8', chunks: shape, levels: 1, kind: 'membrane', polarity: 'membrane-low', extra }))
      .writeRegion({ start: [0, 0, 0], end: shape }, data);
    return path;
  };
  const carrying = await maps('carrying.zarr', { close_gaps: record });
  const plain = await maps('plain.zarr', {});
  const cells = async (pred: string, out: string, options: object, notices: string[] = []) => {
    await runVolumeSegment({ pred, out: join(dir, out), options, notice: (l) => notices.push(l) });
    return (await openVolume(join(dir, out))).readRegion({ start: [0, 0, 0], end: shape });
  };
  const notices: string[] = [];
  const fromRecord = await cells(carrying, 'a.zarr', {}, notices);
  assert.deepEqual(fromRecord, await cells(plain, 'b.zarr', tuned), 'the record\'s options, with the defaults for the rest');
  assert.notDeepEqual(fromRecord, await cells(plain, 'c.zarr', {}), 'the defaults alone segment these maps differently');
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /sigma 1, .*merge threshold 0\.3.*flags override/);
  const overridden: string[] = [];
  await cells(carrying, 'd.zarr', record, overridden);
  assert.equal(overridden.length, 0, 'every recorded option given as a flag: nothing came from the maps');

  const damaged = await maps('damaged.zarr', { close_gaps: { mergeThreshold: 2 } });
  await assert.rejects(runVolumeSegment({ pred: damaged, out: join(dir, 'e.zarr'), options: {} }),
    (e) => e instanceof EmsegError && e.code === 'corrupt' && e.message.includes('close_gaps.mergeThreshold'));
});
