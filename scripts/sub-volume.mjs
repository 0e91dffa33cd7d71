#!/usr/bin/env node
/**
 * Part of a labelled volume as an OME-Zarr image with the labels image "neuron_ids": sections A to B - 1 (--z A:B),
 * every Nth of them (--every N: an anisotropic variant of an isotropic volume, issue 25 "take every 4th section"),
 * the voxel size scaled along z. Validation volumes and anisotropic variants for docs/NEURONS.md. Usage:
 *   node scripts/sub-volume.mjs IMAGES LABELS OUT.zarr [--z A:B] [--every N]
 *   e.g. node scripts/sub-volume.mjs ../shared/data/fib25-medulla/train.h5:/volumes/raw \
 *          ../shared/data/fib25-medulla/train.h5:/volumes/labels/neuron_ids fib25-aniso.zarr --every 4
 * Ids are compacted to 1, 2, ... in order of appearance (0 stays 0) so that they fit uint32.
 */
import { parseArgs } from 'node:util';
import { createOmeZarr } from '../dist/src/io/formats/ome-zarr-write.js';
import { openLabels, openVolume } from '../dist/src/io/registry.js';
import { compactIds } from '../dist/src/io/training-labels.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { z: { type: 'string' }, every: { type: 'string', default: '1' } } });
const [images, labels, out] = positionals;
if (!out) {
  console.error('usage: node scripts/sub-volume.mjs IMAGES LABELS OUT.zarr [--z A:B] [--every N]');
  process.exit(2);
}
const img = await openVolume(images);
const lab = await openLabels(labels);
const [depth, height, width] = img.shape;
const [from, to] = values.z ? values.z.split(':').map(Number) : [0, depth];
const n = Number(values.every);
if (!(from >= 0 && to <= depth && from < to && n >= 1)) {
  console.error(`--z ${values.z} / --every ${values.every}: outside the volume's ${depth} sections`);
  process.exit(2);
}
const sections = [];
for (let z = from; z < to; z += n) sections.push(z);
const size = img.voxelSize?.size ?? [1, 1, 1];
const voxelSize = [size[0] * n, size[1], size[2]];
const writer = await createOmeZarr(out, { shape: [sections.length, height, width], dtype: img.dtype, chunks: [1, height, width], levels: 1,
  voxelSize, ...(img.voxelSize?.unit ? { unit: img.voxelSize.unit } : {}), extra: { source: images, sections: `${from}:${to}`, every: n } });
const ids = await writer.addLabels('neuron_ids', { dtype: 'uint32' });
// Background is 0 whether the ids are numbers or (uint64) bigints.
const compact = { table: new Map([[0n, 0], [0, 0]]), next: 1 };
for (const [k, z] of sections.entries()) {
  const region = { start: [z, 0, 0], end: [z + 1, height, width] };
  const at = { start: [k, 0, 0], end: [k + 1, height, width] };
  await writer.writeRegion(at, await img.readRegion(region));
  const ids32 = new Uint32Array(height * width);
  compactIds(await lab.readLabels(region), compact, ids32);
  await ids.writeRegion(at, ids32);
}
console.log(`${out}: sections ${from}:${to} every ${n} (${sections.length}), voxel size ${voxelSize.join(' x ')}, ${compact.next - 1} ids`);
