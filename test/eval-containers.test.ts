import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openVolume } from '../src/io/registry.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../src/pipeline/assets.js';
import { writeHdf5 } from './helpers/volumes.js';

// Issue 27: `emseg eval` (2-D maps against membrane labels) reads HDF5 datasets and OME-Zarr arrays as it reads
// PNG/TIFF stacks: the same sections give the same scores.
const dir = mkdtempSync(join(tmpdir(), 'emseg-eval-containers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function evalJson(pred: string, labels: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['bin/emseg.js', 'eval', '--pred', pred, '--labels', labels, '--pred-is-map', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('eval scores maps and labels held in HDF5 and OME-Zarr exactly as the same sections in PNG files', async () => {
  // The prediction: the bundled images read as maps (a poor map, so that every score is away from its bound).
  const images = await openVolume(SAMPLE_IMAGES);
  const zarr = join(dir, 'maps.zarr');
  await convertToOmeZarr(images, zarr);
  await images.close();
  const labels = await openVolume(SAMPLE_LABELS);
  const data = await labels.readRegion({ start: [0, 0, 0], end: labels.shape });
  const h5 = join(dir, 'labels.h5');
  await writeHdf5(h5, [{ path: '/volumes/membranes', data, shape: [...labels.shape], dtype: '<B' }]);
  await labels.close();

  const stacks = evalJson(SAMPLE_IMAGES, SAMPLE_LABELS);
  const containers = evalJson(join(zarr, '0'), `${h5}:/volumes/membranes`);
  assert.ok(JSON.stringify(stacks).includes('rand'), 'the report holds the Rand scores');
  const scores = (j: Record<string, unknown>) => JSON.stringify(j, (k, v) => (/file|path|source|labels|pred/i.test(k) ? undefined : v));
  assert.equal(scores(containers), scores(stacks));
});
