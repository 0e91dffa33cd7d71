/**
 * Writing stacks. Every file is first written under a hidden temporary name in its final folder and
 * renamed only once complete, so a crash or a bad slice never leaves a half-written output; existing
 * outputs are refused unless `overwrite` is set, and even then only files emseg wrote are replaced
 * (see output-guard.ts).
 */
import { statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { EmsegIoError } from './errors.js';
import { FolderOutput, checkFileTarget, createTemp as createGuardedTemp, discardTemp, outputGuard, publishTemp } from './output-guard.js';
import type { OutputGuard } from './output-guard.js';
import { encodePng } from './png.js';
import { BYTES_PER_SAMPLE, allocate, sampleTypeOf, sliceOf, toFloat32 } from '../image/stack.js';
import type { ImageStack, SampleType, SliceLike, StackData } from '../image/stack.js';
import { ISBI_POLARITY, convertValue, polarityOf, type MapPolarity, type ProbabilityMeaning } from '../image/map-meaning.js';
import { descriptionAttributes } from './stack.js';
import { TiffLayout, littleEndianBytes, pageFromSlice } from './tiff-write.js';
import type { TiffPageHeader } from './tiff-write.js';
import { imagejDescription, tiffResolution, type VoxelSize } from './voxel-size.js';

/** 'tiff': one multi-page TIFF file; '*-folder': one file per slice in a folder. */
export type OutputFormat = 'tiff' | 'png-folder' | 'tiff-folder';

export interface WriteOptions {
  /** Replace existing outputs (the CLI's --overwrite): only regular files emseg wrote, never an input. */
  overwrite?: boolean;
  /**
   * Default: 'tiff' for a path ending in .tif/.tiff, otherwise 'png-folder' (a path ending in a slash, or an
   * existing folder, is always a folder). A format that does not fit the path is refused (see checkOutputPath).
   */
  format?: OutputFormat;
  /** The command's inputs (files or folders): never overwritten, and a folder holding one is never written into. */
  inputs?: readonly string[];
  /** A multi-page TIFF's ImageDescription (first page; ASCII): what emseg records about the data. Folders carry none. */
  description?: string;
  /**
   * The pixel size, written to TIFF outputs (one file or a folder) as resolution tags on every page and, on the
   * first, ImageJ's description (unit, spacing) holding `description`'s emseg record; PNG slices carry none. Only
   * with a unit: a TIFF cannot say "relative sizes".
   */
  voxelSize?: VoxelSize;
}

/** What the first page (`first`) and the others of a TIFF output say besides their pixels. */
interface PageTags {
  first: Pick<TiffPageHeader, 'description' | 'resolution'>;
  rest: Pick<TiffPageHeader, 'resolution'>;
}

/**
 * The tags of a TIFF output: with a voxel size, resolution tags everywhere and ImageJ's description carrying emseg's
 * record; a description that is not emseg's record (an API caller's own text) is kept as it is, with the
 * resolution tags alone saying the pixel size.
 */
function pageTags(description: string | undefined, voxelSize: VoxelSize | undefined): PageTags {
  if (!voxelSize?.unit) return { first: description === undefined ? {} : { description }, rest: {} };
  const resolution = tiffResolution(voxelSize);
  const attrs = description === undefined ? {} : descriptionAttributes(description);
  const ours = description === undefined || (Object.keys(attrs).length === 1 && attrs.emseg !== undefined);
  return { first: { description: ours ? imagejDescription(voxelSize, attrs.emseg) : description, resolution }, rest: { resolution } };
}

/**
 * A slice whose rows arrive top to bottom in bands of `bandRows` rows (the last may be shorter), e.g. a prediction
 * map: a multi-page TIFF writes each band as one strip, so the slice is never held whole.
 */
export interface BandedSlice<T extends StackData = StackData> {
  width: number;
  height: number;
  sampleType: SampleType;
  bandRows: number;
  bands: Iterable<T> | AsyncIterable<T>;
}

export type AnySlice = SliceLike | BandedSlice;
export type SliceSource = ImageStack | Iterable<AnySlice> | AsyncIterable<AnySlice>;

function isBanded(s: AnySlice): s is BandedSlice {
  return 'bands' in s;
}

function typeOf(s: AnySlice): SampleType {
  return isBanded(s) ? s.sampleType : sampleTypeOf(s.data);
}

/** A path that names a folder: it ends in a separator, or an existing folder is there. */
export function isFolderPath(path: string): boolean {
  if (path.endsWith('/') || path.endsWith(sep)) return true;
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false; // unreadable or below a file: the writer reports it, naming the path
  }
}

/** Whether the path ends in .tif or .tiff (any case). */
export function hasTiffExtension(path: string): boolean {
  const ext = extname(path).toLowerCase();
  return ext === '.tif' || ext === '.tiff';
}

const wrongFormat = (path: string, message: string) => new EmsegIoError('wrong-format', path, message);

/**
 * Refuses an output path that does not fit the format, before any work is done: one multi-page file ('tiff', and
 * predict's 'isbi') needs a .tif/.tiff path that is not a folder; a folder format refuses a path that looks like an
 * image file.
 */
export function checkOutputPath(path: string, format: OutputFormat | 'isbi'): void {
  const folder = isFolderPath(path);
  if (format === 'tiff' || format === 'isbi') {
    const what = format === 'isbi' ? 'isbi (one multi-page 32-bit float TIFF)' : 'tiff (one multi-page TIFF)';
    if (folder) throw wrongFormat(path, `is a folder, but format ${what} writes one file; give a .tif path, or a folder format (png-folder, tiff-folder)`);
    if (!hasTiffExtension(path)) {
      throw wrongFormat(path, `format ${what} needs a path ending in .tif or .tiff; for a folder of slices use png-folder or tiff-folder with a folder path`);
    }
    return;
  }
  const ext = extname(path).toLowerCase();
  if (!folder && (hasTiffExtension(path) || ext === '.png')) {
    throw wrongFormat(path, `format ${format} writes a folder of slices, but the path names a ${ext} file; give a folder path (e.g. out/), or format tiff for one file`);
  }
}

export function outputFormatFor(path: string, format?: OutputFormat): OutputFormat {
  if (format) {
    checkOutputPath(path, format);
    return format;
  }
  if (isFolderPath(path)) return 'png-folder';
  if (hasTiffExtension(path)) return 'tiff';
  if (extname(path).toLowerCase() === '.png') {
    throw wrongFormat(path, 'a stack is written as a folder of .png slices; give a folder path, or a .tif path for one multi-page file');
  }
  return 'png-folder';
}

/**
 * Writes a stack (or a stream of slices, consumed one at a time) and returns the files written.
 * Types are kept in TIFF; PNG slices are 8-bit (float in [0,1] scaled by 255) or 16-bit for uint16.
 */
export async function writeStack(path: string, source: SliceSource, options: WriteOptions = {}): Promise<string[]> {
  const format = outputFormatFor(path, options.format);
  const slices = checkedSlices(path, source);
  const guard = outputGuard(options.overwrite, options.inputs);
  if (format === 'tiff') {
    await writeTiffFile(path, slices, guard, pageTags(options.description, options.voxelSize));
    return [path];
  }
  return writeFolder(path, slices, format === 'png-folder' ? 'png' : 'tif', guard, pageTags(undefined, options.voxelSize).first);
}

/** The older names of what the values handed to writeIsbiSubmission mean (image/map-meaning.ts). */
export type { ProbabilityMeaning };

/**
 * Writes the ISBI 2012 submission format: one multi-page 32-bit float TIFF, values in [0,1],
 * 0 = membrane, 1 = non-membrane. `values` says what the input holds (a MapPolarity, or its older ProbabilityMeaning
 * name), so the polarity is never guessed.
 */
export async function writeIsbiSubmission(
  path: string,
  source: SliceSource,
  options: { values: MapPolarity | ProbabilityMeaning; overwrite?: boolean; inputs?: readonly string[]; description?: string; voxelSize?: VoxelSize },
): Promise<string> {
  checkOutputPath(path, 'isbi');
  const meaning = polarityOf(options.values);
  const toIsbi = (values: StackData, z: number, first: number): Float32Array => {
    const data = toFloat32(values);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!(v >= 0 && v <= 1)) {
        throw new EmsegIoError('invalid-data', path, `slice ${z} pixel ${first + i} is ${v}; ISBI values must lie in [0,1]`);
      }
      data[i] = convertValue(v, meaning, ISBI_POLARITY);
    }
    return data;
  };
  async function* isbiBands(s: BandedSlice, z: number): AsyncGenerator<Float32Array> {
    let first = 0;
    for await (const band of s.bands) {
      yield toIsbi(band, z, first);
      first += band.length;
    }
  }
  async function* asIsbi(): AsyncGenerator<AnySlice> {
    let z = 0;
    for await (const s of checkedSlices(path, source)) {
      yield isBanded(s)
        ? { width: s.width, height: s.height, sampleType: 'float32', bandRows: s.bandRows, bands: isbiBands(s, z) }
        : { width: s.width, height: s.height, data: toIsbi(s.data, z, 0) };
      z++;
    }
  }
  await writeTiffFile(path, asIsbi(), outputGuard(options.overwrite, options.inputs), pageTags(options.description, options.voxelSize));
  return path;
}

/** Slices of any source, checked to share one size and sample type. */
async function* checkedSlices(path: string, source: SliceSource): AsyncGenerator<AnySlice> {
  let first: AnySlice | undefined;
  let z = 0;
  for await (const s of toSlices(path, source)) {
    first ??= s;
    if (s.width !== first.width || s.height !== first.height || typeOf(s) !== typeOf(first)) {
      throw new EmsegIoError('mismatch', path, `slice ${z} is ${s.width}x${s.height} ${typeOf(s)} but slice 0 is ${first.width}x${first.height} ${typeOf(first)}`);
    }
    if (isBanded(s) && !(Number.isInteger(s.bandRows) && s.bandRows > 0)) {
      throw new EmsegIoError('mismatch', path, `slice ${z} comes in bands of ${s.bandRows} rows`);
    }
    if (!isBanded(s) && s.data.length !== s.width * s.height) {
      throw new EmsegIoError('mismatch', path, `slice ${z} holds ${s.data.length} values, not ${s.width}x${s.height}`);
    }
    z++;
    yield s;
  }
  if (!first) throw new EmsegIoError('invalid-data', path, 'nothing to write: the stack has no slices');
}

function toSlices(path: string, source: SliceSource): Iterable<AnySlice> | AsyncIterable<AnySlice> {
  if (!('data' in source)) return source;
  const stack = source;
  if (stack.data.length !== stack.width * stack.height * stack.depth) {
    throw new EmsegIoError('mismatch', path, `stack data holds ${stack.data.length} values, not ${stack.width}x${stack.height}x${stack.depth}`);
  }
  return Array.from({ length: stack.depth }, (_, z) => ({ width: stack.width, height: stack.height, data: sliceOf(stack, z) }));
}

async function writeTiffFile(path: string, slices: AsyncIterable<AnySlice>, guard: OutputGuard, tags: PageTags): Promise<void> {
  await refuseExisting(path, guard);
  const tmp = await createTemp(path, async (fh) => {
    const layout = new TiffLayout(path);
    await fh.write(layout.header(), 0, 8, 0);
    let z = 0;
    for await (const s of slices) {
      const text = z === 0 ? tags.first : tags.rest;
      if (isBanded(s)) {
        await writeBandedPage(fh, layout, s, `${path} slice ${z}`, text);
      } else {
        const { position, bytes, link } = layout.addPage({ ...pageFromSlice(s.data, s.width, s.height), ...text });
        await fh.write(bytes, 0, bytes.length, position);
        await fh.write(link.bytes, 0, 4, link.position);
      }
      z++;
    }
  });
  await commit([[tmp, path]], guard);
}

const BITS = (type: SampleType) => (8 * BYTES_PER_SAMPLE[type]) as 8 | 16 | 32;

/** One TIFF page, one strip per band, each band written as it arrives. */
async function writeBandedPage(fh: FileHandle, layout: TiffLayout, s: BandedSlice, where: string,
  text: PageTags['first']): Promise<void> {
  const bytesPerPixel = BYTES_PER_SAMPLE[s.sampleType];
  const strips = Math.ceil(s.height / s.bandRows);
  const rowsOf = (i: number) => Math.min(s.bandRows, s.height - i * s.bandRows);
  const lengths = Array.from({ length: strips }, (_, i) => rowsOf(i) * s.width * bytesPerPixel);
  const placed = layout.placePage({ width: s.width, height: s.height, bitsPerSample: BITS(s.sampleType),
    sampleFormat: s.sampleType === 'float32' ? 3 : 1, rowsPerStrip: s.bandRows, ...text }, lengths);
  let i = 0;
  for await (const band of s.bands) {
    if (i >= strips || band.length !== rowsOf(i) * s.width || sampleTypeOf(band) !== s.sampleType) {
      throw new EmsegIoError('mismatch', where, `band ${i} holds ${band.length} ${sampleTypeOf(band)} values, not ${i < strips ? rowsOf(i) : 0}x${s.width} ${s.sampleType}`);
    }
    const bytes = littleEndianBytes(band);
    await fh.write(bytes, 0, bytes.length, placed.strips[i]!);
    i++;
  }
  if (i !== strips) throw new EmsegIoError('mismatch', where, `${i} bands arrived, ${s.height} rows need ${strips}`);
  await fh.write(placed.ifd.bytes, 0, placed.ifd.bytes.length, placed.ifd.position);
  await fh.write(placed.link.bytes, 0, 4, placed.link.position);
}

/**
 * A banded slice gathered whole, for formats written in one piece (folder slices). Float bands bound for PNG are
 * converted to 8 bits as they arrive, so no whole float copy is made.
 */
async function wholeSlice(s: AnySlice, target: string, ext: 'png' | 'tif'): Promise<SliceLike> {
  if (!isBanded(s)) return s;
  const toBytes = ext === 'png' && s.sampleType === 'float32';
  const data = toBytes ? new Uint8Array(s.width * s.height) : allocate(s.sampleType, s.width * s.height);
  let at = 0;
  for await (const band of s.bands) {
    if (at + band.length > data.length) throw new EmsegIoError('mismatch', target, `bands hold more than ${s.width}x${s.height} values`);
    data.set(toBytes ? floatTo8Bit(band as Float32Array, target, at) : band, at);
    at += band.length;
  }
  if (at !== data.length) throw new EmsegIoError('mismatch', target, `bands hold ${at} of ${s.width}x${s.height} values`);
  return { width: s.width, height: s.height, data };
}

async function writeFolder(folder: string, slices: AsyncIterable<AnySlice>, ext: 'png' | 'tif', guard: OutputGuard,
  tags: PageTags['first']): Promise<string[]> {
  const out = FolderOutput.open(folder, guard);
  try {
    let z = 0;
    for await (const slice of slices) {
      const name = `${String(z).padStart(4, '0')}.${ext}`;
      const target = join(folder, name);
      const s = await wholeSlice(slice, target, ext);
      await out.add(name, ext === 'png' ? pngBytes(s, target) : encodeSingleTiff(s, target, tags));
      z++;
    }
  } catch (err) {
    await out.abort();
    throw err;
  }
  return out.commit();
}

function pngBytes(s: SliceLike, target: string): Uint8Array {
  if (s.data instanceof Uint8Array || s.data instanceof Uint16Array) return encodePng(s.data, s.width, s.height);
  if (s.data instanceof Uint32Array) {
    throw new EmsegIoError('invalid-data', target, "32-bit integer slices cannot be written as PNG; use format 'tiff' or 'tiff-folder'");
  }
  return encodePng(floatTo8Bit(s.data, target), s.width, s.height);
}

/** Float slices go to 8-bit PNG as round(v*255); anything outside [0,1] is refused, not clipped. */
function floatTo8Bit(data: Float32Array, target: string, first = 0): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= 0 && v <= 1)) throw new EmsegIoError('invalid-data', target, `pixel ${first + i} is ${v}; float slices written as PNG must lie in [0,1]`);
    out[i] = Math.round(v * 255);
  }
  return out;
}

function encodeSingleTiff(s: SliceLike, target: string, tags: PageTags['first']): Uint8Array {
  const layout = new TiffLayout(target);
  const { bytes, link } = layout.addPage({ ...pageFromSlice(s.data, s.width, s.height), ...tags });
  const out = new Uint8Array(8 + bytes.length);
  out.set(layout.header(), 0);
  out.set(bytes, 8);
  out.set(link.bytes, link.position);
  return out;
}

/** Refuses a single-file output that may not be written (see checkFileTarget); the message can be shown as is. */
async function refuseExisting(path: string, guard: OutputGuard): Promise<void> {
  checkFileTarget(path, guard, 'tiff');
}

/** Writes a hidden temporary file beside `target`; removes it if `fill` fails. */
async function createTemp(target: string, fill: (fh: FileHandle) => Promise<void>): Promise<string> {
  return createGuardedTemp(target, fill);
}

/** Renames finished temporaries onto their targets, re-checking for files that appeared meanwhile. */
async function commit(pairs: [tmp: string, target: string][], guard: OutputGuard): Promise<void> {
  try {
    for (const [, target] of pairs) await refuseExisting(target, guard);
    for (const [tmp, target] of pairs) await publishTemp(tmp, target);
  } catch (err) {
    await Promise.all(pairs.map(([tmp]) => discardTemp(tmp)));
    throw err;
  }
}
