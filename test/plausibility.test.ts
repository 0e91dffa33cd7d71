/**
 * Inputs that decode fine but are the wrong thing (src/io/plausibility.ts), refused instead of scored or segmented
 * with exit status 0: labels read with the wrong polarity (mostly membrane), and a raw EM image given as --pred to
 * eval and segment. Real files and real `emseg` processes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isEmsegError, type EmsegErrorCode } from '../src/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import type { Region, VolumeReader } from '../src/io/formats/volume.js';
import { loadDataset, readStack, writeStack } from '../src/io/index.js';
import { MAP_SAMPLE_EDGE, MAP_SAMPLE_SECTIONS, volumeSpread } from '../src/io/plausibility.js';
import { openVolume } from '../src/io/registry.js';
import { evaluateFiles } from '../src/pipeline/evaluate.js';
import { loadTrainingData } from '../src/pipeline/intensity.js';
import { runSegment } from '../src/pipeline/segment.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/segment/index.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { tempDir } from './helpers/volume-predict-fixture.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const IMAGES = join(SAMPLES, 'images');
const LABELS = join(SAMPLES, 'labels');
const emseg = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--quiet'], { encoding: 'utf8' });
const refused = (code: EmsegErrorCode, path: string) => (err: unknown) => {
  assert.ok(isEmsegError(err, code), String(err));
  assert.equal(err.path, path);
  return true;
};

/** The sample labels with 0 and 255 swapped (membrane 255): what the default ISBI polarity reads inside out. */
async function invertedLabels(dir: string): Promise<string> {
  const labels = await readStack(LABELS);
  const out = join(dir, 'inverted');
  await writeStack(out, { ...labels, data: Uint8Array.from(labels.data as Uint8Array, (v) => 255 - v) }, { format: 'png-folder' });
  return out;
}

test('eval and train refuse labels that read as mostly membrane with the default polarity; a given polarity only warns', async () => {
  const dir = tempDir('polarity');
  const inverted = await invertedLabels(dir);
  // The labels themselves are a perfect prediction (binary, 1 = interior) of the sample sections.
  const refusedRun = emseg('eval', '--labels', inverted, '--pred', LABELS, '--json');
  assert.equal(refusedRun.status, 1);
  assert.equal(refusedRun.stdout, '');
  assert.ok(refusedRun.stderr.includes(`${inverted}: read with polarity membrane-0-interior-255, 80.9 % of the label pixels are membrane`), refusedRun.stderr);
  assert.match(refusedRun.stderr, /pass --polarity membrane-255-interior-0/);

  const given = emseg('eval', '--labels', inverted, '--pred', LABELS, '--json', '--polarity', 'membrane-0-interior-255');
  assert.equal(given.status, 0, given.stderr);
  assert.match(given.stderr, /^warning: .*inverted: read with polarity membrane-0-interior-255, 80\.9 %/m);
  assert.ok(JSON.parse(given.stdout).pixel_error > 0.5);
  const right = emseg('eval', '--labels', inverted, '--pred', LABELS, '--json', '--polarity', 'membrane-255-interior-0');
  assert.equal(right.status, 0, right.stderr);
  assert.doesNotMatch(right.stderr, /warning/);
  assert.equal(JSON.parse(right.stdout).pixel_error, 0);

  // The same check wherever labels are read: the API of eval and training, and `emseg train` before any step.
  await assert.rejects(evaluateFiles({ labels: inverted, prediction: LABELS }), refused('polarity', inverted));
  await assert.rejects(loadTrainingData({ images: IMAGES, labels: inverted }), refused('polarity', inverted));
  const notices: string[] = [];
  const data = await loadDataset({ images: IMAGES, labels: inverted, polarity: 'membrane-0-interior-255', notice: (l) => notices.push(l) });
  assert.equal(data.labels!.depth, 2);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /warning: .*80\.9 %/);
  await loadDataset({ images: IMAGES, labels: LABELS, notice: (l) => notices.push(l) });
  assert.equal(notices.length, 1, 'ISBI labels (19 % membrane) read with the default: no word');
  const train = emseg('train', '--images', IMAGES, '--labels', inverted, '--out', join(dir, 'model'), '--steps', '1');
  assert.equal(train.status, 1);
  assert.match(train.stderr, /look inverted: pass --polarity membrane-255-interior-0/);
  assert.ok(!existsSync(join(dir, 'model')));
});

test('a raw EM image as --pred is refused by eval and segment (stack and .zarr), naming it; --pred-is-map accepts it', async () => {
  const dir = tempDir('rawpred');
  const evalRun = emseg('eval', '--labels', LABELS, '--pred', IMAGES);
  assert.equal(evalRun.status, 1);
  assert.ok(evalRun.stderr.includes(`${IMAGES}: looks like a raw image, not a membrane map: 91.9 %`), evalRun.stderr);
  assert.match(evalRun.stderr, /--pred-is-map/);
  await assert.rejects(evaluateFiles({ labels: LABELS, prediction: IMAGES }), refused('not-a-map', IMAGES));
  assert.equal(emseg('eval', '--labels', LABELS, '--pred', IMAGES, '--pred-is-map').status, 0);

  const cells = join(dir, 'cells.tif');
  const segRun = emseg('segment', '--pred', IMAGES, '--out', cells);
  assert.equal(segRun.status, 1);
  assert.ok(segRun.stderr.includes(`${IMAGES}: looks like a raw image`), segRun.stderr);
  assert.ok(!existsSync(cells));
  const job = { pred: IMAGES, out: cells, membraneProb: false, options: { ...DEFAULT_SEGMENT_OPTIONS }, overwrite: false };
  await assert.rejects(runSegment(job), refused('not-a-map', IMAGES));
  assert.equal((await runSegment({ ...job, predIsMap: true })).segments.length, 2);

  // A raw volume (converted by emseg as an image, so its values are looked at) given to blockwise segmentation.
  const raw = join(dir, 'raw.zarr');
  await convertToOmeZarr(await openVolume(IMAGES), raw, { chunks: [1, 256, 256] });
  const out = join(dir, 'cells.zarr');
  const volRun = emseg('segment', '--pred', raw, '--out', out);
  assert.equal(volRun.status, 1);
  assert.ok(volRun.stderr.includes(`${raw}: looks like a raw image`), volRun.stderr);
  assert.ok(!existsSync(out), 'refused before the output is created');
  await assert.rejects(runVolumeSegment({ pred: raw, out, options: {} }), refused('not-a-map', raw));
  assert.ok((await runVolumeSegment({ pred: raw, out, options: {}, predIsMap: true, block: [1, 512, 512] })).complete);
});

test('a volume\'s values are judged on a bounded sample: a few sections, a window of each', async () => {
  const reads: Region[] = [];
  const shape = [5000, 20_000, 30_000] as const;
  const huge: VolumeReader = {
    path: 'huge.zarr', format: 'zarr', shape, dtype: 'uint8', chunks: [1, 512, 512], scales: [], level: 0, attributes: {},
    async readRegion(r) {
      reads.push(r);
      const n = (r.end[0] - r.start[0]) * (r.end[1] - r.start[1]) * (r.end[2] - r.start[2]);
      return Uint8Array.from({ length: n }, (_, i) => (i % 2 ? 250 : 3));
    },
    async close() {},
  };
  assert.equal((await volumeSpread(huge)).fraction, 0);
  assert.equal(reads.length, MAP_SAMPLE_SECTIONS);
  for (const r of reads) assert.deepEqual([r.end[0] - r.start[0], r.end[1] - r.start[1], r.end[2] - r.start[2]], [1, MAP_SAMPLE_EDGE, MAP_SAMPLE_EDGE]);
  assert.equal(new Set(reads.map((r) => r.start[0])).size, MAP_SAMPLE_SECTIONS, 'spread over the depth');
});
