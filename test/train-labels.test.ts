// Training labels as people have them: instance labels (uint8..uint64 ids) made into membrane boundaries with a
// width, an ignore value and sparse (unlabelled) sections, from PNG stacks, HDF5 and OME-Zarr; how they are read is
// decided once and said, and what cannot be told is refused asking for --label-kind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { UNKNOWN_CLASS } from '../src/image/affinities.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { readStack, writeStack } from '../src/io/index.js';
import { summariseLabels } from '../src/io/labels-summary.js';
import { decideReading, sectionMask, type LabelReading } from '../src/io/training-labels.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../src/pipeline/assets.js';
import { runTrain, type TrainJob } from '../src/pipeline/train.js';
import { parseSections } from '../src/util/sections.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { writeHdf5 } from './helpers/volumes.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-train-labels-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const [D, H, W] = [5, 40, 40];
const N = D * H * W;
const BIG = 2n ** 60n;

/** Cells in a 10-px checkerboard of ids (BIG + cell index): neighbours differ, so boundaries run along the grid. */
function cellIds(): BigUint64Array {
  return BigUint64Array.from({ length: N }, (_, i) => {
    const x = i % W;
    const y = Math.floor(i / W) % H;
    return BIG + BigInt(Math.floor(y / 10) * 4 + Math.floor(x / 10) + 1);
  });
}
const IDS = cellIds();
/** Raw: bright cells, dark where ids change (the membranes a network should learn). */
const RAW = Uint8Array.from({ length: N }, (_, i) => {
  const x = i % W;
  const y = Math.floor(i / W) % H;
  return x % 10 === 0 || x % 10 === 9 || y % 10 === 0 || y % 10 === 9 ? 40 : 200;
});

const H5 = join(TMP, 'vol.h5');
await writeHdf5(H5, [
  { path: '/volumes/raw', data: RAW, shape: [D, H, W], dtype: '<B', chunks: [1, 20, 20] },
  { path: '/volumes/labels/neuron_ids', data: IDS, shape: [D, H, W], dtype: '<Q', chunks: [1, 20, 20] },
  { path: '/small_ids', data: Uint32Array.from(IDS, (v) => Number(v - BIG)), shape: [D, H, W], dtype: '<I' },
  // Sparse: section 1 wholly unlabelled (0 = unlabelled here, with --ignore-label 0), section 3 half.
  { path: '/sparse_ids', data: Uint32Array.from(IDS, (v, i) => {
    const z = Math.floor(i / (H * W));
    return z === 1 || (z === 3 && i % W < W / 2) ? 0 : Number(v - BIG);
  }), shape: [D, H, W], dtype: '<I' },
]);

/** A stride-1 patch classifier, fast on the reference backend (the tests train a few steps only). */
const TINY = join(TMP, 'tiny.json');
writeFileSync(TINY, JSON.stringify({ name: 'tiny', window: 7, layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' },
  { type: 'pool', kernel: 2 }, { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }] }));

function job(out: string, extra: Partial<TrainJob>): TrainJob {
  return { images: `${H5}:/volumes/raw`, labels: `${H5}:/volumes/labels/neuron_ids`, out, model: TINY, val: [4],
    resume: false, overwrite: false, tile: 16, batch: 1, steps: 2, epochSteps: 2, optimizer: 'adam', lr: 1e-3, momentum: 0.9,
    weightDecay: 0, schedule: 'constant', warmup: 1, balance: 'weights', select: 'v_rand', seed: 1, checkpointMinutes: 3, ...extra };
}
const backend = createReferenceBackend('float32');
const fakeReader = (labelType: string, format = 'hdf5') => ({ path: 'x.h5:/ids', format, labelType }) as never;

test('instance ids to a membrane mask: both sides of a contact, the section edge no boundary, widened, ignored pixels unknown', () => {
  const [h, w] = [4, 6];
  // Two cells side by side (x < 3: id 7, else id 9), one pixel of id 5 (the ignore label) at (3, 0).
  const ids = BigUint64Array.from({ length: h * w }, (_, i) => (i === 18 ? 5n : i % w < 3 ? 7n : 9n));
  const read = (extra: Partial<LabelReading>): LabelReading => ({ kind: 'instance', decidedBy: 'flag', boundaryWidth: 1, ...extra });
  const rows = (m: Uint8Array) => [...Array(h).keys()].map((y) => [...m.subarray(y * w, (y + 1) * w)].join(' '));
  assert.deepEqual(rows(sectionMask(ids, h, w, read({}), 'x')), ['0 0 1 1 0 0', '0 0 1 1 0 0', '1 0 1 1 0 0', '1 1 1 1 0 0']);
  // Ignored: the pixel, and its neighbours whose boundary only it could decide.
  const U = UNKNOWN_CLASS;
  assert.deepEqual(rows(sectionMask(ids, h, w, read({ ignoreLabel: 5n }), 'x')),
    ['0 0 1 1 0 0', '0 0 1 1 0 0', `${U} 0 1 1 0 0`, `${U} ${U} 1 1 0 0`]);
  assert.deepEqual(rows(sectionMask(ids, h, w, read({ boundaryWidth: 2 }), 'x')), ['0 1 1 1 1 0', '1 1 1 1 1 0', '1 1 1 1 1 0', '1 1 1 1 1 0']);
});

test('how labels are read is decided once: the flag, masks for stacks, instance for 64-bit ids; other volumes must say', () => {
  assert.equal(decideReading(fakeReader('uint64'), {}).kind, 'instance');
  assert.equal(decideReading(fakeReader('int32'), {}).kind, 'instance');
  assert.equal(decideReading(fakeReader('uint8', 'stack'), {}).kind, 'mask');
  assert.equal(decideReading(fakeReader('uint16'), { labelKind: 'instance' }).boundaryWidth, 1);
  assert.throws(() => decideReading(fakeReader('uint32'), {}), refused('ambiguous', '--label-kind'));
  assert.throws(() => decideReading(fakeReader('uint64'), { labelKind: 'mask' }), refused('invalid-option', '--label-kind'));
  assert.throws(() => decideReading(fakeReader('uint64'), { polarity: 'membrane-1-interior-0' }), refused('invalid-option', '--polarity'));
  assert.throws(() => decideReading(fakeReader('uint8', 'stack'), { boundaryWidth: 2 }), refused('invalid-option', '--boundary-width'));
  assert.throws(() => decideReading(fakeReader('uint8'), { labelKind: 'instance', ignoreLabel: 256n }), refused('invalid-option', '--ignore-label'));
  assert.deepEqual(parseSections('z=2:5'), [2, 3, 4]);
  assert.throws(() => parseSections('z=5:5'), refused('invalid-option', 'sections'));
});

test('train from HDF5 raw and uint64 neuron ids (--val as a z range): trains, says how it read the labels, records it', async () => {
  const out = join(TMP, 'h5-model');
  const notices: string[] = [];
  const outcome = await runTrain(job(out, { val: parseSections('z=4:5'), boundaryWidth: 2 }), backend, { onNotice: (l) => notices.push(l) });
  assert.equal(outcome.step, 2);
  assert.ok(notices.some((l) => /read as instance labels: boundaries where ids change, 2 px on each side \(their integer type holds ids\)/.test(l)), notices.join('\n'));
  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'));
  const source = JSON.stringify(meta);
  assert.match(source, /"label_kind":"instance"/);
  assert.match(source, /"boundary_width":2/);
  // The reading is part of the run's settings: a resume with another boundary width is refused.
  await assert.rejects(runTrain(job(out, { val: [4], boundaryWidth: 3, resume: true, steps: 3 }), backend, {}), refused('checkpoint-mismatch', 'checkpoint'));
  const resumed = await runTrain(job(out, { val: [4], boundaryWidth: 2, resume: true, steps: 3 }), backend, {});
  assert.equal(resumed.step, 3);
});

test('sparse labels: an unlabelled section is left out (said), a validation section with unlabelled pixels is refused', async () => {
  const base = { labels: `${H5}:/sparse_ids`, labelKind: 'instance' as const, ignoreLabel: 0n };
  const notices: string[] = [];
  await runTrain(job(join(TMP, 'sparse'), { ...base, val: [4] }), backend, { onNotice: (l) => notices.push(l) });
  assert.ok(notices.some((l) => /1 section\(s\) without labels .* left out of training: 1$/.test(l)), notices.join('\n'));
  await assert.rejects(runTrain(job(join(TMP, 'sparse-val'), { ...base, val: [3] }), backend, {}), refused('invalid-option', '--val'));
  await assert.rejects(runTrain(job(join(TMP, 'sparse-malis'), { ...base, malisWeight: 1 }), backend, {}), refused('invalid-option', '--malis-weight'));
  await assert.rejects(runTrain(job(join(TMP, 'amb'), { labels: `${H5}:/small_ids` }), backend, {}), refused('ambiguous', '--label-kind'));
});

test('OME-Zarr labels group and PNG stacks of ids train too; binary masks read through HDF5 train exactly as the PNG masks do', async () => {
  const zarr = join(TMP, 'ids.zarr');
  const w = await createOmeZarr(zarr, { shape: [D, H, W], dtype: 'uint32', chunks: [1, 20, 20], levels: 1, kind: 'labels' });
  await w.writeRegion({ start: [0, 0, 0], end: [D, H, W] }, Uint32Array.from(IDS, (v) => Number(v - BIG)));
  await runTrain(job(join(TMP, 'zarr-model'), { labels: zarr, labelKind: 'instance' }), backend, {});

  // The shipped samples (ISBI masks, two PNG sections) as HDF5: the same masks, the same weights for the same seed.
  const images = await readStack(SAMPLE_IMAGES);
  const labels = await readStack(SAMPLE_LABELS);
  const h5 = join(TMP, 'samples.h5');
  const shape = [images.depth, images.height, images.width];
  await writeHdf5(h5, [{ path: '/raw', data: images.data, shape, dtype: '<B' }, { path: '/masks', data: labels.data, shape, dtype: '<B' }]);
  const common = { val: [] as number[], steps: 1, epochSteps: 1 };
  const png = join(TMP, 'png-model');
  const viaH5 = join(TMP, 'h5mask-model');
  await runTrain(job(png, { ...common, images: SAMPLE_IMAGES, labels: SAMPLE_LABELS }), backend, {});
  await runTrain(job(viaH5, { ...common, images: `${h5}:/raw`, labels: `${h5}:/masks`, labelKind: 'mask' }), backend, {});
  assert.ok(readFileSync(join(png, 'weights.safetensors')).equals(readFileSync(join(viaH5, 'weights.safetensors'))));
  // Ids as a PNG stack (uint8 ids), read as instance labels.
  const pngIds = join(TMP, 'ids-png');
  await writeStack(pngIds, { width: W, height: H, depth: D, data: Uint8Array.from(IDS, (v) => Number(v - BIG)) }, { format: 'png-folder' });
  await runTrain(job(join(TMP, 'png-ids-model'), { labels: pngIds, labelKind: 'instance' }), backend, {});
});

test('emseg labels: what emseg understood (kind, ids or classes, ignored and boundary fractions, sections labelled) as training reads them', async () => {
  const cli = (args: string[]) => execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'emseg.js'), 'labels', '--quiet', ...args], { encoding: 'utf8' });
  const sparse = JSON.parse(cli([`${H5}:/sparse_ids`, '--label-kind', 'instance', '--ignore-label', '0', '--json']));
  assert.equal(sparse.reading.kind, 'instance');
  assert.equal(sparse.reading.ignoreLabel, '0');
  assert.equal(sparse.ids, 16);
  assert.deepEqual(sparse.unlabelledSections, [1]);
  assert.equal(sparse.sections[0].labelled, 1);
  assert.ok(sparse.sections[3].labelled > 0.4 && sparse.sections[3].labelled < 0.5, String(sparse.sections[3].labelled));
  assert.ok(sparse.ignored > 0.2 && sparse.ignored < 0.32, String(sparse.ignored));
  const big = JSON.parse(cli([`${H5}:/volumes/labels/neuron_ids`, '--json']));
  assert.equal(big.ids, 16);
  assert.equal(big.reading.decidedBy, 'type');
  assert.equal(big.boundary, big.sections[0].boundary);
  assert.ok(big.boundary > 0.1 && big.boundary < 0.4);
  const masks = JSON.parse(cli([SAMPLE_LABELS, '--json']));
  assert.equal(masks.reading.kind, 'mask');
  assert.equal(masks.reading.polarity, 'membrane-0-interior-255');
  assert.deepEqual(masks.classes.map((c: { value: number; meaning: string }) => [c.value, c.meaning]), [[0, 'membrane'], [255, 'interior']]);
  assert.match(cli([SAMPLE_LABELS]), /understood: .* read as a membrane mask, polarity membrane-0-interior-255 \(a PNG\/TIFF stack\)/);
  await assert.rejects(summariseLabels(`${H5}:/small_ids`, {}), refused('ambiguous', '--label-kind'));
});
