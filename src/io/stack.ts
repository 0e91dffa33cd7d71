import { EmsegIoError } from './errors.js';
import { openImageFile } from './image-file.js';
import type { ImageFile } from './image-file.js';
import { MAX_STACK_ELEMENTS } from './limits.js';
import type { ColourPolicy } from './png.js';
import { resolveSources } from './sources.js';
import { allocate, sampleTypeOf, type ImageStack, type SampleType, type SliceLike, type StackData } from '../image/stack.js';
import { imagejProperties, type VoxelSize } from './voxel-size.js';

/** A slice as read from disk: where it came from, for error messages. */
export interface Slice<T extends StackData = StackData> extends SliceLike<T> {
  /** Position in the stack, from 0. */
  index: number;
  /** File it was read from, and page within that file (from 0). */
  source: string;
  page: number;
}

export interface ReadOptions {
  /** Colour / palette / alpha images: refused by default; 'to-grey' keeps luma (alpha ignored). */
  colour?: ColourPolicy;
}

/**
 * The metadata a TIFF's ImageDescription holds when emseg wrote it (a JSON object, e.g. {"emseg": {"close_gaps":
 * ...}} on maps), as attributes like a volume's; {} for none or another program's text (ImageJ and others write
 * their own there).
 */
export function descriptionAttributes(description: string | undefined): Record<string, unknown> {
  if (description === undefined) return {};
  // With a voxel size, emseg writes ImageJ's description and keeps its record on the `emseg=` line (imagejDescription).
  const imagej = imagejProperties(description);
  if (imagej) description = imagej.has('emseg') ? `{"emseg":${imagej.get('emseg')}}` : '{}';
  try {
    const parsed: unknown = JSON.parse(description);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
  } catch {
    return {};
  }
}

/** A stack opened from disk: sizes known and checked, pixels read only by slices(). */
export interface StackReader {
  files: string[];
  width: number;
  height: number;
  depth: number;
  sampleType: SampleType;
  /** The first file's TIFF ImageDescription, if it has one (emseg's maps record their gap-closing options there). */
  description?: string;
  /** The first file's pixel size (TIFF resolution tags, ImageJ unit and spacing); undefined when it records none. */
  voxelSize?: VoxelSize;
  slices(): AsyncGenerator<Slice>;
}

/**
 * Opens a file, folder, glob or list of them as one stack. Every header is read and checked
 * (same size and sample type everywhere) before any pixel is decoded.
 */
export async function openStack(input: string | readonly string[], options: ReadOptions = {}): Promise<StackReader> {
  const files = await resolveSources(input);
  const opened: ImageFile[] = [];
  for (const path of files) opened.push(await openImageFile(path, options.colour));
  const first = opened[0]!.pages[0]!;
  for (const file of opened) {
    file.pages.forEach((p, i) => {
      const where = file.pages.length > 1 ? ` (page ${i + 1})` : '';
      if (p.width !== first.width || p.height !== first.height) {
        throw new EmsegIoError('mismatch', file.path, `slice${where} is ${p.width}x${p.height} but ${files[0]} is ${first.width}x${first.height}; all slices of a stack must have the same size`);
      }
      if (p.sampleType !== first.sampleType) {
        throw new EmsegIoError('mismatch', file.path, `slice${where} is ${p.sampleType} but ${files[0]} is ${first.sampleType}; all slices of a stack must have the same sample type`);
      }
    });
  }
  const depth = opened.reduce((n, f) => n + f.pages.length, 0);
  const { description, voxelSize } = opened[0]!;
  return { files, width: first.width, height: first.height, depth, sampleType: first.sampleType,
    ...(description !== undefined ? { description } : {}), ...(voxelSize ? { voxelSize } : {}), slices: () => readSlices(opened) };
}

async function* readSlices(files: ImageFile[]): AsyncGenerator<Slice> {
  let index = 0;
  for (const file of files) {
    let page = 0;
    for await (const data of file.pageData()) {
      const { width, height, sampleType } = file.pages[page] ?? file.pages[0]!;
      if (page >= file.pages.length || data.length !== width * height || sampleTypeOf(data) !== sampleType) {
        throw new EmsegIoError('mismatch', file.path, 'file changed while the stack was being read');
      }
      yield { width, height, data, index: index++, source: file.path, page: page++ };
    }
  }
}

/** Async iterator over the slices of a file, folder, glob or list, one decoded slice in memory at a time. */
export async function* iterateSlices(input: string | readonly string[], options: ReadOptions = {}): AsyncGenerator<Slice> {
  yield* (await openStack(input, options)).slices();
}

export interface LoadedStack<T extends StackData = StackData> extends ImageStack<T> {
  sampleType: SampleType;
  /** The files the slices came from, in stack order. */
  files: string[];
}

/** Reads a whole stack into one typed array of the files' own sample type. */
export async function readStack(input: string | readonly string[], options: ReadOptions = {}): Promise<LoadedStack> {
  const reader = await openStack(input, options);
  const { width, height, depth, sampleType, files } = reader;
  const n = width * height;
  if (n * depth > MAX_STACK_ELEMENTS) {
    throw new EmsegIoError('too-large', files[0]!, `stack of ${width}x${height}x${depth} is too large to load at once; iterate its slices instead`);
  }
  const data = allocate(sampleType, n * depth);
  for await (const s of reader.slices()) data.set(s.data, s.index * n);
  return { width, height, depth, data, sampleType, files };
}
