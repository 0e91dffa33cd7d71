/**
 * Large TIFF and BigTIFF read by window through geotiff: only the strips or tiles a region touches are read
 * from disk and decoded, so a 20 GB file costs the memory of the region. Each page is one z section.
 */
import { stat } from 'node:fs/promises';
import type { GeoTIFF, GeoTIFFImage } from 'geotiff';
import { EmsegIoError, describe, fromFsError } from '../errors.js';
import type { SampleType } from '../../image/stack.js';
import { allocateRegion, checkRegion, regionShape } from './volume.js';
import type { Region, StackData, Vec3, VolumeReader, VoxelSize } from './volume.js';
import { descriptionAttributes } from '../stack.js';
import { tiffVoxelSize } from '../voxel-size.js';

/** Pages inspected to check that every section has the first one's size and type (all, up to this many). */
const MAX_PAGES_CHECKED = 100_000;

const SAMPLE_FORMAT_UINT = 1;
const SAMPLE_FORMAT_FLOAT = 3;

function sampleTypeOf(image: GeoTIFFImage): SampleType | undefined {
  const bits = image.getBitsPerSample(0);
  const format = image.getSampleFormat(0) ?? SAMPLE_FORMAT_UINT;
  if (format === SAMPLE_FORMAT_UINT) return bits === 8 ? 'uint8' : bits === 16 ? 'uint16' : bits === 32 ? 'uint32' : undefined;
  if (format === SAMPLE_FORMAT_FLOAT && bits === 32) return 'float32';
  return undefined;
}

async function pages(tiff: GeoTIFF, path: string): Promise<GeoTIFFImage[]> {
  let count: number;
  try {
    count = await tiff.getImageCount();
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `TIFF page directory is truncated or corrupt (${describe(err)})`, { cause: err });
  }
  if (count > MAX_PAGES_CHECKED) throw new EmsegIoError('too-large', path, `TIFF has ${count} pages (limit ${MAX_PAGES_CHECKED})`);
  const out: GeoTIFFImage[] = [];
  for (let i = 0; i < count; i++) {
    try {
      out.push(await tiff.getImage(i));
    } catch (err) {
      throw new EmsegIoError('corrupt', path, `TIFF page ${i + 1} header is truncated or corrupt (${describe(err)})`, { cause: err });
    }
  }
  return out;
}

function checkPages(images: GeoTIFFImage[], path: string): { shape: Vec3; dtype: SampleType } {
  const first = images[0]!;
  const dtype = sampleTypeOf(first);
  if (!dtype) throw new EmsegIoError('unsupported', path, `${first.getBitsPerSample(0)}-bit samples of format ${first.getSampleFormat(0)} (read: 8/16/32-bit unsigned, 32-bit float)`);
  images.forEach((img, i) => {
    if (img.getSamplesPerPixel() !== 1) throw new EmsegIoError('unsupported', path, `TIFF page ${i + 1} has ${img.getSamplesPerPixel()} samples per pixel; a volume must be grey`);
    if (img.getWidth() !== first.getWidth() || img.getHeight() !== first.getHeight() || sampleTypeOf(img) !== dtype) {
      throw new EmsegIoError('mismatch', path, `TIFF page ${i + 1} is ${img.getWidth()}x${img.getHeight()} ${sampleTypeOf(img)} but page 1 is ${first.getWidth()}x${first.getHeight()} ${dtype}; all sections must agree`);
    }
  });
  return { shape: [images.length, first.getHeight(), first.getWidth()], dtype };
}

/** A tag's value as one number: geotiff gives a RATIONAL as [numerator, denominator], other tags as a number or a list. */
function tagNumber(value: unknown, rational = false): number | undefined {
  const list = Array.isArray(value) || ArrayBuffer.isView(value) ? Array.from(value as ArrayLike<number>) : [value];
  if (!list.every((v) => typeof v === 'number')) return undefined;
  return rational && list.length >= 2 ? list[0]! / list[1]! : list[0] as number | undefined;
}

/**
 * The first page's pixel size (resolution tags and ImageJ description, io/voxel-size.ts; undefined when unreadable or
 * absent) and emseg's record in its description (the polarity and tuned options of maps emseg wrote), as a stack's.
 */
async function firstPageMeta(image: GeoTIFFImage): Promise<{ voxelSize?: VoxelSize; attributes: Record<string, unknown> }> {
  const dir = image.fileDirectory;
  const load = (tag: string) => (dir.hasTag(tag as never) ? dir.loadValue(tag as never) : Promise.resolve(undefined)).catch(() => undefined);
  const loaded: unknown = await load('ImageDescription');
  // geotiff keeps ASCII's NUL terminator, which the stack reader (utif) drops: drop it too, or JSON.parse fails.
  const description = typeof loaded === 'string' ? loaded.replace(/\0+$/, '') : undefined;
  const voxelSize = tiffVoxelSize({ xResolution: tagNumber(await load('XResolution'), true), yResolution: tagNumber(await load('YResolution'), true),
    resolutionUnit: tagNumber(await load('ResolutionUnit')), description });
  return { ...(voxelSize ? { voxelSize } : {}), attributes: descriptionAttributes(description) };
}

export async function openTiffWindowed(path: string): Promise<VolumeReader> {
  await stat(path).catch((err) => {
    throw fromFsError(err, path, 'opening');
  });
  let tiff: GeoTIFF;
  try {
    const { fromFile } = await import('geotiff'); // loaded on first use: it adds ~75 ms to every CLI start
    tiff = await fromFile(path);
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `not a readable TIFF (${describe(err)})`, { cause: err });
  }
  const images = await pages(tiff, path);
  const { shape, dtype } = checkPages(images, path);
  const first = images[0]!;
  const chunks: Vec3 = [1, Math.min(first.getTileHeight(), shape[1]), first.isTiled ? first.getTileWidth() : shape[2]];
  const { voxelSize, attributes } = await firstPageMeta(first);
  return {
    path, format: 'tiff', shape, dtype, chunks, level: 0, ...(voxelSize ? { voxelSize } : {}),
    scales: [{ path: '', shape, scale: [1, 1, 1] }],
    attributes: { ...attributes, bigTiff: tiff.bigTiff, tiled: first.isTiled, compression: first.fileDirectory.getValue?.('Compression') ?? undefined },
    sectionOrigin: (z) => ({ source: path, page: z }),
    async readRegion(region: Region): Promise<StackData> {
      checkRegion(region, shape, path);
      const out = allocateRegion(dtype, region, path);
      const [, h, w] = regionShape(region);
      const window = [region.start[2], region.start[1], region.end[2], region.end[1]];
      for (let z = region.start[0]; z < region.end[0]; z++) {
        let data: ArrayLike<number>;
        try {
          data = (await images[z]!.readRasters({ window, samples: [0], interleave: true })) as unknown as ArrayLike<number>;
        } catch (err) {
          throw new EmsegIoError('corrupt', path, `TIFF page ${z + 1} pixel data is truncated or corrupt (${describe(err)})`, { cause: err });
        }
        if (data.length !== h * w) throw new EmsegIoError('corrupt', path, `TIFF page ${z + 1} decoded to ${data.length} of ${h * w} values`);
        out.set(data, (z - region.start[0]) * h * w);
      }
      return out;
    },
    async close() {
      await tiff.close();
    },
  };
}
