/** Size limits shared by the readers; checked against headers before any pixel buffer is allocated. */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { EmsegIoError } from './errors.js';

/** Largest slice we agree to decode (2^31 pixels, as the issue asks). */
export const MAX_SLICE_PIXELS = 2 ** 31;

/** Largest whole stack readStack will put in one typed array; beyond it, iterate slices instead. */
export const MAX_STACK_ELEMENTS = 2 ** 32 - 1;

/**
 * Memory the process can still take without swapping or being killed: MemAvailable from /proc/meminfo (which counts
 * reclaimable page cache), else os.freemem(). EMSEG_MEMORY_LIMIT (bytes) lowers it, e.g. for a container or tests.
 */
export function availableMemoryBytes(): number {
  let available = freemem();
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch {
    // not Linux: os.freemem() is the best we have
  }
  const limit = Number(process.env.EMSEG_MEMORY_LIMIT);
  return Number.isFinite(limit) && limit > 0 ? Math.min(available, limit) : available;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/**
 * Decoders hold the compressed file, the inflated rows and the grey result at once; PNG decoding (fast-png/pako)
 * also grows its output buffer by doubling. Bytes needed per raw pixel byte, measured on large grey PNGs.
 */
export const DECODE_BYTES_PER_RAW_BYTE = 3;

/** Refuses a decode whose buffers (estimated from the header) exceed the memory available now. */
export function checkDecodeMemory(path: string, what: string, rawBytes: number, fileBytes: number): void {
  const needed = DECODE_BYTES_PER_RAW_BYTE * rawBytes + fileBytes;
  const available = availableMemoryBytes();
  if (needed > available) {
    throw new EmsegIoError('too-large', path, `decoding ${what} needs about ${formatBytes(needed)} but only ${formatBytes(available)} of memory is available`);
  }
}

/**
 * Largest volume a chunked reader opens (voxels): 2^53, the largest count JavaScript numbers hold exactly, so every
 * voxel and chunk index computed from the shape is exact. 9e15 voxels is ten times the largest EM volumes imaged.
 */
export const MAX_VOLUME_VOXELS = 2 ** 53;

/** Largest extent along one axis (32-bit, as TIFF and most tools): no section or stack comes near it. */
export const MAX_VOLUME_AXIS = 2 ** 32 - 1;

/**
 * Largest chunk, decoded (bytes): a chunk is always decoded whole, and 2 GiB - 1 is the largest buffer Node's zlib
 * inflates into everywhere. zarr-python's chunks are a few MB; a header claiming more is refused before any read.
 */
export const MAX_CHUNK_BYTES = 2 ** 31 - 1;

/**
 * Refuses a volume header whose shape or chunks are malformed ('corrupt': negative, fractional, chunks of 0, ranks
 * that disagree), hold nothing ('empty') or exceed the limits above ('too-large'), naming `where` (the metadata
 * file). `chunks` is undefined for a layout read in any region (a contiguous HDF5 dataset).
 */
export function checkVolumeExtent(where: string, shape: readonly unknown[], chunks: readonly unknown[] | undefined, itemBytes: number): void {
  const list = (v: readonly unknown[]) => `[${v.map((x) => JSON.stringify(x)).join(',')}]`;
  if (shape.some((v) => typeof v !== 'number' || !Number.isInteger(v))) throw new EmsegIoError('corrupt', where, `shape ${list(shape)} is not a list of whole numbers`);
  const dims = shape as number[];
  if (dims.some((v) => v < 0)) throw new EmsegIoError('corrupt', where, `shape ${list(shape)} has a negative extent`);
  if (dims.some((v) => v === 0)) throw new EmsegIoError('empty', where, `shape ${list(shape)} holds no voxels`);
  const axis = dims.findIndex((v) => v > MAX_VOLUME_AXIS);
  if (axis >= 0) throw new EmsegIoError('too-large', where, `shape ${list(shape)} has ${dims[axis]} voxels along axis ${axis}; emseg reads at most ${MAX_VOLUME_AXIS} per axis`);
  const voxels = dims.reduce((a, b) => a * b, 1);
  if (voxels > MAX_VOLUME_VOXELS) throw new EmsegIoError('too-large', where, `shape ${list(shape)} holds ${voxels.toExponential(2)} voxels; emseg reads at most 2^53 (${MAX_VOLUME_VOXELS.toExponential(2)})`);
  if (chunks === undefined) return;
  if (chunks.length !== shape.length) throw new EmsegIoError('corrupt', where, `chunks ${list(chunks)} and shape ${list(shape)} have different numbers of axes`);
  if (chunks.some((v) => typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw new EmsegIoError('corrupt', where, `chunks ${list(chunks)} must be positive whole numbers`);
  const bytes = (chunks as number[]).reduce((a, b) => a * b, itemBytes);
  if (bytes > MAX_CHUNK_BYTES) {
    throw new EmsegIoError('too-large', where, `chunks ${list(chunks)} take ${formatBytes(bytes)} each, decoded; a chunk is decoded whole, and emseg decodes at most ${formatBytes(MAX_CHUNK_BYTES)} (rechunk it smaller)`);
  }
}
