import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runSegment } from '../src/pipeline/segment.js';
import { openStack, readStack, writeStack } from '../src/io/index.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { isEmsegError } from '../src/errors.js';
import { openVolume } from '../src/io/registry.js';
import { runPredict } from '../src/pipeline/predict.js';
import { sampleMaps } from './helpers/segment-maps.js';
import { sampleVolume, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { labelComponents4 } from '../src/image/components.js';
import {
  DEFAULT_SEGMENT_OPTIONS, closeMembraneGaps, gaussianBlur, mergeWeakBoundaries, segmentBoundaries, segmentGrid,
  segmentSection, seededWatershed, tuneSegmentation,
} from '../src/segment/index.js';
import { refused } from './helpers/errors.js';

const W = 40;
const H = 30;

/** Two cells side by side: P(membrane) 1 on the border and on a vertical wall at x = 20, 0.02 inside. */
function twoCells(gapRows: number[] = []): Float32Array {
  const p = new Float32Array(W * H).fill(0.02);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (x === 0 || y === 0 || x === W - 1 || y === H - 1) p[y * W + x] = 1;
      if (x >= 19 && x <= 21 && !gapRows.includes(y)) p[y * W + x] = 1;
    }
  }
  return p;
}

/** Number of 4-connected regions of P(membrane) <= t (the ISBI metrics' segments at that threshold). */
const regions = (p: Float32Array, t: number) => labelComponents4(Array.from(p, (v) => (v <= t ? 1 : 0)), W, H).count;

test('gaussianBlur equals the mirrored separable sum by its definition, at the borders and inside, on any shape', () => {
  // The definition, pixel by pixel: taps exp(-k^2 / 2 sigma^2) / sum over k = -r..r, r = ceil(3 sigma), rows then
  // columns, indices mirrored without repeating the edge pixel.
  const mirror = (i: number, n: number) => {
    if (n === 1) return 0;
    const m = ((i % (2 * n - 2)) + 2 * n - 2) % (2 * n - 2);
    return m < n ? m : 2 * n - 2 - m;
  };
  const reference = (d: Float32Array, h: number, w: number, sigma: number) => {
    const r = Math.max(1, Math.ceil(3 * sigma));
    const taps = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const sum = taps.reduce((a, b) => a + b, 0);
    const rows = new Float32Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rows[y * w + x] = taps.reduce((a, t, i) => a + (t / sum) * d[y * w + mirror(x + i - r, w)]!, 0);
    return Float32Array.from(rows, (_, p) => taps.reduce((a, t, i) => a + (t / sum) * rows[mirror(Math.floor(p / w) + i - r, h) * w + (p % w)]!, 0));
  };
  for (const [h, w, sigma] of [[37, 61, 2], [5, 3, 2], [1, 9, 1.5], [12, 1, 0.7], [40, 40, 5]] as const) {
    const d = Float32Array.from({ length: h * w }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
    const want = reference(d, h, w, sigma);
    const got = gaussianBlur(d, h, w, sigma);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `${h}x${w} sigma ${sigma} pixel ${i}`);
  }
});

test('gaussianBlur keeps a constant image, preserves mass away from borders, and sigma 0 copies', () => {
  const flat = new Float32Array(W * H).fill(0.3);
  for (const v of gaussianBlur(flat, H, W, 1.5)) assert.ok(Math.abs(v - 0.3) < 1e-6);
  const impulse = new Float32Array(W * H);
  impulse[15 * W + 20] = 1;
  const blurred = gaussianBlur(impulse, H, W, 1);
  assert.ok(Math.abs(blurred.reduce((a, b) => a + b, 0) - 1) < 1e-6);
  assert.ok(blurred[15 * W + 20]! > blurred[15 * W + 21]! && blurred[15 * W + 21]! > blurred[15 * W + 22]!);
  assert.deepEqual(gaussianBlur(impulse, H, W, 0), impulse);
  assert.throws(() => gaussianBlur(impulse, H, W, -1), refused('invalid-option', 'sigma'));
});

test('seededWatershed labels every pixel and splits two seeds along the ridge between them', () => {
  const p = twoCells();
  const seeds = new Int32Array(W * H);
  seeds[10 * W + 5] = 1;
  seeds[10 * W + 35] = 2;
  const labels = seededWatershed(p, seeds, H, W);
  assert.ok(labels.every((l) => l === 1 || l === 2));
  for (let y = 1; y < H - 1; y++) {
    assert.equal(labels[y * W + 10], 1);
    assert.equal(labels[y * W + 30], 2);
  }
  assert.deepEqual(seededWatershed(p, seeds, H, W), labels, 'deterministic');
});

test('segment boundaries cut every 4-path between segments', () => {
  const labels = Int32Array.from({ length: W * H }, (_, i) => 1 + Math.floor((i % W) / 7) + 6 * Math.floor(i / W / 9));
  const lines = segmentBoundaries(labels, H, W);
  const inside = labelComponents4(Array.from(lines, (b) => 1 - b), W, H);
  const perComponent = new Map<number, Set<number>>();
  for (let i = 0; i < labels.length; i++) {
    if (lines[i]) continue;
    if (!perComponent.has(inside.labels[i]!)) perComponent.set(inside.labels[i]!, new Set());
    perComponent.get(inside.labels[i]!)!.add(labels[i]!);
  }
  for (const s of perComponent.values()) assert.equal(s.size, 1, 'a region of non-boundary pixels spans two segments');
});

test('closeMembraneGaps closes a gap in a membrane, so thresholding no longer merges the two cells', () => {
  const gapped = twoCells([12, 13, 14]);
  assert.equal(regions(gapped, 0.5), 1, 'the gap merges the cells');
  const closed = closeMembraneGaps(gapped, H, W);
  assert.equal(regions(closed, 0.5), 2);
  assert.equal(segmentSection(gapped, H, W).count, 2);
  for (let i = 0; i < closed.length; i++) assert.ok(closed[i]! >= gapped[i]!, 'only membrane is added');
});

test('segments are merged across a boundary the map does not believe in, and kept across a strong one', () => {
  const weak = twoCells();
  for (let y = 1; y < H - 1; y++) for (let x = 19; x <= 21; x++) weak[y * W + x] = 0.3;
  const seeds = new Int32Array(W * H);
  seeds[10 * W + 5] = 1;
  seeds[10 * W + 35] = 2;
  const flooded = seededWatershed(weak, seeds, H, W);
  assert.equal(mergeWeakBoundaries(flooded, weak, W, 0.5).count, 1);
  assert.equal(mergeWeakBoundaries(flooded, weak, W, 0.2).count, 2);
  assert.equal(segmentSection(weak, H, W, { seedThreshold: 0.2, mergeThreshold: 0.5 }).count, 1);
  assert.equal(segmentSection(twoCells(), H, W, { seedThreshold: 0.2, mergeThreshold: 0.5 }).count, 2);
  assert.equal(segmentSection(new Float32Array(W * H).fill(1), H, W).count, 1, 'all membrane: one segment');
  assert.ok(DEFAULT_SEGMENT_OPTIONS.mergeThreshold > 0);
});

test('emseg segment writes uint32 labels and pictures, refuses to overwrite, and names a bad map', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-segment-'));
  const maps = join(dir, 'maps.tif');
  const isbi = Float32Array.from(twoCells([5]), (v) => 1 - v);
  await writeStack(maps, { width: W, height: H, depth: 2, data: Float32Array.from([...isbi, ...isbi]) });
  const out = join(dir, 'labels.tif');
  const pictures = join(dir, 'pictures');
  const o = { pred: maps, out, membraneProb: false, pictures, options: { ...DEFAULT_SEGMENT_OPTIONS }, overwrite: false };
  const { segments } = await runSegment(o);
  assert.deepEqual(segments, [2, 2]);
  const labels = await readStack(out);
  assert.deepEqual([labels.sampleType, labels.depth], ['uint32', 2]);
  assert.deepEqual(readdirSync(pictures).sort(), ['.emseg-manifest.json', '0000.png', '0001.png']);
  await assert.rejects(runSegment(o), refused('exists', 'pictures/0000.png'));
  const bad = join(dir, 'bad.tif');
  await writeStack(bad, { width: W, height: H, depth: 1, data: new Float32Array(W * H).fill(2) });
  await assert.rejects(runSegment({ ...o, pred: bad, out: join(dir, 'x.tif'), pictures: undefined }), refused('invalid-data', 'bad.tif'));
});

test('tuneSegmentation scores the maps as they are and every grid point; closing the gap wins on Rand error', () => {
  const gt = Uint8Array.from(twoCells(), (v) => (v === 1 ? 0 : 255));
  const proposal = Float32Array.from(twoCells([12, 13, 14]), (v) => 1 - v);
  const grid = segmentGrid({ sigma: [1], seedThreshold: [0.05, 0.1], minSeedArea: [5], mergeThreshold: [0, 0.6] });
  assert.equal(grid.length, 4);
  const rows = tuneSegmentation({ width: W, height: H, depth: 1, data: gt }, { width: W, height: H, depth: 1, data: proposal },
    grid, { metrics: ['rand_error', 'v_rand'] });
  assert.equal(rows.length, 5);
  assert.equal(rows[0]!.options, null);
  assert.ok(rows[0]!.scores.rand_error! > 0.3, 'the gap merges the two cells');
  for (const r of rows.slice(1)) assert.ok(r.scores.rand_error! < 0.01, `${JSON.stringify(r)}`);
});

test('extra seeds (on by default) give a thin cell that smoothing erases a segment of its own', () => {
  // A strip two pixels wide (x = 22, 23) between the wall at x = 19-21 and a second wall at x = 24.
  const p = twoCells();
  for (let y = 1; y < H - 1; y++) p[y * W + 24] = 1;
  const plain = segmentSection(p, H, W, { extraSeedThreshold: 0 });
  const extra = segmentSection(p, H, W);
  const stripLabel = (s: { labels: Int32Array }) => s.labels[15 * W + 22]!;
  assert.equal(plain.count, 2, 'the strip gets no seed and is flooded from a neighbour');
  assert.ok(stripLabel(plain) === plain.labels[15 * W + 10] || stripLabel(plain) === plain.labels[15 * W + 30]);
  assert.equal(extra.count, 3);
  for (const x of [10, 30]) assert.notEqual(stripLabel(extra), extra.labels[15 * W + x]);
  // Too small a region (below min-seed-area) is not seeded.
  assert.equal(segmentSection(p, H, W, { extraSeedThreshold: 0.5, minSeedArea: 2 * (H - 2) + 1 }).count, 2);
  // Where the map shows no membrane between the extra seed and its neighbour, the agglomeration still joins them.
  const noWall = twoCells();
  assert.equal(segmentSection(noWall, H, W).count, 2);
  assert.deepEqual(segmentGrid({ sigma: [1], seedThreshold: [0.05], minSeedArea: [5], mergeThreshold: [0.6],
    extraSeedThreshold: [0, 0.5] }).map((o) => o.extraSeedThreshold), [0, 0.5]);
});

test('predict records the model\'s tuned close_gaps in a TIFF map stack; segment uses it for the options not given', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-segment-tuned-'));
  const shape: Vec3 = [1, 96, 96];
  const record = { sigma: 1, mergeThreshold: 0.3 };
  const model = zooModel(dir, 'reference-net', 5, { close_gaps: record });
  const { stack } = await writeVolume(dir, shape, await sampleVolume(shape), shape);
  const tuned = { ...DEFAULT_SEGMENT_OPTIONS, ...record };
  for (const format of ['isbi', 'tiff'] as const) {
    const out = join(dir, `predicted-${format}.tif`);
    await runPredict({ models: [model], input: stack, out, format, membraneProb: false, tta: false, bf16: false, tile: 512,
      backend: 'auto', overwrite: false });
    assert.deepEqual(JSON.parse((await openStack(out)).description!), { emseg: { kind: 'membrane', polarity: 'membrane-low', close_gaps: tuned } }, format);
  }

  // Maps that carry a record (written directly, so the segments are not trivial), the same maps without one, and with
  // another program's description.
  const data = await sampleMaps(shape);
  const maps = async (name: string, description?: string) => {
    const path = join(dir, name);
    await writeStack(path, { width: shape[2], height: shape[1], depth: shape[0], data }, { description });
    return path;
  };
  const carrying = await maps('carrying.tif', JSON.stringify({ emseg: { close_gaps: record } }));
  const plain = await maps('plain.tif');
  const foreign = await maps('foreign.tif', 'ImageJ=1.54f\nimages=1\n');
  // Read as a volume (emseg info, blockwise segment), the stack shows the record as a map volume shows its .zattrs.
  const attributes = async (path: string) => (await openVolume(path)).attributes.emseg;
  assert.deepEqual(await attributes(carrying), { close_gaps: record });
  assert.equal(await attributes(foreign), undefined);
  const cells = async (pred: string, out: string, options: object, notices: string[] = []) => {
    await runSegment({ pred, out: join(dir, out), membraneProb: false, options, overwrite: false, notice: (l) => notices.push(l) });
    return (await readStack(join(dir, out))).data;
  };
  const notices: string[] = [];
  const fromRecord = await cells(carrying, 'a.tif', {}, notices);
  assert.deepEqual(fromRecord, await cells(plain, 'b.tif', tuned), 'the record\'s options, with the defaults for the rest');
  const defaults = await cells(plain, 'c.tif', {}, notices);
  assert.notDeepEqual(fromRecord, defaults, 'the defaults alone segment these maps differently');
  assert.deepEqual(await cells(foreign, 'd.tif', {}, notices), defaults, 'another program\'s description is no record');
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /sigma 1, .*merge threshold 0\.3.*flags override/);

  const damaged = await maps('damaged.tif', JSON.stringify({ emseg: { close_gaps: { mergeThreshold: 2 } } }));
  await assert.rejects(cells(damaged, 'e.tif', {}),
    (e) => isEmsegError(e, 'corrupt') && e.path === damaged && e.message.includes('close_gaps.mergeThreshold'));
  await assert.rejects(maps('non-ascii.tif', 'µm'), (e) => isEmsegError(e, 'invalid-data'));
});

test('TIFF maps record what their values mean, and segment reads them so (no --membrane-prob needed), as map volumes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-segment-polarity-'));
  const shape: Vec3 = [2, 96, 96];
  const low = await sampleMaps(shape); // ISBI polarity: 0 = membrane
  const high = Uint8Array.from(low, (v) => 255 - v); // the same maps as P(membrane)
  const stack = (data: Uint8Array) => ({ width: shape[2], height: shape[1], depth: shape[0], data });
  const recorded = join(dir, 'high.tif');
  await writeStack(recorded, stack(high), { description: JSON.stringify({ emseg: { kind: 'membrane', polarity: 'membrane-high' } }) });
  const isbi = join(dir, 'low.tif');
  await writeStack(isbi, stack(low));
  const segment = async (pred: string, name: string, membraneProb?: boolean) => {
    const out = join(dir, name);
    await runSegment({ pred, out, membraneProb, options: {}, overwrite: false, predIsMap: true });
    return (await readStack(out)).data;
  };
  const byRecord = await segment(recorded, 'by-record.tif');
  assert.deepEqual(byRecord, await segment(isbi, 'isbi.tif'), 'P(membrane) maps read by their record segment as the ISBI maps do');
  assert.deepEqual(byRecord, await segment(recorded, 'by-flag.tif', true));
  assert.notDeepEqual(byRecord, await segment(recorded, 'against-record.tif', false), 'the flag still overrides the record');
});
