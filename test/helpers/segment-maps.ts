/** Membrane-map volumes for the blockwise segmentation tests, made from the ISBI sample sections. */
import { join } from 'node:path';
import { extractMirrored } from '../../src/image/mirror.js';
import { createOmeZarr } from '../../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../../src/io/formats/volume.js';
import { readStack } from '../../src/io/index.js';
import { SAMPLES } from './data.js';

/** Weight of the label mask in the map (the rest is the raw image, so seeds and merges are not trivial). */
export const LABEL_WEIGHT = 0.9;

/**
 * A depth x h x w uint8 map in the ISBI polarity (0 = membrane): section z is a window of sample 23 or 24
 * (alternating), shifted per section, each a mix of the sample's label mask and raw image.
 */
export async function sampleMaps([depth, h, w]: Vec3): Promise<Uint8Array> {
  const maps = [];
  for (const name of ['23.png', '24.png']) {
    const raw = await readStack(join(SAMPLES, 'images', name));
    const label = (await readStack(join(SAMPLES, 'labels', name))).data as Uint8Array;
    const mixed = Float32Array.from(raw.data as Uint8Array, (r, i) => Math.round(LABEL_WEIGHT * label[i]! + (1 - LABEL_WEIGHT) * r));
    maps.push({ data: mixed, height: raw.height, width: raw.width });
  }
  const out = new Uint8Array(depth * h * w);
  for (let z = 0; z < depth; z++) {
    const s = maps[z % 2]!;
    out.set(extractMirrored(s.data, s.height, s.width, 17 * z, 29 * z, h, w), z * h * w);
  }
  return out;
}

/** The maps as an emseg-written OME-Zarr membrane image (ISBI polarity recorded), one level, given chunks. */
export async function writeMaps(path: string, shape: Vec3, chunks: Vec3, levels = 1): Promise<Uint8Array> {
  const data = await sampleMaps(shape);
  const w = await createOmeZarr(path, { shape, dtype: 'uint8', chunks, kind: 'membrane', polarity: 'membrane-low', levels, compression: 'zlib' });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, data);
  await w.buildPyramid();
  return data;
}
