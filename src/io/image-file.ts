/** One image file of any supported format: header first (cheap, no pixels), then its slices. */
import { open, readFile } from 'node:fs/promises';
import { EmsegIoError, fromFsError } from './errors.js';
import { PNG_HEADER_BYTES, checkPngColour, checkPngSize, decodePng, isPng, readPngHeader } from './png.js';
import type { ColourPolicy } from './png.js';
import type { SampleType, StackData } from '../image/stack.js';
import { decodeTiffPage, inspectTiff, isTiff } from './tiff-read.js';
import { tiffVoxelSize, type VoxelSize } from './voxel-size.js';

export interface PageHeader {
  width: number;
  height: number;
  sampleType: SampleType;
}

export interface ImageFile {
  path: string;
  format: 'png' | 'tiff';
  pages: PageHeader[];
  /** A TIFF's ImageDescription (first page), where a writer records what the data are. */
  description?: string;
  /** Pixel size a TIFF's resolution tags and ImageJ description record (io/voxel-size.ts); undefined when none. */
  voxelSize?: VoxelSize;
  /** Decodes the pages one at a time, in order. */
  pageData(): AsyncGenerator<StackData>;
}

/** Opens `path` and validates its header; pixel memory is allocated only by pageData(). */
export async function openImageFile(path: string, colour: ColourPolicy = 'reject'): Promise<ImageFile> {
  const { head, size } = await readHead(path);
  if (size === 0) throw new EmsegIoError('corrupt', path, 'file is empty (0 bytes)');
  if (isPng(head)) return openPng(path, head, size, colour);
  if (isTiff(head)) return openTiff(path, colour);
  if (head.length >= 4 && head[2] === 43 && (head[0] === 0x49 || head[0] === 0x4d)) return openTiff(path, colour); // BigTIFF: inspectTiff explains
  throw new EmsegIoError('not-image', path, 'not a PNG or TIFF image (wrong magic bytes)');
}

async function readHead(path: string): Promise<{ head: Uint8Array; size: number }> {
  let fh;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const head = new Uint8Array(Math.min(size, PNG_HEADER_BYTES));
    await fh.read(head, 0, head.length, 0);
    return { head, size };
  } catch (err) {
    throw fromFsError(err, path, 'reading');
  } finally {
    await fh?.close();
  }
}

async function readAll(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw fromFsError(err, path, 'reading');
  }
}

function openPng(path: string, head: Uint8Array, size: number, colour: ColourPolicy): ImageFile {
  const h = readPngHeader(head, path);
  checkPngSize(h, size, path);
  checkPngColour(h, colour, path);
  // Colour is reduced to grey at the image's own depth; palettes and low depths become 8-bit.
  const sampleType: SampleType = h.bitDepth === 16 && h.colourType !== 3 ? 'uint16' : 'uint8';
  return {
    path,
    format: 'png',
    pages: [{ width: h.width, height: h.height, sampleType }],
    async *pageData() {
      yield decodePng(await readAll(path), path, colour).data;
    },
  };
}

async function openTiff(path: string, colour: ColourPolicy): Promise<ImageFile> {
  // The whole file is needed to find its pages; it is dropped again until pageData() runs.
  const file = inspectTiff(await readAll(path), path, colour);
  const ifd = file.pages[0]?.ifd;
  const description = typeof ifd?.imageDescription === 'string' ? ifd.imageDescription : undefined;
  const voxelSize = ifd && tiffVoxelSize({ xResolution: firstNumber(ifd.get('XResolution')), yResolution: firstNumber(ifd.get('YResolution')),
    resolutionUnit: firstNumber(ifd.get('ResolutionUnit')), description });
  return {
    path,
    format: 'tiff',
    pages: file.pages.map(({ width, height, sampleType }) => ({ width, height, sampleType })),
    ...(description !== undefined ? { description } : {}),
    ...(voxelSize ? { voxelSize } : {}),
    async *pageData() {
      const bytes = await readAll(path);
      const current = inspectTiff(bytes, path, colour); // the file may have changed since open
      for (let i = 0; i < current.pages.length; i++) yield decodeTiffPage(bytes, current, i, path);
    },
  };
}

/** A tag's value as one number (the `tiff` package gives one value or a list), or undefined. */
function firstNumber(value: unknown): number | undefined {
  const v = Array.isArray(value) || ArrayBuffer.isView(value) ? (value as ArrayLike<unknown>)[0] : value;
  return typeof v === 'number' ? v : undefined;
}
