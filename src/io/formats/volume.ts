/**
 * The one interface every volume format is read through: a 3-D array (z, y, x) of one sample type, read by
 * region so that memory is bounded by the region asked for, never by the volume.
 */
import { EmsegError } from '../../errors.js';
import { EmsegIoError } from '../errors.js';
import { allocate } from '../../image/stack.js';
import type { SampleType, StackData } from '../../image/stack.js';
import type { VoxelSize } from '../voxel-size.js';

/** (z, y, x), in voxels. */
export type Vec3 = readonly [number, number, number];

/** A box of voxels, half-open: start <= v < end on each axis. */
export interface Region {
  start: Vec3;
  end: Vec3;
}

/** One resolution level of a multiscale image. */
export interface ScaleLevel {
  /** Array path inside the container ('0', '1', ...), as the metadata names it. */
  path: string;
  shape: Vec3;
  /** Voxel size relative to the data's units (NGFF coordinateTransformations scale, z y x). */
  scale: Vec3;
}

export type VolumeFormat = 'zarr' | 'hdf5' | 'tiff' | 'stack';

export interface VolumeReader {
  /** The path as the user gave it (with its array part, e.g. `vol.h5:/raw`), for messages. */
  readonly path: string;
  readonly format: VolumeFormat;
  readonly shape: Vec3;
  readonly dtype: SampleType;
  /** The natural read unit: reading whole, aligned chunks costs least. */
  readonly chunks: Vec3;
  /** All levels of a multiscale image (one entry for single-scale data) and the one being read. */
  readonly scales: readonly ScaleLevel[];
  readonly level: number;
  /**
   * Physical size of a voxel of the level read, as the file records it (io/voxel-size.ts); undefined when the file
   * says nothing (never guessed).
   */
  readonly voxelSize?: VoxelSize;
  /** Free-form metadata worth showing (OME-Zarr attributes, emseg polarity, compression). */
  readonly attributes: Record<string, unknown>;
  /** Chunk files found absent and read as the fill value so far (Zarr opened with allowMissingChunks). */
  readonly missingChunks?: () => MissingChunks;
  /**
   * PNG/TIFF stacks (format 'stack'): their image files in stack order, which an output never writes over, and the
   * file and page (from 0) section z comes from, for messages. Other formats are one file: `path`.
   */
  readonly files?: readonly string[];
  sectionOrigin?(z: number): { source: string; page: number };
  /** Voxels of `region` (z-major, then y, then x) in the volume's own sample type. */
  readRegion(region: Region): Promise<StackData>;
  close(): Promise<void>;
}

/**
 * Integer types a label volume (neuron ids, instance labels) may hold. Images are read as SampleType only; the types
 * here beyond it (64-bit and signed) are read only through `openLabels` (io/registry.ts), so no image code path ever
 * meets a bigint. Signed ids are read when none is negative.
 */
export type LabelType = 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64';
export const LABEL_TYPES = ['uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64'] as const satisfies readonly LabelType[];

/** Ids of a region as read: unsigned, 64-bit ids as bigint (exact above 2^53). */
export type LabelData = Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

/** A label volume: the reader of a VolumeReader without its image reads, and ids by region instead. */
export interface LabelReader extends Omit<VolumeReader, 'dtype' | 'readRegion'> {
  /** The type the file stores. */
  readonly labelType: LabelType;
  /** Ids of `region` (z-major), unsigned: a negative id of a signed type is refused ('invalid-data'). */
  readLabels(region: Region): Promise<LabelData>;
}

/** Absent chunk files a reader read as the fill value: distinct files (a lower bound when `atLeast`). */
export interface MissingChunks {
  count: number;
  atLeast: boolean;
  fill: number;
}

/** The one notice a command gives when its reader met absent chunks it was allowed to read as the fill value. */
export function missingChunksNotice(reader: VolumeReader): string | undefined {
  const m = reader.missingChunks?.();
  if (!m || m.count === 0) return undefined;
  return `${reader.path}: ${m.atLeast ? 'at least ' : ''}${m.count} chunk file${m.count === 1 ? ' was' : 's were'} absent and read as the fill value ${m.fill} (--allow-missing-chunks)`;
}

export function regionOf(start: Vec3, end: Vec3): Region {
  return { start, end };
}

export function wholeRegion(shape: Vec3): Region {
  return { start: [0, 0, 0], end: shape };
}

export function regionShape(r: Region): Vec3 {
  return [r.end[0] - r.start[0], r.end[1] - r.start[1], r.end[2] - r.start[2]];
}

export function voxelCount(shape: Vec3): number {
  return shape[0] * shape[1] * shape[2];
}

/** Refuses a region that is empty, inverted, fractional or outside the volume, naming the volume. */
/**
 * Starts reading a region that the caller awaits only later (after writing the previous one, or not at all when
 * that write fails). A bad chunk can reject it before anyone awaits it: marking it handled keeps Node from failing
 * the process with an unhandled rejection, while the error still reaches whoever awaits the returned promise.
 */
export function readAhead(reader: VolumeReader, region: Region): Promise<StackData> {
  const read = reader.readRegion(region);
  read.catch(() => undefined);
  return read;
}

export function checkRegion(region: Region, shape: Vec3, path: string): void {
  for (let a = 0; a < 3; a++) {
    const s = region.start[a]!;
    const e = region.end[a]!;
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > shape[a]! || e <= s) {
      throw new EmsegIoError('invalid-option', path, `region [${region.start.join(',')}]..[${region.end.join(',')}] is empty or outside the volume of shape [${shape.join(',')}] (z,y,x)`);
    }
  }
}

/** Largest region one readRegion call may allocate (elements), so a typo cannot ask for terabytes. */
export const MAX_REGION_ELEMENTS = 2 ** 31 - 1;

export function allocateRegion(dtype: SampleType, region: Region, path: string): StackData {
  const n = voxelCount(regionShape(region));
  if (n > MAX_REGION_ELEMENTS) {
    throw new EmsegIoError('too-large', path, `region of ${n} voxels exceeds ${MAX_REGION_ELEMENTS}; read it in smaller regions`);
  }
  return allocate(dtype, n);
}

/**
 * Copies the part of a source box (`src` holding `srcRegion`, z-major) that overlaps `dstRegion` into `dst`.
 * `src` may have its own strides (a decoded chunk, C or Fortran order).
 */
export function copyOverlap(
  src: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> },
  srcRegion: Region,
  srcStrides: Vec3,
  dst: StackData,
  dstRegion: Region,
): void {
  const lo = [0, 1, 2].map((a) => Math.max(srcRegion.start[a]!, dstRegion.start[a]!));
  const hi = [0, 1, 2].map((a) => Math.min(srcRegion.end[a]!, dstRegion.end[a]!));
  if (lo.some((v, a) => v >= hi[a]!)) return;
  const [, dy, dx] = regionShape(dstRegion);
  const width = hi[2]! - lo[2]!;
  const sx = srcStrides[2];
  for (let z = lo[0]!; z < hi[0]!; z++) {
    for (let y = lo[1]!; y < hi[1]!; y++) {
      const s = (z - srcRegion.start[0]) * srcStrides[0] + (y - srcRegion.start[1]) * srcStrides[1] + (lo[2]! - srcRegion.start[2]) * sx;
      const d = ((z - dstRegion.start[0]) * dy + (y - dstRegion.start[1])) * dx + (lo[2]! - dstRegion.start[2]);
      if (sx === 1) (dst as Float32Array).set(src.subarray(s, s + width) as Float32Array, d);
      else for (let i = 0; i < width; i++) dst[d + i] = src[s + i * sx]!; // Fortran-order chunks
    }
  }
}

/** C-order strides of a box. */
export function stridesOf(shape: Vec3): Vec3 {
  return [shape[1] * shape[2], shape[2], 1];
}

/** The regions of a regular chunk grid that overlap `region`, in z, y, x order. */
export function* chunksOverlapping(region: Region, chunks: Vec3, shape: Vec3): Generator<{ coords: Vec3; region: Region }> {
  const first = [0, 1, 2].map((a) => Math.floor(region.start[a]! / chunks[a]!));
  const last = [0, 1, 2].map((a) => Math.ceil(region.end[a]! / chunks[a]!));
  for (let cz = first[0]!; cz < last[0]!; cz++) {
    for (let cy = first[1]!; cy < last[1]!; cy++) {
      for (let cx = first[2]!; cx < last[2]!; cx++) {
        const coords: Vec3 = [cz, cy, cx];
        const start = coords.map((c, a) => c * chunks[a]!) as unknown as Vec3;
        const end = coords.map((c, a) => Math.min((c + 1) * chunks[a]!, shape[a]!)) as unknown as Vec3;
        yield { coords, region: { start, end } };
      }
    }
  }
}

/** Parses 'z,y,x' (or one number for all three) into positive integers (or positive numbers); `flag` names the option in errors. */
export function parseVec3(text: string, flag: string, integer = true): Vec3 {
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.length === 1 ? [parts[0], parts[0], parts[0]] : parts;
  const nums = values.map(Number);
  if (nums.length !== 3 || nums.some((n) => !(n > 0) || (integer && !Number.isInteger(n)))) {
    throw new EmsegError('invalid-option', flag, `expected three positive ${integer ? 'integers' : 'numbers'} z,y,x (or one for all), got "${text}"`);
  }
  return nums as unknown as Vec3;
}

export { allocate };
export type { SampleType, StackData, VoxelSize };
