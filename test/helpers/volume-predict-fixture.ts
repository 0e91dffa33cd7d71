/** Small volumes cut from the ISBI samples, and random-weight zoo models saved as model folders, for blockwise tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractMirrored } from '../../src/image/mirror.js';
import { createOmeZarr } from '../../src/io/formats/ome-zarr-write.js';
import type { Vec3 } from '../../src/io/formats/volume.js';
import { readStack, writeStack } from '../../src/io/index.js';
import { MIN_TILE, tileGeometry } from '../../src/infer/tiling.js';
import { saveModel } from '../../src/models/model-dir.js';
import { resolveSpec } from '../../src/models/zoo.js';
import { initParams } from '../../src/nn/params.js';
import { SAMPLES } from './data.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `emseg-${prefix}-`));
}

/** A depth x h x w uint8 volume: section z is a window of sample 23 or 24 (alternating), shifted per section. */
export async function sampleVolume([depth, h, w]: Vec3): Promise<Uint8Array> {
  const sections = [await readStack(join(SAMPLES, 'images', '23.png')), await readStack(join(SAMPLES, 'images', '24.png'))];
  const out = new Uint8Array(depth * h * w);
  for (let z = 0; z < depth; z++) {
    const s = sections[z % 2]!;
    const src = Float32Array.from(s.data as Uint8Array);
    out.set(extractMirrored(src, s.height, s.width, 17 * z, 29 * z, h, w), z * h * w);
  }
  return out;
}

/** The volume as a PNG stack folder and as a single-level OME-Zarr with the given chunks. */
export async function writeVolume(dir: string, shape: Vec3, data: Uint8Array, chunks: Vec3): Promise<{ stack: string; zarr: string }> {
  const stack = join(dir, 'stack');
  await writeStack(stack, { width: shape[2], height: shape[1], depth: shape[0], data });
  const zarr = join(dir, 'raw.zarr');
  const w = await createOmeZarr(zarr, { shape, dtype: 'uint8', chunks, levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: shape }, data);
  return { stack, zarr };
}

/** A zoo model with random weights (seeded), saved as a model folder; `meta` goes into its meta.json. */
export function zooModel(dir: string, name: string, seed: number, meta: Record<string, unknown> = {}): string {
  const spec = resolveSpec(name);
  const path = join(dir, `model-${name}`);
  saveModel(path, spec, initParams(tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE).plan, seed), meta);
  return path;
}
