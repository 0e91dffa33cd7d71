/** Datasets: label polarities, pair checks and slice-by-slice pairing (the 25-section tests are in test/full/). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { EmsegIoError, LABEL_POLARITIES, iterateDataset, loadDataset } from '../src/io/index.js';
import type { LabelPolarity } from '../src/io/index.js';
import { SAMPLES } from './helpers/data.js';

const ISBI = SAMPLES;
const TMP = mkdtempSync(join(tmpdir(), 'emseg-io-dataset-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  return mkdtempSync(join(TMP, `t${dirCount++}-`));
}

function writeGrey(path: string, width: number, height: number, values: number[]): void {
  writeFileSync(path, encodePng({ width, height, data: new Uint8Array(values), depth: 8, channels: 1 }));
}

function isIoError(code: string, path: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof EmsegIoError, `expected EmsegIoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.path, path);
    assert.ok(e.message.includes(path), e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

test('every label polarity gives the same 1 = membrane mask', async () => {
  const dir = freshDir();
  mkdirSync(join(dir, 'images'));
  writeGrey(join(dir, 'images', '0.png'), 4, 1, [10, 20, 30, 40]);
  const membrane = [1, 0, 0, 1];
  const encodings: Record<LabelPolarity, number[]> = {
    'membrane-0-interior-255': [0, 255, 255, 0],
    'membrane-255-interior-0': [255, 0, 0, 255],
    'membrane-1-interior-0': [1, 0, 0, 1],
    'membrane-0-interior-1': [0, 1, 1, 0],
    'membrane-0-interior-max': [0, 255, 255, 0],
    'membrane-max-interior-0': [255, 0, 0, 255],
  };
  assert.deepEqual([...LABEL_POLARITIES].sort(), Object.keys(encodings).sort());
  for (const [polarity, values] of Object.entries(encodings) as [LabelPolarity, number[]][]) {
    const labels = join(dir, `${polarity}.png`);
    writeGrey(labels, 4, 1, values);
    const ds = await loadDataset({ images: join(dir, 'images'), labels, polarity });
    assert.deepEqual(Array.from(ds.labels!.data), membrane, polarity);
    assert.deepEqual(Array.from(ds.images.data), [10, 20, 30, 40].map((v) => Math.fround(v / 255)));
  }
  // 0/1 labels read with the default (0/255) polarity: refused, naming the file and hinting at the fix.
  const zeroOne = join(dir, 'membrane-1-interior-0.png');
  await assert.rejects(
    loadDataset({ images: join(dir, 'images'), labels: zeroOne }),
    isIoError('not-binary', zeroOne, /values 0, 1: pick the matching polarity/),
  );
  await assert.rejects(
    loadDataset({ images: join(dir, 'images'), labels: zeroOne, polarity: 'membrane-is-black' as LabelPolarity }),
    isIoError('invalid-option', 'membrane-is-black'),
  );
});

test('pairs are checked: counts, sizes and binary labels, naming the files', async () => {
  const dir = freshDir();
  for (const sub of ['images', 'labels', 'big', 'grey']) mkdirSync(join(dir, sub));
  for (const z of [0, 1, 2]) writeGrey(join(dir, 'images', `${z}.png`), 2, 2, [1, 2, 3, 4]);
  for (const z of [0, 1]) writeGrey(join(dir, 'labels', `${z}.png`), 2, 2, [0, 255, 255, 0]);
  await assert.rejects(
    loadDataset({ images: join(dir, 'images'), labels: join(dir, 'labels') }),
    isIoError('mismatch', join(dir, 'labels', '0.png'), /2 label slices .* but 3 image slices/),
  );
  for (const z of [0, 1, 2]) writeGrey(join(dir, 'big', `${z}.png`), 3, 2, [0, 0, 0, 255, 255, 255]);
  await assert.rejects(
    loadDataset({ images: join(dir, 'images'), labels: join(dir, 'big') }),
    isIoError('mismatch', join(dir, 'big', '0.png'), /3x2 but images .*0\.png\) are 2x2/),
  );
  for (const z of [0, 1]) writeGrey(join(dir, 'grey', `${z}.png`), 2, 2, [0, 255, 0, 255]);
  writeGrey(join(dir, 'grey', '2.png'), 2, 2, [0, 255, 128, 255]);
  await assert.rejects(
    loadDataset({ images: join(dir, 'images'), labels: join(dir, 'grey') }),
    isIoError('not-binary', join(dir, 'grey', '2.png'), /pixel 2 is 128/),
  );
});

test('iterateDataset pairs slices one at a time, and works without labels', async () => {
  const seen: string[] = [];
  for await (const s of iterateDataset({ images: join(ISBI, 'images', '2[3-4].png'), labels: join(ISBI, 'labels', '2[3-4].png') })) {
    seen.push(`${s.index}:${s.imageFile.slice(-6)}+${s.labelFile!.slice(-6)}`);
    assert.equal(s.image.length, 512 * 512);
    assert.equal(s.label!.length, 512 * 512);
  }
  assert.deepEqual(seen, ['0:23.png+23.png', '1:24.png+24.png']);
  const only = await loadDataset({ images: join(ISBI, 'images', '23.png') });
  assert.equal(only.labels, undefined);
  assert.equal(only.images.depth, 1);
});
