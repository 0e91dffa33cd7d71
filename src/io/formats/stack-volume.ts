/**
 * Today's PNG/TIFF stacks (a file, folder, glob or list, see io/stack.ts) as a volume. These formats cannot be
 * read by window, so a region costs whole decoded sections; a small cache keeps recently decoded sections so
 * that reading a section's blocks one after another decodes it once.
 *
 * A reader opened to stream sections (`stream`: emseg predict and segment to outputs written in one piece, which read
 * each section once, in order) keeps no cache, and a read of one whole section returns the decoded section itself
 * (the caller owns it): memory is that of the stack reader, one decoded section, not a cache and a copy.
 */
import { EmsegIoError } from '../errors.js';
import { openImageFile } from '../image-file.js';
import type { ImageFile } from '../image-file.js';
import type { ColourPolicy } from '../png.js';
import { descriptionAttributes, openStack } from '../stack.js';
import { sampleTypeOf } from '../../image/stack.js';
import { allocateRegion, checkRegion, regionShape } from './volume.js';
import type { Region, SampleType, StackData, Vec3, VolumeReader } from './volume.js';

/** Decoded sections kept between readRegion calls, in bytes (at least one section is always kept). */
export const SECTION_CACHE_BYTES = 256 * 2 ** 20;

export async function openStackVolume(input: string | readonly string[], colour: ColourPolicy = 'reject', stream = false): Promise<VolumeReader> {
  const stack = await openStack(input, { colour }); // validates every header: sizes and types agree
  const files: ImageFile[] = [];
  const where: { file: number; page: number }[] = [];
  for (const path of stack.files) {
    const f = await openImageFile(path, colour);
    f.pages.forEach((_, page) => where.push({ file: files.length, page }));
    files.push(f);
  }
  const shape: Vec3 = [stack.depth, stack.height, stack.width];
  const dtype = stack.sampleType;
  const label = typeof input === 'string' ? input : stack.files[0]!;
  const sections = sectionCache(files, where, shape, dtype, stream ? 0 : SECTION_CACHE_BYTES);
  const wholeSection = (r: Region) => r.end[0] - r.start[0] === 1 && r.start[1] === 0 && r.start[2] === 0 && r.end[1] === shape[1] && r.end[2] === shape[2];

  return {
    path: label, format: 'stack', shape, dtype, chunks: [1, shape[1], shape[2]], level: 0,
    ...(stack.voxelSize ? { voxelSize: stack.voxelSize } : {}),
    scales: [{ path: '', shape, scale: [1, 1, 1] }],
    attributes: { ...descriptionAttributes(stack.description), files: stack.files.length },
    files: stack.files,
    sectionOrigin: (z) => ({ source: files[where[z]!.file]!.path, page: where[z]!.page }),
    async readRegion(region: Region): Promise<StackData> {
      checkRegion(region, shape, label);
      if (stream && wholeSection(region)) return sections.get(region.start[0]);
      const out = allocateRegion(dtype, region, label);
      const [, h, w] = regionShape(region);
      for (let z = region.start[0]; z < region.end[0]; z++) {
        const s = await sections.get(z);
        for (let y = 0; y < h; y++) {
          const from = (region.start[1] + y) * shape[2] + region.start[2];
          out.set(s.subarray(from, from + w), ((z - region.start[0]) * h + y) * w);
        }
      }
      return out;
    },
    close: () => sections.close(),
  };
}

/**
 * Decoded sections by z, least recently used dropped first once `budget` bytes are held (at least one section; none
 * with a budget of 0: each section is decoded, handed over and forgotten).
 */
function sectionCache(files: ImageFile[], where: { file: number; page: number }[], shape: Vec3, dtype: SampleType, budget: number) {
  const cache = new Map<number, StackData>();
  let cursor: { file: number; pages: AsyncGenerator<StackData>; next: number } | undefined;
  const sectionBytes = shape[1] * shape[2] * (dtype === 'uint8' ? 1 : dtype === 'uint16' ? 2 : 4);
  const keep = budget === 0 ? 0 : Math.max(1, Math.floor(budget / sectionBytes));

  // One read at a time: the cursor is shared, and a blockwise run reads the next block while the current one
  // computes; two interleaved reads would advance each other's cursor and store one section's pixels as another's.
  let queue: Promise<unknown> = Promise.resolve();
  function get(z: number): Promise<StackData> {
    const read = queue.then(() => load(z));
    queue = read.catch(() => undefined);
    return read;
  }

  async function load(z: number): Promise<StackData> {
    const hit = cache.get(z);
    if (hit) {
      cache.delete(z); // re-insert: Map order is the LRU order
      cache.set(z, hit);
      return hit;
    }
    const { file, page } = where[z]!;
    // Pages of a multi-page file decode only in order: keep one open cursor, so reading sections in order
    // decodes each page once (restarting only to go backwards past the cache).
    if (!cursor || cursor.file !== file || cursor.next > page) {
      await cursor?.pages.return(undefined);
      cursor = { file, pages: files[file]!.pageData(), next: 0 };
    }
    let found: StackData | undefined;
    while (cursor.next <= page) {
      const { value: d, done } = await cursor.pages.next();
      if (done || d.length !== shape[1] * shape[2] || sampleTypeOf(d) !== dtype) {
        throw new EmsegIoError('mismatch', files[file]!.path, 'file changed while the stack was being read');
      }
      if (cursor.next === page) found = d;
      remember(z - page + cursor.next++, d);
    }
    return found!;
  }

  function remember(z: number, data: StackData): void {
    if (keep === 0) return;
    cache.set(z, data);
    while (cache.size > keep) cache.delete(cache.keys().next().value!);
  }

  return {
    get,
    async close() {
      await queue;
      await cursor?.pages.return(undefined);
      cache.clear();
    },
  };
}
