/** Datasets: the whole ISBI 2012 training set (25 sections) from ../shared, read as a folder and as a dataset. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataset, readStack } from '../../src/io/index.js';
import { sharedPath } from '../helpers/data.js';

const isbi = (...parts: string[]): string => join(sharedPath('data', 'isbi2012', 'train'), ...parts);

test('ISBI 2012 training images read as a folder: 25 slices of 512x512, 8-bit', async () => {
  const stack = await readStack(isbi('images'));
  assert.deepEqual([stack.width, stack.height, stack.depth, stack.sampleType], [512, 512, 25, 'uint8']);
  assert.equal(stack.files[24], isbi('images', '24.png'));
});

test('ISBI 2012 dataset: float images in [0,1] = raw / 255, masks with 17-27 % membrane per slice', async () => {
  const ds = await loadDataset({ images: isbi('images'), labels: isbi('labels') });
  const raw = await readStack(isbi('images'));
  const n = 512 * 512;
  assert.equal(ds.images.depth, 25);
  assert.equal(ds.labels!.depth, 25);
  for (let i = 0; i < raw.data.length; i += 997) assert.equal(ds.images.data[i], Math.fround(raw.data[i]! / 255));
  for (let z = 0; z < 25; z++) {
    let membrane = 0;
    for (let i = z * n; i < (z + 1) * n; i++) membrane += ds.labels!.data[i]!;
    const fraction = membrane / n;
    assert.ok(fraction >= 0.17 && fraction <= 0.27, `slice ${z}: membrane fraction ${fraction}`);
  }
  assert.ok(ds.labels!.data.every((v) => v === 0 || v === 1));
});
