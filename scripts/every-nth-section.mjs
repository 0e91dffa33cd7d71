#!/usr/bin/env node
/**
 * An anisotropic variant of a labelled volume (issue 25: "take every 4th section"): every Nth section of an image
 * volume and of its neuron ids, written as an OME-Zarr image with the labels image "neuron_ids" and the voxel size
 * scaled along z. Usage:
 *   node scripts/every-nth-section.mjs IMAGES LABELS N OUT.zarr
 *   e.g. node scripts/every-nth-section.mjs ../shared/data/fib25-medulla/train.h5:/volumes/raw \
 *          ../shared/data/fib25-medulla/train.h5:/volumes/labels/neuron_ids 4 fib25-aniso.zarr
 * Ids are compacted to 1, 2, ... (0 stays 0) so that they fit uint32 (OME-Zarr labels images emseg writes).
 */
import { createOmeZarr } from '../dist/src/io/formats/ome-zarr-write.js';
import { openLabels, openVolume } from '../dist/src/io/registry.js';

const [images, labels, nText, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/every-nth-section.mjs IMAGES LABELS N OUT.zarr');
  process.exit(2);
}
const n = Number(nText);
const img = await openVolume(images);
const lab = await openLabels(labels);
const [depth, height, width] = img.shape;
const kept = Math.ceil(depth / n);
const size = img.voxelSize?.size ?? [1, 1, 1];
const writer = await createOmeZarr(out, { shape: [kept, height, width], dtype: img.dtype, chunks: [1, height, width], levels: 1,
  voxelSize: [size[0] * n, size[1], size[2]], ...(img.voxelSize?.unit ? { unit: img.voxelSize.unit } : {}),
  extra: { source: images, every_nth_section: n } });
const ids = await writer.addLabels('neuron_ids', { dtype: 'uint32' });
const table = new Map([[0n, 0], [0, 0]]);
for (let k = 0; k < kept; k++) {
  const region = { start: [k * n, 0, 0], end: [k * n + 1, height, width] };
  const to = { start: [k, 0, 0], end: [k + 1, height, width] };
  await writer.writeRegion(to, await img.readRegion(region));
  const raw = await lab.readLabels(region);
  const compact = new Uint32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let c = table.get(raw[i]);
    if (c === undefined) table.set(raw[i], (c = table.size - 1));
    compact[i] = c;
  }
  await ids.writeRegion(to, compact);
}
await writer.publish?.();
console.log(`${out}: ${kept} of ${depth} sections (every ${n}th), voxel size ${[size[0] * n, size[1], size[2]].join(' x ')}, ${table.size - 2} ids`);
