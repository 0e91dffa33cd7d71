/**
 * An OME-Zarr image as a viewer layer. A tile of pyramid level L is one readRegion of just that tile from the stored
 * scale level L, so a 16384x16384 section is never decoded whole to be looked at. A level the file does not store
 * (or stores at another size) is made from the nearest finer stored level by halving the tile's own footprint there.
 */
import { existsSync } from 'node:fs';
import { EmsegError } from '../errors.js';
import { isUrl, openVolume, type VolumeReader } from '../io/registry.js';
import { storeFor } from '../io/stores/index.js';
import { looksLikeZarr } from '../io/formats/zarr.js';
import type { Region } from '../io/formats/volume.js';
import { allocate, type SampleType } from '../image/stack.js';
import { halve, orthoShape, type Downsample, type OrthoAxis, type Plane, type VolumeShape, type VolumeSource } from './source.js';

/** The OME-Zarr labels image that holds emseg's cells (emseg convert / segment write it there), under the image. */
const CELLS_LABELS = ['labels', 'cells'] as const;

/** How the viewer opens Zarr: never following links out of the folder it was given, absent chunks shown as fill. */
const VIEWER_OPEN = { confined: true, allowMissingChunks: true } as const;

/** What emseg's writer records in the image's attributes (src/io/formats/ome-zarr-write.ts); a map's polarity is read by image/map-meaning.ts. */
interface EmsegAttributes {
  kind?: string;
}

/**
 * The path the viewer works with: a local path as given; a URL (s3://, http(s)://) as the store registry names it,
 * without user:password (kept aside by the store), so that no layer name, caption or message shows them. A scheme no
 * store serves is refused there, naming it.
 */
export function viewerPath(path: string): string {
  return isUrl(path) ? storeFor(path).loc : path;
}

/**
 * True when `path` is a Zarr array or group (a folder with Zarr metadata). A URL is: volumes are read from URLs as
 * Zarr only (openVolume refuses other formats there, naming the URL).
 */
export async function isZarrPath(path: string): Promise<boolean> {
  if (isUrl(path)) return true;
  return existsSync(path) && looksLikeZarr(path);
}

/** The labels image holding the cells of the OME-Zarr image at `path` (`labels/cells` under it, in its store). */
export function cellsLabelsPath(path: string): string {
  const { store, loc } = storeFor(path);
  return store.join(loc, ...CELLS_LABELS);
}

/** The "emseg" attributes of an OME-Zarr image (its kind), empty when another tool wrote it. */
export function emsegAttributes(reader: VolumeReader): EmsegAttributes {
  const e = reader.attributes.emseg;
  return e !== null && typeof e === 'object' ? (e as EmsegAttributes) : {};
}

/** Whether the image has a `labels/cells` labels image beside it. */
export function hasCellsLabels(reader: VolumeReader): boolean {
  return Array.isArray(reader.attributes.labels) && (reader.attributes.labels as unknown[]).includes('cells');
}

export class ZarrSource implements VolumeSource {
  readonly shape: VolumeShape;
  readonly dtype: SampleType;
  /** readRegion calls made (tests bound the reads with it). */
  reads = 0;
  /** Samples read by those calls. */
  samplesRead = 0;
  private readonly readers = new Map<number, Promise<VolumeReader>>();

  private constructor(
    readonly path: string,
    readonly base: VolumeReader,
    /** Stored levels usable as pyramid level i: those whose y, x size is exactly the full size halved i times. */
    private readonly stored: readonly boolean[],
    private readonly downsample: Downsample,
  ) {
    this.shape = { depth: base.shape[0], height: base.shape[1], width: base.shape[2] };
    this.dtype = base.dtype;
    this.readers.set(0, Promise.resolve(base));
  }

  /**
   * Opens full resolution of `path` (an OME-Zarr group, or one of its level arrays like vol.zarr/0). Absent chunks
   * show as the fill value: the viewer looks at outputs still being written (a blockwise run in progress), whose
   * chunks appear block by block, and it only shows them; nothing it reads becomes data.
   */
  static async open(path: string, downsample: Downsample): Promise<ZarrSource> {
    const base = await openVolume(path, VIEWER_OPEN);
    if (base.format !== 'zarr') throw new EmsegError('not-image', path, 'is not a Zarr array or OME-Zarr image');
    if (base.level !== 0) throw new EmsegError('invalid-option', path, `names scale level ${base.level}; give the image (the .zarr folder) or its level 0`);
    let [h, w] = [base.shape[1], base.shape[2]];
    const stored = base.scales.map((s, i) => {
      if (i > 0) [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
      return s.shape[0] === base.shape[0] && s.shape[1] === h && s.shape[2] === w;
    });
    return new ZarrSource(path, base, stored, downsample);
  }

  sourceName(z: number): string {
    return `${this.path} z=${z}`;
  }

  /**
   * The whole full-resolution section. Only the split/merger marks (ErrorSource: the warping error is a property of
   * the whole section) ask for it; tiles and the readout under the cursor read tiles.
   */
  async section(z: number): Promise<Plane> {
    const { width, height } = this.shape;
    return { width, height, data: await this.read(0, z, 0, 0, width, height) };
  }

  async tile(z: number, level: number, x: number, y: number, tileSize: number): Promise<Plane> {
    const from = this.storedAtOrBelow(level);
    const step = 2 ** (level - from);
    // The tile's footprint at the stored level: 2^(level-from) times larger, starting on even coordinates so
    // that halving it gives the same samples as halving the whole level.
    const size = tileSize * step;
    const reader = await this.reader(from);
    const [, lh, lw] = reader.shape;
    const x0 = x * size;
    const y0 = y * size;
    const width = Math.min(size, lw - x0);
    const height = Math.min(size, lh - y0);
    if (width <= 0 || height <= 0) return { width: 0, height: 0, data: allocate(this.dtype, 0) };
    let plane: Plane = { width, height, data: await this.read(from, z, x0, y0, width, height) };
    for (let l = from; l < level; l++) plane = halve(plane, this.downsample);
    return plane;
  }

  /**
   * The orthogonal plane as one readRegion of a one-sample-thick box through every section: only the chunks that box
   * crosses are read, never the whole volume. Rows of the result are z (readRegion returns z, y, x order).
   */
  async orthoPlane(axis: OrthoAxis, at: number): Promise<Plane> {
    const { width, height } = orthoShape(this.shape, axis, this.path);
    const { depth, height: h, width: w } = this.shape;
    const region: Region = axis === 'xz' ? { start: [0, at, 0], end: [depth, at + 1, w] } : { start: [0, 0, at], end: [depth, h, at + 1] };
    this.reads++;
    this.samplesRead += width * height;
    return { width, height, data: await this.base.readRegion(region) };
  }

  /** The coarsest stored level not coarser than the one asked for: the least to read and halve. */
  private storedAtOrBelow(level: number): number {
    for (let l = Math.min(level, this.stored.length - 1); l > 0; l--) if (this.stored[l]) return l;
    return 0;
  }

  private reader(level: number): Promise<VolumeReader> {
    if (!this.readers.has(level)) this.readers.set(level, openVolume(this.groupPath(), { ...VIEWER_OPEN, scale: level }));
    return this.readers.get(level)!;
  }

  /** The group (the parent when the path named its level-0 array), in its store: other levels are opened through it. */
  private groupPath(): string {
    const { store, loc } = storeFor(this.path);
    return this.base.scales.length > 1 && store.name(loc) === this.base.scales[0]!.path ? store.parent(loc) : this.path;
  }

  private async read(level: number, z: number, x0: number, y0: number, width: number, height: number) {
    this.reads++;
    this.samplesRead += width * height;
    const reader = await this.reader(level);
    return reader.readRegion({ start: [z, y0, x0], end: [z + 1, y0 + height, x0 + width] });
  }
}
