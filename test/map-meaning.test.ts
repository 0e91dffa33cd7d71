/**
 * One vocabulary for maps (src/image/map-meaning.ts): the record emseg writes with a map is read back as it was
 * written (bytes unchanged), a map's meaning is decided by one function (flag, else record, else ISBI) for stack and
 * volume segmentation alike, and a multi-channel map (a channel axis `c` with per-channel meaning) is parsed and
 * refused, naming its file, where a single-channel membrane map is needed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ISBI_POLARITY, MEMBRANE_POLARITY, convertValue, decideMapPolarity, flagPolarity, fromMembrane, fromMembraneCopy, fromMembraneInPlace,
  meaningRecord, multiChannelRecord, parseMapRecord, polarityOf, toMembrane, toMembraneCopy, toMembraneInPlace, type ChannelMeaning,
} from '../src/image/map-meaning.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { readStack, writeIsbiSubmission, writeStack } from '../src/io/index.js';
import { openVolume } from '../src/io/registry.js';
import { mapsDescription } from '../src/pipeline/close-gaps.js';
import { runSegment } from '../src/pipeline/segment.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { loadInputs } from '../src/report/load.js';
import { ViewModel } from '../src/viewer/model.js';
import { refused } from './helpers/errors.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { sampleMaps } from './helpers/segment-maps.js';
import { tempDir } from './helpers/volume-predict-fixture.js';

const AFFINITIES: ChannelMeaning[] = [
  { kind: 'membrane', polarity: 'membrane-high', name: 'membrane' },
  { kind: 'affinity', offset: [-1, 0, 0] },
  { kind: 'affinity', offset: [0, -1, 0] },
];

test('conversions to and from P(membrane) are 1 - v across polarities and the identity within one, in place and copying', () => {
  const values = Float32Array.from([0, 1e-9, 0.1, 0.5, 0.7, 1]);
  const flipped = values.map((v) => 1 - v); // what the hand-written inversions computed
  assert.equal(toMembrane(0.25, 'membrane-low'), 0.75);
  assert.equal(toMembrane(0.25, 'membrane-high'), 0.25);
  assert.equal(fromMembrane(0.25, 'membrane-low'), 0.75);
  assert.equal(fromMembrane(0.25, 'membrane-high'), 0.25);
  assert.equal(convertValue(0.25, 'membrane-low', 'membrane-low'), 0.25);
  assert.deepEqual(toMembraneCopy(values, ISBI_POLARITY), flipped);
  assert.deepEqual(fromMembraneCopy(values, ISBI_POLARITY), flipped);
  assert.deepEqual(toMembraneCopy(values, MEMBRANE_POLARITY), values);
  assert.deepEqual(values, Float32Array.from([0, 1e-9, 0.1, 0.5, 0.7, 1]), 'the copying variants leave their input');
  const inPlace = values.slice();
  assert.equal(toMembraneInPlace(inPlace, ISBI_POLARITY), inPlace);
  assert.deepEqual(inPlace, flipped);
  assert.deepEqual(fromMembraneInPlace(inPlace, MEMBRANE_POLARITY), flipped);
  assert.equal(flagPolarity(true), 'membrane-high');
  assert.equal(flagPolarity(false), 'membrane-low');
  assert.equal(flagPolarity(undefined), undefined);
  assert.equal(polarityOf('membrane-probability'), 'membrane-high');
  assert.equal(polarityOf('non-membrane-probability'), 'membrane-low');
});

test('the records emseg writes keep their bytes: TIFF maps\' descriptions and OME-Zarr .zattrs', async () => {
  const model = join(tempDir('map-meaning-model'), 'plain'); // no meta.json: no close_gaps record
  mkdirSync(model);
  assert.equal(mapsDescription([model], 'membrane-low'), '{"emseg":{"kind":"membrane","polarity":"membrane-low"}}');
  assert.equal(mapsDescription([model], 'membrane-high'), '{"emseg":{"kind":"membrane","polarity":"membrane-high"}}');
  assert.deepEqual(meaningRecord('image'), { kind: 'image' });
  const dir = tempDir('map-meaning-zattrs');
  const shape: Vec3 = [1, 8, 8];
  const zattrs = async (name: string, o: object) => {
    await createOmeZarr(join(dir, name), { shape, dtype: 'uint8', chunks: shape, levels: 1, ...o });
    return readFileSync(join(dir, name, '.zattrs'), 'utf8');
  };
  const emsegPart = (text: string) => text.slice(text.indexOf('"emseg": {'));
  assert.equal(emsegPart(await zattrs('m.zarr', { kind: 'membrane', polarity: 'membrane-low', extra: { models: ['a'] } })),
    '"emseg": {\n    "kind": "membrane",\n    "polarity": "membrane-low",\n    "models": [\n      "a"\n    ]\n  }\n}\n');
  assert.equal(emsegPart(await zattrs('i.zarr', {})), '"emseg": {\n    "kind": "image"\n  }\n}\n');
});

test('today\'s single-channel records parse unchanged; a multi-channel record along axis c parses, a damaged one is refused', () => {
  const single = (emseg: unknown) => parseMapRecord({ emseg }, 'maps.tif');
  assert.deepEqual(single({ kind: 'membrane', polarity: 'membrane-high', close_gaps: { sigma: 1 } }), { channels: 'single', polarity: 'membrane-high' });
  assert.deepEqual(single({ kind: 'membrane', polarity: 'membrane-low' }), { channels: 'single', polarity: 'membrane-low' });
  assert.deepEqual(single({ close_gaps: {} }), { channels: 'single', polarity: undefined });
  assert.deepEqual(single({ kind: 'membrane', polarity: 'upside-down' }), { channels: 'single', polarity: undefined }, 'ignored, as before');
  assert.deepEqual(parseMapRecord({}, 'maps.tif'), { channels: 'single', polarity: undefined });
  assert.deepEqual(parseMapRecord({ emseg: 'text' }, 'maps.tif'), { channels: 'single', polarity: undefined });

  const record = multiChannelRecord(AFFINITIES);
  assert.deepEqual(JSON.parse(JSON.stringify(record)), { kind: 'maps', axis: 'c', channels: AFFINITIES });
  assert.deepEqual(parseMapRecord({ emseg: { ...record, models: ['m'] } }, 'aff.zarr'), { channels: 'multi', meanings: AFFINITIES });
  assert.throws(() => parseMapRecord({ emseg: { ...record, channels: [{ kind: 'affinity', offset: [1, 0] }] } }, 'aff.zarr'),
    refused('corrupt', 'aff.zarr', /channels\.0\.offset/));
  assert.throws(() => parseMapRecord({ emseg: { ...record, channels: [] } }, 'aff.zarr'), refused('corrupt', 'aff.zarr'));
  assert.throws(() => parseMapRecord({ emseg: { ...record, axis: 'z' } }, 'aff.zarr'), refused('corrupt', 'aff.zarr', /axis/));
});

test('a map\'s meaning: the flag, else the record, else what unrecorded maps are read as, else ISBI; multi-channel maps refused', () => {
  const high = { emseg: { kind: 'membrane', polarity: 'membrane-high' } };
  assert.equal(decideMapPolarity(high, 'm.tif'), 'membrane-high');
  assert.equal(decideMapPolarity(high, 'm.tif', { given: 'membrane-low' }), 'membrane-low', 'the flag overrides the record');
  assert.equal(decideMapPolarity(high, 'm.tif', { unrecorded: 'membrane-low' }), 'membrane-high', 'the record wins over a default');
  assert.equal(decideMapPolarity({}, 'm.tif'), ISBI_POLARITY);
  assert.equal(decideMapPolarity({}, 'm.tif', { unrecorded: 'membrane-high' }), 'membrane-high');
  const multi = { emseg: multiChannelRecord(AFFINITIES) };
  assert.throws(() => decideMapPolarity(multi, 'aff.zarr'), refused('unsupported', 'aff.zarr', /3 channels along axis "c".*affinity \[-1,0,0\]/));
  assert.throws(() => decideMapPolarity(multi, 'aff.zarr', { given: 'membrane-high' }), refused('unsupported', 'aff.zarr'), 'a flag does not make it one map');
});

test('a multi-channel map given where one membrane map is needed is refused naming it: segment (stack, volume), eval, view', async () => {
  const dir = tempDir('map-meaning-multi');
  const shape: Vec3 = [1, 32, 32];
  const description = JSON.stringify({ emseg: multiChannelRecord(AFFINITIES) });
  const tif = join(dir, 'aff.tif');
  await writeStack(tif, { width: 32, height: 32, depth: 1, data: new Float32Array(32 * 32).fill(0.5) }, { description });
  await assert.rejects(runSegment({ pred: tif, out: join(dir, 'cells.tif'), options: {}, overwrite: false }), refused('unsupported', tif));
  const zarr = join(dir, 'aff.zarr');
  await (await createOmeZarr(zarr, { shape, dtype: 'float32', chunks: shape, levels: 1 })).writeRegion({ start: [0, 0, 0], end: shape }, new Float32Array(32 * 32).fill(0.5));
  const attrs = JSON.parse(readFileSync(join(zarr, '.zattrs'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(zarr, '.zattrs'), JSON.stringify({ ...attrs, emseg: multiChannelRecord(AFFINITIES) }));
  await assert.rejects(runVolumeSegment({ pred: zarr, out: join(dir, 'cells.zarr'), options: {} }), refused('unsupported', zarr));
  await assert.rejects(ViewModel.open({ map: zarr }), refused('unsupported', zarr));
});

test('eval refuses a multi-channel TIFF map naming it (same-sized labels)', async () => {
  const dir = tempDir('map-meaning-eval');
  const labels = await readStack(join(SAMPLES, 'labels', '23.png'));
  const tif = join(dir, 'aff.tif');
  await writeStack(tif, { width: labels.width, height: labels.height, depth: 1, data: new Float32Array(labels.width * labels.height).fill(0.5) },
    { description: JSON.stringify({ emseg: multiChannelRecord(AFFINITIES) }) });
  await assert.rejects(loadInputs({ labels: join(SAMPLES, 'labels', '23.png'), prediction: tif }), refused('unsupported', tif));
});

/** Labels renumbered by first appearance in raster order, section by section: the partition, whatever the ids. */
function partition(labels: ArrayLike<number>, sections: number, n: number): number[] {
  const out: number[] = [];
  for (let z = 0; z < sections; z++) {
    const ids = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const l = labels[z * n + i]!;
      if (!ids.has(l)) ids.set(l, ids.size + 1);
      out.push(ids.get(l)!);
    }
  }
  return out;
}

test('a TIFF map stack and an OME-Zarr map of the same values and record segment to the same cells (one decision for both)', async () => {
  const dir = tempDir('map-meaning-agree');
  const shape: Vec3 = [2, 96, 96];
  const [depth, h, w] = shape;
  const high = Uint8Array.from(await sampleMaps(shape), (v) => 255 - v); // P(membrane): needs the record to be read right
  const tif = join(dir, 'maps.tif');
  await writeStack(tif, { width: w, height: h, depth, data: high }, { description: JSON.stringify({ emseg: meaningRecord('membrane', 'membrane-high') }) });
  const zarr = join(dir, 'maps.zarr');
  await (await createOmeZarr(zarr, { shape, dtype: 'uint8', chunks: shape, levels: 1, kind: 'membrane', polarity: 'membrane-high' }))
    .writeRegion({ start: [0, 0, 0], end: shape }, high);
  const stack = async (name: string, membraneProb?: boolean) => {
    await runSegment({ pred: tif, out: join(dir, name), membraneProb, options: {}, overwrite: false });
    return partition((await readStack(join(dir, name))).data, depth, h * w);
  };
  const volume = async (name: string, membraneProb?: boolean) => {
    // One block per section: blockwise segmentation then equals whole-section segmentation exactly.
    const r = await runVolumeSegment({ pred: zarr, out: join(dir, name), membraneProb, options: {}, block: [1, h, w] });
    assert.ok(r.complete);
    const cells = await openVolume(join(dir, name, '0'));
    const labels = await cells.readRegion({ start: [0, 0, 0], end: shape });
    await cells.close();
    return partition(labels, depth, h * w);
  };
  const byStack = await stack('stack.tif');
  assert.deepEqual(await volume('volume.zarr'), byStack, 'the same cells from the same values and record');
  assert.ok(new Set(byStack).size > 10, 'the maps hold cells');
  const againstRecord = await stack('isbi.tif', false);
  assert.notDeepEqual(againstRecord, byStack, 'read the other way round, the maps segment differently');
  assert.deepEqual(await volume('isbi.zarr', false), againstRecord, 'and the flag overrides the record alike');
});

test('writeIsbiSubmission takes a MapPolarity (or the older names) and writes 0 = membrane', async () => {
  const dir = tempDir('map-meaning-isbi');
  const p = Float32Array.from([0, 0.25, 1, 0.5]);
  const stack = { width: 2, height: 2, depth: 1, data: p };
  const read = async (name: string, values: Parameters<typeof writeIsbiSubmission>[2]['values']) => {
    await writeIsbiSubmission(join(dir, name), { ...stack, data: p.slice() }, { values });
    return (await readStack(join(dir, name))).data;
  };
  assert.deepEqual(await read('a.tif', 'membrane-high'), Float32Array.from([1, 0.75, 0, 0.5]));
  assert.deepEqual(await read('b.tif', 'membrane-probability'), Float32Array.from([1, 0.75, 0, 0.5]));
  assert.deepEqual(await read('c.tif', 'membrane-low'), p);
  assert.deepEqual(await read('d.tif', 'non-membrane-probability'), p);
});

test('eval and tune-segment read a map\'s recorded polarity when --membrane-prob is not given, as segment does; the flag still wins', async () => {
  const dir = tempDir('map-meaning-eval-record');
  const labelsPath = join(SAMPLES, 'labels', '23.png');
  const labels = await readStack(labelsPath);
  const n = labels.width * labels.height;
  // A P(membrane) map close to the labels (255 = non-membrane there), recorded as membrane-high.
  const high = Float32Array.from(labels.data as Uint8Array, (v) => (v > 0 ? 0.1 : 0.9));
  const recorded = join(dir, 'recorded.tif');
  await writeStack(recorded, { width: labels.width, height: labels.height, depth: 1, data: high },
    { description: JSON.stringify({ emseg: meaningRecord('membrane', 'membrane-high') }) });
  const byRecord = await loadInputs({ labels: labelsPath, prediction: recorded });
  const byFlag = await loadInputs({ labels: labelsPath, prediction: recorded, membraneProb: true });
  assert.equal(byRecord.mapPolarity, 'membrane-high');
  assert.deepEqual(byRecord.proposal.data, byFlag.proposal.data, 'the record is read as the flag would say');
  assert.ok(Math.abs(byRecord.proposal.data[0]! - (1 - high[0]!)) < 1e-6, 'the proposal is P(non-membrane)');
  const forced = await loadInputs({ labels: labelsPath, prediction: recorded, membraneProb: false });
  assert.equal(forced.mapPolarity, 'membrane-low', 'an explicit flag overrides the record');
  assert.equal(forced.proposal.data.length, n);
});

test('emseg info shows each channel of a multi-channel map with its meaning and range; --channel picks one', async () => {
  const dir = tempDir('emseg-info-channels-');
  const zarr = join(dir, 'aff.zarr');
  const shape: Vec3 = [2, 8, 8];
  const w = await createOmeZarr(zarr, { shape, dtype: 'uint8', chunks: shape, maps: multiChannelRecord(AFFINITIES) });
  // Channel c holds values 10 c .. 10 c + 5.
  await w.writeRegion({ start: [0, 0, 0], end: shape }, Uint8Array.from({ length: AFFINITIES.length * 128 }, (_, i) => 10 * Math.floor(i / 128) + (i % 6)));
  const bin = join(REPO_ROOT, 'bin', 'emseg.js');
  const text = execFileSync('node', [bin, 'info', zarr, '--quiet', '--exact'], { encoding: 'utf8' });
  assert.match(text, new RegExp(`shape: +${AFFINITIES.length} x 2 x 8 x 8 \\(c, z, y, x\\)`));
  const meaning = (m: ChannelMeaning) => (m.kind === 'affinity' ? `affinity \\(${m.offset.join(', ')}\\)` : m.kind);
  AFFINITIES.forEach((m, c) => assert.match(text, new RegExp(`${c}: ${10 * c} \\.\\. ${10 * c + 5} +${meaning(m)}\n`)));
  const json = JSON.parse(execFileSync('node', [bin, 'info', zarr, '--json', '--exact'], { encoding: 'utf8' })) as { channels: number; ranges: { channel: number; min: number; max: number }[] };
  assert.deepEqual(json.ranges.map((r) => [r.channel, r.min, r.max]), AFFINITIES.map((_, c) => [c, 10 * c, 10 * c + 5]));
  const one = execFileSync('node', [bin, 'info', zarr, '--channel', '1', '--quiet', '--exact'], { encoding: 'utf8' });
  assert.match(one, /range: +10 \.\. 15 \(exact\)/);
  assert.match(one, /channel: 1 +affinity \(-1, 0, 0\)/);
  // Read as an image without a channel: refused, saying how many channels there are and how to read them.
  await assert.rejects(openVolume(zarr), refused('unsupported', undefined, new RegExp(`${AFFINITIES.length} channels`)));
});
