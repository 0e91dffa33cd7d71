// `emseg eval --seg`: a 3-D segmentation scored against neuron ids (CREMI / SNEMI3D), through the CLI on small
// synthetic HDF5 and OME-Zarr volumes.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildProgram } from '../src/cli/main.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { Contingency3d, borderMask, neuronScores } from '../src/metrics/index.js';
import { evaluateVolumes } from '../src/pipeline/evaluate-3d.js';
import { refused } from './helpers/errors.js';
import { writeHdf5 } from './helpers/volumes.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-eval3d-'));
const SHAPE: Vec3 = [4, 12, 10];
const N = SHAPE[0] * SHAPE[1] * SHAPE[2];

async function runCli(args: string[]): Promise<string> {
  let out = '';
  const program = buildProgram().exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => {} });
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => {} });
  await program.parseAsync(['node', 'emseg', 'eval', '--quiet', ...args]);
  return out;
}

/** Ground truth: neurons 1..3 in bands along x (x < 3, 3..6, >= 7), unlabelled (0) on y = 0. */
function groundTruth(): Uint32Array {
  return Uint32Array.from({ length: N }, (_, i) => {
    const x = i % 10;
    const y = Math.floor(i / 10) % 12;
    return y === 0 ? 0 : x < 3 ? 1 : x < 7 ? 2 : 3;
  });
}

/** Segmentation: neuron 1 split at z = 2 (ids 10, 11), neurons 2 and 3 merged (id 20), a few voxels on 0. */
function segmentation(): Uint32Array {
  return Uint32Array.from({ length: N }, (_, i) => {
    const x = i % 10;
    const z = Math.floor(i / 120);
    if (i % 37 === 5) return 0;
    return x < 3 ? (z < 2 ? 10 : 11) : 20;
  });
}

async function writeZarr(path: string, data: Uint32Array, voxelSize?: Vec3): Promise<string> {
  const w = await createOmeZarr(path, { shape: SHAPE, dtype: 'uint32', chunks: [2, 8, 8], levels: 1, kind: 'labels',
    ...(voxelSize ? { voxelSize, unit: 'nanometer' } : {}) });
  await w.writeRegion({ start: [0, 0, 0], end: SHAPE }, data);
  return path;
}

const gt = groundTruth();
const seg = segmentation();
const GT_H5 = join(TMP, 'gt.h5');
const GT_PATH = `${GT_H5}:/volumes/labels/neuron_ids`;
await writeHdf5(GT_H5, [{ path: '/volumes/labels/neuron_ids', data: gt, shape: [...SHAPE], dtype: '<I', chunks: [1, 6, 5],
  attrs: { resolution: [40, 4, 4] } }]);
const SEG = await writeZarr(join(TMP, 'cells.zarr'), seg);
const GT_ZARR_NO_UNIT = await writeZarr(join(TMP, 'gt-nounit.zarr'), gt);

function expected(radius?: number): ReturnType<typeof neuronScores> {
  const t = new Contingency3d();
  t.add(gt, seg, { shape: SHAPE, ...(radius === undefined ? {} : { exclude: borderMask(gt, SHAPE, radius) }) });
  return neuronScores(t);
}

test('--seg --json: VOI split/merge, ARAND, CREMI score and the worst neurons of an HDF5 labels / Zarr cells pair', async () => {
  const doc = JSON.parse(await runCli(['--seg', SEG, '--labels', GT_PATH, '--json']));
  const want = expected();
  assert.equal(doc.voxels, 4 * 11 * 10);
  assert.equal(doc.unlabelled, 4 * 10);
  assert.equal(doc.voi_split, want.voiSplit);
  assert.equal(doc.voi_merge, want.voiMerge);
  assert.equal(doc.arand, want.arand);
  assert.equal(doc.cremi_score, want.cremi);
  assert.ok(doc.voi_split > 0 && doc.voi_merge > 0 && doc.arand > 0);
  assert.equal(doc.worst_splits[0].id, '1');
  assert.deepEqual(doc.worst_splits[0].at, [0, 1, 0]);
  assert.equal(doc.worst_merges[0].id, '20');
  assert.equal(doc.worst_merges[0].neurons, 2);
});

test('--seg prints a table of the scores and the worst neurons', async () => {
  const text = await runCli(['--seg', SEG, '--labels', GT_PATH]);
  for (const want of ['VOI split', 'VOI merge', 'ARAND', 'CREMI score', 'worst split neurons', 'worst merged segments']) {
    assert.ok(text.includes(want), `${want} in:\n${text}`);
  }
  assert.match(text, new RegExp(`VOI split\\s+${expected().voiSplit.toFixed(6)}`));
});

test('z-slabs of any depth give the scores of the whole volume', async () => {
  const whole = await evaluateVolumes({ seg: SEG, labels: GT_PATH });
  for (const slabVoxels of [1, 120, 250]) {
    assert.deepEqual(await evaluateVolumes({ seg: SEG, labels: GT_PATH, slabVoxels }), whole);
  }
});

test('--border-nm uses the voxel size the labels record (CREMI resolution, nm), else --voxel-size; refused naming --voxel-size without one', async () => {
  const doc = JSON.parse(await runCli(['--seg', SEG, '--labels', GT_PATH, '--border-nm', '6', '--json']));
  const want = expected(1.5);
  assert.deepEqual(doc.border, { nm: 6, pixels: 1.5 });
  assert.equal(doc.voi_split, want.voiSplit);
  assert.equal(doc.arand, want.arand);
  assert.ok(doc.masked > 0);
  assert.equal(doc.voxels + doc.masked + doc.unlabelled, N);
  await assert.rejects(runCli(['--seg', SEG, '--labels', GT_ZARR_NO_UNIT, '--border-nm', '6']), refused('invalid-option', '--voxel-size'));
  const given = JSON.parse(await runCli(['--seg', SEG, '--labels', GT_ZARR_NO_UNIT, '--border-nm', '6', '--voxel-size', '40,4,4', '--json']));
  assert.equal(given.voi_split, want.voiSplit);
});

test('refusals: shape mismatch, float ids, flags of the other mode, neither --pred nor --seg', async () => {
  const small = join(TMP, 'small.h5');
  await writeHdf5(small, [{ path: '/ids', data: new Uint32Array(2 * 12 * 10), shape: [2, 12, 10], dtype: '<I' }]);
  await assert.rejects(runCli(['--seg', SEG, '--labels', `${small}:/ids`]), refused('mismatch', 'cells.zarr'));
  const floats = join(TMP, 'floats.h5');
  await writeHdf5(floats, [{ path: '/ids', data: new Float32Array(N), shape: [...SHAPE], dtype: '<f' }]);
  await assert.rejects(runCli(['--seg', `${floats}:/ids`, '--labels', GT_PATH]), refused('invalid-data', 'floats.h5:/ids'));
  await assert.rejects(runCli(['--seg', SEG, '--labels', GT_PATH, '--breakdown']), refused('invalid-option', '--breakdown'));
  await assert.rejects(runCli(['--seg', SEG, '--labels', GT_PATH, '--pred', SEG]), refused('invalid-option', '--pred'));
  await assert.rejects(runCli(['--labels', GT_PATH]), refused('invalid-option', '--pred'));
  await assert.rejects(runCli(['--labels', 'x.tif', '--pred', 'y.tif', '--border-nm', '25']), refused('invalid-option', '--border-nm'));
});
