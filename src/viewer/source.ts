/**
 * Where the viewer's pixels come from. The server sees every layer through VolumeSource: its shape and sample type,
 * one full section, or one tile of the pyramid. StackSource serves what src/io/ reads (PNG folders, TIFF stacks);
 * a chunked volume (OME-Zarr) can implement the same interface and read tiles from its own multiscale levels.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, relative, isAbsolute, sep } from 'node:path';
import fg from 'fast-glob';
import { EmsegError } from '../errors.js';
import { openStack, resolveSources, type ReadOptions } from '../io/index.js';
import { allocate, type SampleType, type StackData } from '../image/stack.js';
import { globBase } from '../io/sources.js';
import { LruCache } from './lru.js';

export interface VolumeShape {
  width: number;
  height: number;
  depth: number;
}

/** A 2-D block of samples, row-major. */
export interface Plane {
  width: number;
  height: number;
  data: StackData;
}

/**
 * How a level is made from the one below: averaging (intensities, probabilities), taking every other sample (ids),
 * or the largest of the four (sparse marks, which must not vanish when zoomed out).
 */
export type Downsample = 'mean' | 'nearest' | 'max';

/**
 * An orthogonal view of the volume: 'xz' cuts at one y (columns x, rows z), 'yz' at one x (columns y, rows z). Rows
 * are z for both, so the two views line up with the section slider.
 */
export type OrthoAxis = 'xz' | 'yz';

/**
 * Largest orthogonal plane made, in samples: a 16384-wide, 1024-deep volume's xz view. Beyond it the view is refused
 * (too-large) rather than held in memory at once.
 */
export const MAX_ORTHO_SAMPLES = 16 * 1024 * 1024;

export interface VolumeSource {
  readonly shape: VolumeShape;
  readonly dtype: SampleType;
  /** File name each section came from (for captions). */
  sourceName(z: number): string;
  /** The whole section at full resolution. */
  section(z: number): Promise<Plane>;
  /** Tile (x, y) of `tileSize` samples of pyramid level `level` (2^level times smaller), clipped at the edges. */
  tile(z: number, level: number, x: number, y: number, tileSize: number): Promise<Plane>;
  /** The full-resolution orthogonal plane through row y ('xz') or column x ('yz'); absent where it makes no sense. */
  orthoPlane?(axis: OrthoAxis, at: number): Promise<Plane>;
}

/** Width and height of the orthogonal plane of `axis` (see OrthoAxis), refused when larger than MAX_ORTHO_SAMPLES. */
export function orthoShape(shape: VolumeShape, axis: OrthoAxis, name: string): { width: number; height: number } {
  const out = { width: axis === 'xz' ? shape.width : shape.height, height: shape.depth };
  if (out.width * out.height > MAX_ORTHO_SAMPLES) {
    throw new EmsegError('too-large', name, `its ${axis} view would be ${out.width}x${out.height} samples, more than the viewer makes at once (${MAX_ORTHO_SAMPLES})`);
  }
  return out;
}

/** Decoded sections and pyramid levels the server keeps at once, in bytes (all layers together). */
export const SECTION_CACHE_BYTES = 1536 * 1024 * 1024;

const sharedCache = new LruCache<Plane>(SECTION_CACHE_BYTES);
let nextSourceId = 0;

interface SectionRef {
  file: string;
  page: number;
}

/** True when `inner` is `outer` or lies below it. */
function isInside(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * The files of one given path, keeping only those whose real location is inside the given folder (or the static
 * part of a glob): a symlink in a served folder must not expose a file elsewhere. A file named directly is served
 * as named. Returns the kept files and those refused.
 */
export async function containedFiles(input: string): Promise<{ files: string[]; refused: string[] }> {
  const files = await resolveSources(input);
  const info = await stat(input).catch(() => undefined);
  if (info && !info.isDirectory()) return { files, refused: [] };
  const root = await realpath(info ? input : fg.isDynamicPattern(input) ? globBase(input) : dirname(input));
  const kept: string[] = [];
  const refused: string[] = [];
  for (const f of files) {
    const real = await realpath(f).catch(() => undefined);
    (real !== undefined && isInside(root, real) ? kept : refused).push(f);
  }
  if (kept.length === 0) throw new EmsegError('outside', input, 'every file there is a link to a place outside it; nothing to serve');
  return { files: kept, refused };
}

/** A stack of image files (PNG folder, multi-page TIFF, list); sections are decoded on demand and cached. */
export class StackSource implements VolumeSource {
  private readonly id = nextSourceId++;

  private constructor(
    readonly shape: VolumeShape,
    readonly dtype: SampleType,
    private readonly refs: SectionRef[],
    private readonly options: ReadOptions,
    private readonly downsample: Downsample,
  ) {}

  static async open(files: string[], downsample: Downsample, options: ReadOptions = {}): Promise<StackSource> {
    const whole = await openStack(files, options); // checks sizes and types across all files
    const refs: SectionRef[] = [];
    for (const file of files) {
      const one = await openStack(file, options);
      for (let page = 0; page < one.depth; page++) refs.push({ file, page });
    }
    return new StackSource({ width: whole.width, height: whole.height, depth: whole.depth }, whole.sampleType, refs, options, downsample);
  }

  sourceName(z: number): string {
    return this.refs[z]!.file;
  }

  section(z: number): Promise<Plane> {
    return this.level(z, 0);
  }

  async tile(z: number, level: number, x: number, y: number, tileSize: number): Promise<Plane> {
    const plane = await this.level(z, level);
    return cutTile(plane, x * tileSize, y * tileSize, tileSize);
  }

  /**
   * One row (xz) or column (yz) of every section. A PNG/TIFF section is decoded whole (as for its tiles), one at a
   * time through the shared cache; only the plane itself is kept.
   */
  async orthoPlane(axis: OrthoAxis, at: number): Promise<Plane> {
    const { width, height } = orthoShape(this.shape, axis, this.refs[0]!.file);
    const data = allocate(this.dtype, width * height);
    for (let z = 0; z < this.shape.depth; z++) {
      const plane = await this.level(z, 0);
      if (axis === 'xz') data.set(plane.data.subarray(at * plane.width, (at + 1) * plane.width), z * width);
      else for (let y = 0; y < width; y++) data[z * width + y] = plane.data[y * plane.width + at]!;
    }
    return { width, height, data };
  }

  private level(z: number, level: number): Promise<Plane> {
    return sharedCache.getOrCreate(`${this.id}/${z}/${level}`, async () => {
      const value = level === 0 ? await this.decode(z) : halve(await this.level(z, level - 1), this.downsample);
      return { value, cost: value.data.byteLength };
    });
  }

  private async decode(z: number): Promise<Plane> {
    const ref = this.refs[z]!;
    const reader = await openStack(ref.file, this.options);
    for await (const s of reader.slices()) {
      if (s.page === ref.page) return { width: s.width, height: s.height, data: s.data };
    }
    throw new EmsegError('changed', ref.file, `page ${ref.page + 1} is gone; the file changed while the viewer was running`);
  }
}

/** Copies the block at (x0, y0) of at most size x size samples. */
export function cutTile(plane: Plane, x0: number, y0: number, size: number): Plane {
  const width = Math.max(0, Math.min(size, plane.width - x0));
  const height = Math.max(0, Math.min(size, plane.height - y0));
  const data = allocate(sampleOf(plane.data), width * height);
  for (let y = 0; y < height; y++) {
    const from = (y0 + y) * plane.width + x0;
    data.set(plane.data.subarray(from, from + width), y * width);
  }
  return { width, height, data };
}

function sampleOf(data: StackData): SampleType {
  return data instanceof Uint8Array ? 'uint8' : data instanceof Uint16Array ? 'uint16' : data instanceof Uint32Array ? 'uint32' : 'float32';
}

/** The next pyramid level: half the size (rounded up), each sample from the 2x2 block it covers. */
export function halve(plane: Plane, mode: Downsample): Plane {
  const { width: w, height: h, data: src } = plane;
  const width = Math.ceil(w / 2);
  const height = Math.ceil(h / 2);
  const out = allocate(sampleOf(src), width * height);
  for (let y = 0; y < height; y++) {
    const y0 = 2 * y;
    const y1 = Math.min(y0 + 1, h - 1);
    for (let x = 0; x < width; x++) {
      const x0 = 2 * x;
      if (mode === 'nearest') {
        out[y * width + x] = src[y0 * w + x0]!;
        continue;
      }
      const x1 = Math.min(x0 + 1, w - 1);
      if (mode === 'max') {
        out[y * width + x] = Math.max(src[y0 * w + x0]!, src[y0 * w + x1]!, src[y1 * w + x0]!, src[y1 * w + x1]!);
        continue;
      }
      const mean = (src[y0 * w + x0]! + src[y0 * w + x1]! + src[y1 * w + x0]! + src[y1 * w + x1]!) / 4;
      out[y * width + x] = out instanceof Float32Array ? mean : Math.round(mean);
    }
  }
  return { width, height, data: out };
}

/** Pyramid levels needed so that the smallest one fits in one tile. */
export function levelCount(shape: VolumeShape, tileSize: number): number {
  let levels = 1;
  for (let s = Math.max(shape.width, shape.height); s > tileSize; s = Math.ceil(s / 2)) levels++;
  return levels;
}
