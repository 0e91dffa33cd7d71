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
import { sampleTypeOf, sliceOf, toFloat32 } from './stack.js';
import type { ImageStack, SliceLike } from './stack.js';
import { TiffLayout, pageFromSlice } from './tiff-write.js';

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
}

export type SliceSource = ImageStack | Iterable<SliceLike> | AsyncIterable<SliceLike>;

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
    await writeTiffFile(path, slices, guard);
    return [path];
  }
  return writeFolder(path, slices, format === 'png-folder' ? 'png' : 'tif', guard);
}

/** What the values handed to writeIsbiSubmission mean. */
export type ProbabilityMeaning = 'membrane-probability' | 'non-membrane-probability';

/**
 * Writes the ISBI 2012 submission format: one multi-page 32-bit float TIFF, values in [0,1],
 * 0 = membrane, 1 = non-membrane. `values` says what the input holds, so the polarity is never guessed.
 */
export async function writeIsbiSubmission(
  path: string,
  source: SliceSource,
  options: { values: ProbabilityMeaning; overwrite?: boolean; inputs?: readonly string[] },
): Promise<string> {
  checkOutputPath(path, 'isbi');
  const flip = options.values === 'membrane-probability';
  async function* asIsbi(): AsyncGenerator<SliceLike<Float32Array>> {
    let z = 0;
    for await (const s of checkedSlices(path, source)) {
      const data = toFloat32(s.data);
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (!(v >= 0 && v <= 1)) {
          throw new EmsegIoError('invalid-data', path, `slice ${z} pixel ${i} is ${v}; ISBI values must lie in [0,1]`);
        }
        if (flip) data[i] = 1 - v;
      }
      z++;
      yield { width: s.width, height: s.height, data };
    }
  }
  await writeTiffFile(path, asIsbi(), outputGuard(options.overwrite, options.inputs));
  return path;
}

/** Slices of any source, checked to share one size and sample type. */
async function* checkedSlices(path: string, source: SliceSource): AsyncGenerator<SliceLike> {
  let first: SliceLike | undefined;
  let z = 0;
  for await (const s of toSlices(path, source)) {
    first ??= s;
    if (s.width !== first.width || s.height !== first.height || sampleTypeOf(s.data) !== sampleTypeOf(first.data)) {
      throw new EmsegIoError('mismatch', path, `slice ${z} is ${s.width}x${s.height} ${sampleTypeOf(s.data)} but slice 0 is ${first.width}x${first.height} ${sampleTypeOf(first.data)}`);
    }
    if (s.data.length !== s.width * s.height) {
      throw new EmsegIoError('mismatch', path, `slice ${z} holds ${s.data.length} values, not ${s.width}x${s.height}`);
    }
    z++;
    yield s;
  }
  if (!first) throw new EmsegIoError('invalid-data', path, 'nothing to write: the stack has no slices');
}

function toSlices(path: string, source: SliceSource): Iterable<SliceLike> | AsyncIterable<SliceLike> {
  if (!('data' in source)) return source;
  const stack = source;
  if (stack.data.length !== stack.width * stack.height * stack.depth) {
    throw new EmsegIoError('mismatch', path, `stack data holds ${stack.data.length} values, not ${stack.width}x${stack.height}x${stack.depth}`);
  }
  return Array.from({ length: stack.depth }, (_, z) => ({ width: stack.width, height: stack.height, data: sliceOf(stack, z) }));
}

async function writeTiffFile(path: string, slices: AsyncIterable<SliceLike>, guard: OutputGuard): Promise<void> {
  await refuseExisting(path, guard);
  const tmp = await createTemp(path, async (fh) => {
    const layout = new TiffLayout(path);
    await fh.write(layout.header(), 0, 8, 0);
    for await (const s of slices) {
      const { position, bytes, link } = layout.addPage(pageFromSlice(s.data, s.width, s.height));
      await fh.write(bytes, 0, bytes.length, position);
      await fh.write(link.bytes, 0, 4, link.position);
    }
  });
  await commit([[tmp, path]], guard);
}

async function writeFolder(folder: string, slices: AsyncIterable<SliceLike>, ext: 'png' | 'tif', guard: OutputGuard): Promise<string[]> {
  const out = FolderOutput.open(folder, guard);
  try {
    let z = 0;
    for await (const s of slices) {
      const name = `${String(z).padStart(4, '0')}.${ext}`;
      const target = join(folder, name);
      await out.add(name, ext === 'png' ? pngBytes(s, target) : encodeSingleTiff(s, target));
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
function floatTo8Bit(data: Float32Array, target: string): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= 0 && v <= 1)) throw new EmsegIoError('invalid-data', target, `pixel ${i} is ${v}; float slices written as PNG must lie in [0,1]`);
    out[i] = Math.round(v * 255);
  }
  return out;
}

function encodeSingleTiff(s: SliceLike, target: string): Uint8Array {
  const layout = new TiffLayout(target);
  const { bytes, link } = layout.addPage(pageFromSlice(s.data, s.width, s.height));
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
