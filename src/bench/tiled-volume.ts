/**
 * A benchmark volume of any size built by tiling the bundled ISBI sample sections (mirrored, so tiles join
 * without seams; section z uses sample z mod 2, shifted per section), written as a single-level uint8 OME-Zarr
 * band by band: memory is one band of chunk rows, whatever the volume size.
 * Usage: node dist/src/bench/tiled-volume.js OUT.zarr Z,Y,X [CHUNK_Z,CHUNK_Y,CHUNK_X]
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { reflect } from '../image/mirror.js';
import { createOmeZarr } from '../io/formats/ome-zarr-write.js';
import { parseVec3, type Vec3 } from '../io/formats/volume.js';
import { readStack } from '../io/index.js';
import { SAMPLE_IMAGES } from '../pipeline/assets.js';

const DEFAULT_CHUNKS: Vec3 = [1, 1024, 1024];
/** Per-section shift of the tiling, so neighbouring sections differ. */
const SHIFT = 37;

export async function writeTiledVolume(out: string, shape: Vec3, chunks: Vec3 = DEFAULT_CHUNKS): Promise<void> {
  const samples = await Promise.all(['23.png', '24.png'].map((n) => readStack(join(SAMPLE_IMAGES, n))));
  const writer = await createOmeZarr(out, { shape, dtype: 'uint8', chunks, levels: 1, name: 'isbi-tiled' });
  const [depth, h, w] = shape;
  for (let z = 0; z < depth; z++) {
    const s = samples[z % 2]!;
    const src = s.data as Uint8Array;
    const cols = Int32Array.from({ length: w }, (_, x) => reflect(x + SHIFT * z, s.width));
    for (let y0 = 0; y0 < h; y0 += chunks[1]) {
      const rows = Math.min(chunks[1], h - y0);
      const band = new Uint8Array(rows * w);
      for (let y = 0; y < rows; y++) {
        const row = reflect(y0 + y + SHIFT * z, s.height) * s.width;
        for (let x = 0; x < w; x++) band[y * w + x] = src[row + cols[x]!]!;
      }
      await writer.writeRegion({ start: [z, y0, 0], end: [z + 1, y0 + rows, w] }, band);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [out, shape, chunks] = process.argv.slice(2);
  await writeTiledVolume(out!, parseVec3(shape!, 'shape'), chunks ? parseVec3(chunks, 'chunks') : DEFAULT_CHUNKS);
}
