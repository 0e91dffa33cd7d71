/**
 * Writing OME-Zarr: NGFF 0.4 on Zarr v2, the layout zarr-python 2.x, Neuroglancer, napari (ome-zarr) and
 * Fiji (n5-zarr / BigDataViewer) all read. Chunk keys use '/' (dimension_separator, as NGFF 0.4 recommends);
 * compression is blosc (zarr-python's default), zlib or gzip, all decoded by numcodecs. Regions are written
 * through zarrita in whole chunks, each chunk file atomically, so parallel writers of disjoint chunk-aligned
 * regions never touch one file and a killed run leaves only complete chunks.
 */
import * as zarr from 'zarrita';
import { EmsegError } from '../../errors.js';
import { EmsegIoError, describe, fromFsError } from '../errors.js';
import type { SampleType } from '../../image/stack.js';
import { CHANNEL_AXIS, meaningRecord, type MapPolarity, type MultiChannelRecord } from '../../image/map-meaning.js';
import { outputGuard } from '../output-guard.js';
import { RECORDS_DIR, UNPUBLISHED_RECORD, checkStoredVolumeTarget, checkVolumeTarget } from '../volume-output.js';
import { storeFor, type VolumeStore, type ZarrWritable } from '../stores/index.js';
import { makeDirs } from '../../util/mkdirs.js';
import { downsample2x, downsampleIds2x } from './pyramid.js';
import type { Downsampling } from './pyramid.js';
import { regionShape, stridesOf } from './volume.js';
import type { Region, ScaleLevel, StackData, Vec3 } from './volume.js';
import { openZarr, openZarrLabels } from './zarr.js';
import { DigestRecorder, StoredDigestRecorder, writtenFile, type WrittenFile } from './chunk-digests.js';
import { registerZarrCodecs } from './zarr-codecs.js';

export type ImageKind = 'image' | 'membrane' | 'labels';
export type Compression = 'blosc' | 'zlib' | 'gzip' | 'none';
export const COMPRESSIONS: readonly Compression[] = ['blosc', 'zlib', 'gzip', 'none'];

/**
 * What a membrane map's values mean: image/map-meaning.ts's MapPolarity, under the name the library API had first.
 * @deprecated use MapPolarity
 */
export type MembranePolarity = MapPolarity;

export const NGFF_VERSION = '0.4';

/** Pyramid levels stop once a level fits in one chunk in y and x, or at this many levels. */
export const MAX_LEVELS = 16;

/** What an OME-Zarr output stores: an image sample type, or uint64 for labels (ids past 2^32, or tools that expect them). */
export type WriteDtype = SampleType | 'uint64';
/** Zarr v2 dtypes (NumPy typestr: byte order, kind, bytes), as the Zarr v2 spec has them. */
const ZARR_DTYPE: Record<WriteDtype, string> = { uint8: '|u1', uint16: '<u2', uint32: '<u4', float32: '<f4', uint64: '<u8' };
/** What a region write takes: image samples, or uint64 ids. */
export type WriteData = StackData | BigUint64Array;

/** Blosc settings of zarr-python's default compressor (lz4, byte shuffle). */
const BLOSC_DEFAULT = { id: 'blosc', cname: 'lz4', clevel: 5, shuffle: 1, blocksize: 0 };
const ZLIB_LEVEL = 1;

export interface OmeZarrOptions {
  shape: Vec3;
  dtype: WriteDtype;
  /** Chunk shape (z, y, x); the same at every level (edge chunks are clipped by the array shape). */
  chunks: Vec3;
  kind?: ImageKind;
  compression?: Compression;
  /** Total levels including full resolution; default: down until a level fits in one chunk in y, x. */
  levels?: number;
  /** Physical voxel size (z, y, x) in `unit`; default 1 with no unit. */
  voxelSize?: Vec3;
  unit?: string;
  name?: string;
  /** Membrane maps only: what the values mean (recorded in the metadata, never guessed). */
  polarity?: MapPolarity;
  /** Extra keys stored under "emseg" in the image's attributes (model, source, ...). */
  extra?: Record<string, unknown>;
  /**
   * A multi-channel map: arrays get a leading channel axis `c` (NGFF 0.4 type "channel", scale 1) of one entry per
   * recorded channel, chunked one channel per chunk, and this record is written under "emseg" (image/map-meaning.ts).
   * One level only (no pyramid); regions are written channel-major (c, z, y, x).
   */
  maps?: MultiChannelRecord;
}

export interface OmeZarrWriter {
  readonly dir: string;
  readonly levels: readonly ScaleLevel[];
  readonly chunks: Vec3;
  readonly dtype: WriteDtype;
  /** Channels along the axis `c` of a multi-channel map (options.maps); 1 for an image without that axis. */
  readonly channels: number;
  /**
   * Writes full-resolution voxels; the region must start on chunk boundaries and end on one or at the edge. A
   * multi-channel map takes every channel of the region, channel-major (c, z, y, x).
   */
  writeRegion(region: Region, data: WriteData): Promise<void>;
  /** Files of the full-resolution chunks inside `region` (for done markers). */
  chunkFiles(region: Region): string[];
  /**
   * writeRegion, returning the chunk files it stored with the size and crc32 of the bytes stored (for done markers,
   * which then need not read them back); a chunk the Zarr library did not store is named by its file only.
   */
  writeBlock(region: Region, data: WriteData): Promise<(string | WrittenFile)[]>;
  /**
   * Records the digests of the level-0 chunks this writer writes from now on, for a writer that alone writes all of
   * level 0 (convert); sealDigests() stores them once level 0 is complete. Blockwise runs, whose blocks many
   * processes write, keep their chunks' digests in the done markers instead (src/pipeline/markers.ts).
   */
  recordDigests(): Promise<void>;
  /** Stores the level-0 digests recorded since recordDigests() (nothing without it); call once level 0 is complete. */
  sealDigests(): Promise<void>;
  /** Fills levels 1.. from level 0 (call once level 0 is complete), recording each level's chunk digests. */
  buildPyramid(onTile?: (done: number, total: number) => void): Promise<void>;
  /** Writes the group's metadata of an output created `unpublished` (WriteMode); call once everything else is written. */
  publish(): Promise<void>;
  /** Adds an OME-Zarr labels image (`labels/<name>/`) of the same shape; returns its writer. */
  addLabels(name: string, options: { dtype: SampleType; compression?: Compression }): Promise<OmeZarrWriter>;
}

export function autoLevels(shape: Vec3, chunks: Vec3): number {
  let n = 1;
  let [h, w] = [shape[1], shape[2]];
  while (n < MAX_LEVELS && (h > chunks[1] || w > chunks[2])) {
    h = Math.ceil(h / 2);
    w = Math.ceil(w / 2);
    n++;
  }
  return n;
}

function levelShapes(shape: Vec3, levels: number): Vec3[] {
  const out: Vec3[] = [shape];
  for (let l = 1; l < levels; l++) {
    const p = out[l - 1]!;
    out.push([p[0], Math.ceil(p[1] / 2), Math.ceil(p[2] / 2)]);
  }
  return out;
}

function compressor(c: Compression): Record<string, unknown> | null {
  if (c === 'none') return null;
  if (c === 'blosc') return BLOSC_DEFAULT;
  return { id: c, level: ZLIB_LEVEL };
}

function checkOptions(o: OmeZarrOptions): void {
  const bad = (field: string, msg: string) => new EmsegError('invalid-option', field, msg);
  if (o.shape.some((v) => !Number.isInteger(v) || v <= 0)) throw bad('shape', `must be positive integers, got [${o.shape.join(',')}]`);
  if (o.chunks.some((v) => !Number.isInteger(v) || v <= 0)) throw bad('chunks', `must be positive integers, got [${o.chunks.join(',')}]`);
  if (o.kind === 'labels' && o.dtype === 'float32') throw bad('dtype', 'labels are integers (uint8, uint16, uint32 or uint64)');
  if (o.kind !== 'labels' && o.dtype === 'uint64') throw bad('dtype', 'uint64 is written for labels only; images and maps are uint8, uint16, uint32 or float32');
  if (o.kind === 'membrane' && !o.polarity) throw bad('polarity', 'a membrane map needs its polarity: membrane-high (values are P(membrane)) or membrane-low (ISBI: 0 = membrane)');
  if (o.levels !== undefined && (!Number.isInteger(o.levels) || o.levels < 1 || o.levels > MAX_LEVELS)) throw bad('levels', `must be 1..${MAX_LEVELS}, got ${o.levels}`);
  if (o.compression && !COMPRESSIONS.includes(o.compression)) throw bad('compression', `must be one of ${COMPRESSIONS.join(', ')}, got "${o.compression}"`);
  if (o.maps) {
    if ((o.kind ?? 'image') !== 'image' || o.polarity) throw bad('maps', 'a multi-channel map records each channel\'s meaning itself (no kind or polarity besides)');
    if (o.levels !== undefined && o.levels !== 1) throw bad('levels', 'a multi-channel map has one level (no pyramid)');
    if (o.maps.channels.length === 0) throw bad('maps', 'records no channels');
  }
}

/** Entries along the channel axis: 0 for an image without one. */
const channelsOf = (o: OmeZarrOptions): number => o.maps?.channels.length ?? 0;
/** An array's shape or chunks with the channel axis in front where there is one (chunks: one channel each). */
function withChannels<T>(o: OmeZarrOptions, v: readonly T[], lead: T): T[] {
  return o.maps ? [lead, ...v] : [...v];
}

function multiscalesOf(o: OmeZarrOptions, shapes: Vec3[]): Record<string, unknown> {
  const v = o.voxelSize ?? [1, 1, 1];
  const axis = (name: string) => ({ name, type: 'space', ...(o.unit ? { unit: o.unit } : {}) });
  const mode: Downsampling = o.kind === 'labels' ? 'mode' : 'mean';
  // NGFF 0.4: a channel axis comes before the space axes and has no unit; its scale is 1.
  const channel = o.maps ? [{ name: CHANNEL_AXIS, type: 'channel' }] : [];
  return {
    version: NGFF_VERSION,
    name: o.name ?? 'image',
    axes: [...channel, axis('z'), axis('y'), axis('x')],
    datasets: shapes.map((_, l) => ({
      path: String(l),
      coordinateTransformations: [{ type: 'scale', scale: withChannels(o, [v[0], v[1] * 2 ** l, v[2] * 2 ** l], 1) }],
    })),
    // A multi-channel map has one level: no downsampling to describe.
    ...(o.maps ? {} : { type: mode, metadata: { description: `2x2 ${mode} downsampling in y and x per level (z kept)`, method: 'emseg' } }),
  };
}

function zarrayOf(shape: Vec3, o: OmeZarrOptions): Record<string, unknown> {
  return {
    zarr_format: 2,
    shape: withChannels(o, shape, channelsOf(o)),
    chunks: withChannels(o, o.chunks, 1),
    dtype: ZARR_DTYPE[o.dtype],
    compressor: compressor(o.compression ?? 'blosc'),
    fill_value: 0,
    order: 'C',
    filters: null,
    dimension_separator: '/',
  };
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** How an existing output folder is treated; `inputs` are the command's inputs, never replaced (io/volume-output.ts). */
export interface WriteMode {
  overwrite?: boolean;
  resume?: boolean;
  /**
   * Leave out the group's metadata (.zgroup, .zattrs) until writer.publish(): an output built in place (a bucket has
   * no rename) is no image to a reader until it is whole.
   */
  unpublished?: boolean;
  inputs?: readonly string[];
}

/**
 * Creates (or, with `resume`, reopens after checking it matches) an OME-Zarr image at `dir`.
 * An existing folder is refused unless `overwrite` (replaced, if emseg wrote it and it holds nothing else) or
 * `resume` (kept; it must be emseg's and its metadata must agree).
 */
export async function createOmeZarr(dir: string, o: OmeZarrOptions, mode: WriteMode = {}): Promise<OmeZarrWriter> {
  checkOptions(o);
  registerZarrCodecs();
  const { store, loc } = storeFor(dir);
  const shapes = levelShapes(o.shape, o.levels ?? (o.maps ? 1 : autoLevels(o.shape, o.chunks)));
  const overwrite = (mode.overwrite ?? false) && !mode.resume;
  const guard = outputGuard(overwrite, store.scheme === 'file' ? mode.inputs : []);
  const exists = store.scheme === 'file' ? checkVolumeTarget(loc, guard, { resume: mode.resume })
    : await checkStoredVolumeTarget(store, loc, { overwrite, resume: mode.resume, inputs: mode.inputs ?? [] });
  // With resume, a folder whose metadata is not written yet (another shard is creating it) gets the same files.
  const hasMetadata = exists && await store.isFile(store.join(loc, '0', '.zarray'));
  if (hasMetadata && mode.resume) {
    await checkSameLayout(store, loc, shapes, o);
  } else {
    if (exists && overwrite) await store.remove(loc, true);
    if (store.scheme === 'file') await makeDirs(loc).catch((err) => { throw fromFsError(err, loc, 'creating the output folder'); });
    await writeArrayMetadata(store, loc, o, shapes);
    // Unpublished: a record says whose it is (the output guard lets --overwrite replace it), gone once published.
    if (mode.unpublished) await store.write(store.join(loc, RECORDS_DIR, UNPUBLISHED_RECORD), json({ unpublished: new Date().toISOString() }));
    else await writeGroupMetadata(store, loc, o, shapes);
  }
  return writerFor(store, loc, o, shapes);
}

/** The levels' array metadata, written before the group's (a reader finds an image only once its arrays exist). */
async function writeArrayMetadata(store: VolumeStore, dir: string, o: OmeZarrOptions, shapes: Vec3[]): Promise<void> {
  for (const [l, s] of shapes.entries()) {
    await store.write(store.join(dir, String(l), '.zarray'), json(zarrayOf(s, o)));
    await store.write(store.join(dir, String(l), '.zattrs'), json({ _ARRAY_DIMENSIONS: withChannels(o, ['z', 'y', 'x'], CHANNEL_AXIS) }));
  }
}

/** The group's metadata: .zgroup and the NGFF multiscales with emseg's record. */
async function writeGroupMetadata(store: VolumeStore, dir: string, o: OmeZarrOptions, shapes: Vec3[]): Promise<void> {
  await store.write(store.join(dir, '.zgroup'), json({ zarr_format: 2 }));
  const attrs: Record<string, unknown> = { multiscales: [multiscalesOf(o, shapes)] };
  attrs.emseg = { ...(o.maps ?? meaningRecord(o.kind ?? 'image', o.polarity)), ...(o.extra ?? {}) };
  await store.write(store.join(dir, '.zattrs'), json(attrs));
}

async function readText(store: VolumeStore, path: string): Promise<string> {
  const bytes = await store.read(path);
  if (bytes === undefined) throw new EmsegIoError('not-found', path, 'no such file or folder');
  return new TextDecoder().decode(bytes);
}

async function checkSameLayout(store: VolumeStore, dir: string, shapes: Vec3[], o: OmeZarrOptions): Promise<void> {
  const want = zarrayOf(shapes[0]!, o);
  const path = store.join(dir, '0', '.zarray');
  let have: Record<string, unknown>;
  try {
    have = JSON.parse(await readText(store, path)) as Record<string, unknown>;
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `cannot resume: array metadata unreadable (${describe(err)})`, { cause: err });
  }
  for (const key of ['shape', 'chunks', 'dtype'] as const) {
    if (JSON.stringify(have[key]) !== JSON.stringify(want[key])) {
      throw new EmsegIoError('mismatch', path, `cannot resume: ${key} is ${JSON.stringify(have[key])} on disk but this run writes ${JSON.stringify(want[key])}; pass --overwrite to start again`);
    }
  }
  await checkSameScale(store, dir, shapes, o);
}

/** A resumed output keeps the voxel size it was created with: another one asked for now is refused, not dropped. */
async function checkSameScale(store: VolumeStore, dir: string, shapes: Vec3[], o: OmeZarrOptions): Promise<void> {
  const path = store.join(dir, '.zattrs');
  const have = await readText(store, path).then((t) => level0Scale(JSON.parse(t))).catch(() => undefined);
  const want = level0Scale({ multiscales: [multiscalesOf(o, shapes)] });
  if (have !== undefined && have !== want) {
    throw new EmsegIoError('mismatch', path, `cannot resume: the output records voxel size ${have}, this run writes ${want} ` +
      '(--voxel-size / --unit, or the input\'s); rerun with the voxel size it was started with, or pass --overwrite to start again');
  }
}

/** Level 0's scale and unit as one comparable string, e.g. `[50,4,4] nanometer`. */
function level0Scale(attrs: unknown): string {
  const ms = (attrs as { multiscales?: { axes?: { unit?: string }[]; datasets?: { coordinateTransformations?: { type?: string; scale?: number[] }[] }[] }[] })
    ?.multiscales?.[0];
  const scale = ms?.datasets?.[0]?.coordinateTransformations?.find((t) => t.type === 'scale')?.scale;
  return `${JSON.stringify(scale ?? null)} ${ms?.axes?.at(-1)?.unit ?? '(no unit)'}`;
}

/** What records one array's chunk digests as they are written: a local file (DigestRecorder) or an object. */
type Recorder = Pick<DigestRecorder, 'add'> & { seal(): void | Promise<void>; abort(): void | Promise<void> };

/** The store's writable zarrita store, also telling the digest recorder of a chunk's level (its first key part) what it wrote. */
class RecordingStore implements ZarrWritable {
  readonly recorders = new Map<string, Recorder>();
  private readonly inner: ZarrWritable;
  /** Keys whose stored bytes are wanted (writeBlock's chunks), by key: the file's location, then what was stored. */
  private readonly watched = new Map<string, { path: string; written?: WrittenFile }>();

  constructor(private readonly files: VolumeStore, readonly root: string) {
    this.inner = files.zarrWritable(root);
  }

  get(key: `/${string}`, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> {
    return this.inner.get(key, opts);
  }

  getRange(key: `/${string}`, range: Parameters<ZarrWritable['getRange']>[1], opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> {
    return this.inner.getRange(key, range, opts);
  }

  /** Starts noting the size and digest of what is stored at `keys` (each at its file `path`). */
  watch(chunks: readonly { key: string; path: string }[]): void {
    for (const c of chunks) this.watched.set(c.key, { path: c.path });
  }

  /** What was stored at each key since watch() (its file alone where nothing was), forgetting them. */
  take(chunks: readonly { key: string; path: string }[]): (string | WrittenFile)[] {
    const out = chunks.map((c) => this.watched.get(c.key)?.written ?? c.path);
    for (const c of chunks) this.watched.delete(c.key);
    return out;
  }

  async set(key: `/${string}`, value: Uint8Array): Promise<void> {
    await this.inner.set(key, value);
    const watched = this.watched.get(key);
    if (watched) watched.written = writtenFile(watched.path, value); // only once stored: a marker lists stored bytes
    this.recorders.get(key.split('/')[1]!)?.add(key, value);
  }

  /** Starts recording `level` (forgetting its old record first, so no record describes older chunks). */
  async record(level: number): Promise<void> {
    await this.recorders.get(String(level))?.abort();
    const r = this.files.scheme === 'file' ? new DigestRecorder(this.root, String(level)) : await StoredDigestRecorder.start(this.files, this.root, String(level));
    this.recorders.set(String(level), r);
  }

  async seal(level: number): Promise<void> {
    const r = this.recorders.get(String(level));
    this.recorders.delete(String(level));
    await r?.seal();
  }

  async abort(level: number): Promise<void> {
    const r = this.recorders.get(String(level));
    this.recorders.delete(String(level));
    await r?.abort();
  }
}

function writerFor(files: VolumeStore, dir: string, o: OmeZarrOptions, shapes: Vec3[]): OmeZarrWriter {
  const store = new RecordingStore(files, dir);
  const arrays = new Map<number, Promise<zarr.Array<zarr.DataType, RecordingStore>>>();
  const arrayAt = (l: number) => {
    if (!arrays.has(l)) arrays.set(l, zarr.open.v2(zarr.root(store).resolve(String(l)), { kind: 'array', attrs: false }));
    return arrays.get(l)!;
  };
  const chunks = o.chunks;
  const channels = channelsOf(o);

  /**
   * The full-resolution chunks inside `region` (every channel of a multi-channel map): their store keys
   * ('/0/[c/]z/y/x', as zarrita names them) and files.
   */
  function level0Chunks(region: Region): { key: string; path: string }[] {
    const out: { key: string; path: string }[] = [];
    for (let c = 0; c < Math.max(1, channels); c++) {
      for (let z = region.start[0]; z < region.end[0]; z += chunks[0]) {
        for (let y = region.start[1]; y < region.end[1]; y += chunks[1]) {
          for (let x = region.start[2]; x < region.end[2]; x += chunks[2]) {
            const at = withChannels(o, [z / chunks[0], y / chunks[1], x / chunks[2]], c).map(String);
            out.push({ key: `/0/${at.join('/')}`, path: files.join(dir, '0', ...at) });
          }
        }
      }
    }
    return out;
  }

  async function write(level: number, region: Region, data: WriteData): Promise<void> {
    const s = shapes[level]!;
    const n = regionShape(region);
    const where = files.join(dir, String(level));
    for (let a = 0; a < 3; a++) {
      const aligned = region.start[a]! % chunks[a]! === 0 && (region.end[a]! % chunks[a]! === 0 || region.end[a] === s[a]);
      if (!aligned || region.start[a]! < 0 || region.end[a]! > s[a]! || n[a]! <= 0) {
        throw new EmsegIoError('invalid-option', where, `region [${region.start.join(',')}]..[${region.end.join(',')}] is not aligned to chunks [${chunks.join(',')}] inside shape [${s.join(',')}]`);
      }
    }
    const values = Math.max(1, channels) * n[0] * n[1] * n[2];
    if (data.length !== values) throw new EmsegIoError('invalid-option', where, `region needs ${values} values, got ${data.length}`);
    const arr = await arrayAt(level);
    const sel = withChannels(o, [0, 1, 2].map((a) => zarr.slice(region.start[a]!, region.end[a]!)), zarr.slice(0, channels));
    try {
      await zarr.set(arr, sel, { data, shape: withChannels(o, n, channels), stride: withChannels(o, stridesOf(n), n[0] * n[1] * n[2]) } as never);
    } catch (err) {
      if (err instanceof EmsegError) throw err;
      throw new EmsegIoError('fs-failed', where, `writing chunks failed (${describe(err)})`, { cause: err });
    }
  }

  return {
    dir, chunks, dtype: o.dtype, channels: Math.max(1, channels),
    levels: shapes.map((s, l) => ({ path: String(l), shape: s, scale: [1, 2 ** l, 2 ** l] as Vec3 })),
    writeRegion: (region, data) => write(0, region, data),
    chunkFiles: (region) => level0Chunks(region).map((c) => c.path),
    async writeBlock(region, data) {
      const inside = level0Chunks(region);
      store.watch(inside);
      try {
        await write(0, region, data);
      } catch (err) {
        store.take(inside);
        throw err;
      }
      return store.take(inside);
    },
    async publish() {
      await writeGroupMetadata(files, dir, o, shapes);
      await files.remove(files.join(dir, RECORDS_DIR, UNPUBLISHED_RECORD));
    },
    recordDigests: () => store.record(0),
    sealDigests: () => store.seal(0),
    buildPyramid: (onTile) => buildPyramid(files, dir, shapes, chunks, o.kind === 'labels' ? 'mode' : 'mean', write, store, onTile, o.dtype === 'uint64'),
    addLabels: (name, lo) => addLabelsImage(files, dir, o, shapes.length, name, lo),
  };
}

type LevelWrite = (level: number, region: Region, data: WriteData) => Promise<void>;

/** A level read back for the next level's downsampling: uint64 ids through the label read (image reads refuse them). */
async function openLevel(path: string, big: boolean): Promise<{ shape: Vec3; read(r: Region): Promise<WriteData>; close(): Promise<void> }> {
  if (!big) {
    const r = await openZarr(path);
    return { shape: r.shape, read: (region) => r.readRegion(region), close: () => r.close() };
  }
  const r = await openZarrLabels(path);
  return { shape: r.shape, read: async (region) => (await r.readLabels(region)) as BigUint64Array, close: () => r.close() };
}

/**
 * Levels 1.. from the level below, one output chunk column at a time (chunk depth x chunk height x chunk width, read
 * from the 2x larger region below): memory is bounded by the chunk, not by the volume's width (a band across the
 * whole width of a 10^4-pixel-wide volume would be gigabytes). Each level's digest record is removed before its
 * first chunk is written and stored after its last, so a level is either described by its record or (interrupted)
 * read unverified, never checked against older chunks.
 */
async function buildPyramid(files: VolumeStore, dir: string, shapes: Vec3[], chunks: Vec3, method: Downsampling, write: LevelWrite, store: RecordingStore,
  onTile?: (done: number, total: number) => void, big = false): Promise<void> {
  const tiles = shapes.slice(1).reduce((n, s) => n + [0, 1, 2].reduce((t, a) => t * Math.ceil(s[a]! / chunks[a]!), 1), 0);
  let done = 0;
  for (let l = 1; l < shapes.length; l++) {
    const src = await openLevel(files.join(dir, String(l - 1)), big);
    await store.record(l);
    try {
      for (const out of chunkRegions(shapes[l]!, chunks)) {
        const from: Region = { start: [out.start[0], 2 * out.start[1], 2 * out.start[2]],
          end: [out.end[0], Math.min(2 * out.end[1], src.shape[1]), Math.min(2 * out.end[2], src.shape[2])] };
        const read = await src.read(from);
        const data = read instanceof BigUint64Array ? downsampleIds2x(read, regionShape(from)) : downsample2x(read, regionShape(from), method);
        await write(l, out, data);
        onTile?.(++done, tiles);
      }
      await store.seal(l);
    } catch (err) {
      await store.abort(l);
      throw err;
    } finally {
      await src.close();
    }
  }
}

/** The chunk-aligned regions of a level of this shape, in raster order. */
function* chunkRegions(shape: Vec3, chunks: Vec3): Generator<Region> {
  for (let z0 = 0; z0 < shape[0]; z0 += chunks[0]) {
    for (let y0 = 0; y0 < shape[1]; y0 += chunks[1]) {
      for (let x0 = 0; x0 < shape[2]; x0 += chunks[2]) {
        yield { start: [z0, y0, x0], end: [Math.min(z0 + chunks[0], shape[0]), Math.min(y0 + chunks[1], shape[1]), Math.min(x0 + chunks[2], shape[2])] };
      }
    }
  }
}

/** The names labels/.zattrs lists; a damaged list is refused, never rewritten (that would unlist the other labels). */
function labelsListed(text: string, path: string): string[] {
  try {
    return (JSON.parse(text) as { labels?: string[] }).labels ?? [];
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `is not valid JSON (${describe(err)}); repair or remove it`, { cause: err });
  }
}

/** `labels/<name>/` beside the image: listed in labels/.zattrs, with image-label metadata pointing back. */
async function addLabelsImage(files: VolumeStore, dir: string, o: OmeZarrOptions, levels: number, name: string, lo: { dtype: SampleType; compression?: Compression }): Promise<OmeZarrWriter> {
  const labelsDir = files.join(dir, 'labels');
  const listPath = files.join(labelsDir, '.zattrs');
  const list = await readText(files, listPath).then((t) => labelsListed(t, listPath), () => [] as string[]);
  await files.write(files.join(labelsDir, '.zgroup'), json({ zarr_format: 2 }));
  await files.write(listPath, json({ labels: [...new Set([...list, name])] }));
  const lopts: OmeZarrOptions = { ...o, kind: 'labels', dtype: lo.dtype, compression: lo.compression ?? o.compression, name, polarity: undefined, levels, extra: undefined };
  const w = await createOmeZarr(files.join(labelsDir, name), lopts, { overwrite: true });
  const attrsPath = files.join(labelsDir, name, '.zattrs');
  const attrs = JSON.parse(await readText(files, attrsPath)) as Record<string, unknown>;
  attrs['image-label'] = { version: NGFF_VERSION, source: { image: '../../' } };
  await files.write(attrsPath, json(attrs));
  return w;
}

export interface LabelsImageOptions {
  shape: Vec3;
  dtype: SampleType;
  chunks: Vec3;
  compression?: Compression;
  extra?: Record<string, unknown>;
  /** Also add labels to an OME-Zarr image emseg did not write (its .zattrs has no "emseg" key). */
  foreign?: boolean;
}

/** The image's NGFF multiscales (v2 .zattrs) and its level-0 shape, refusing what labels cannot be added to. */
async function imageForLabels(files: VolumeStore, imageDir: string, o: LabelsImageOptions): Promise<{ levels: number; voxelSize: Vec3; unit?: string }> {
  const attrsPath = files.join(imageDir, '.zattrs');
  const v3 = await files.isFile(files.join(imageDir, 'zarr.json'));
  if (v3) throw new EmsegIoError('unsupported', imageDir, 'is a Zarr v3 (NGFF 0.5) image; emseg adds labels to NGFF 0.4 (Zarr v2) images only; write a standalone cells.zarr');
  let attrs: { multiscales?: { datasets?: { path: string; coordinateTransformations?: { type: string; scale?: number[] }[] }[]; axes?: { unit?: string }[] }[]; emseg?: unknown };
  try {
    attrs = JSON.parse(await readText(files, attrsPath)) as typeof attrs;
  } catch (err) {
    throw new EmsegIoError('not-image', attrsPath, `labels go into an OME-Zarr image, and its metadata cannot be read (${describe(err)})`, { cause: err });
  }
  const ms = attrs.multiscales?.[0];
  const level0 = ms?.datasets?.[0];
  if (!level0) throw new EmsegIoError('not-image', attrsPath, 'has no NGFF multiscales; labels go into an OME-Zarr image');
  if (attrs.emseg === undefined && !o.foreign) {
    throw new EmsegIoError('foreign-file', attrsPath, 'this image was not written by emseg; adding a labels group changes it (labels/ beside its arrays, which stay untouched): pass the explicit flag to allow it, or write a standalone cells.zarr');
  }
  const zarrayPath = files.join(imageDir, level0.path, '.zarray');
  const shape = await readText(files, zarrayPath).then((t) => (JSON.parse(t) as { shape?: number[] }).shape).catch(() => undefined);
  if (!shape) throw new EmsegIoError('corrupt', zarrayPath, 'the image\'s level 0 has no readable .zarray');
  if (JSON.stringify(shape.slice(-3)) !== JSON.stringify(o.shape) || shape.slice(0, -3).some((s) => s !== 1)) {
    throw new EmsegIoError('mismatch', imageDir, `the image is [${shape.join(',')}] but the labels are [${o.shape.join(',')}]; labels must have the image's shape`);
  }
  const scale = level0.coordinateTransformations?.find((t) => t.type === 'scale')?.scale?.slice(-3) as Vec3 | undefined;
  return { levels: ms!.datasets!.length, voxelSize: scale ?? [1, 1, 1], unit: ms!.axes?.slice(-1)[0]?.unit };
}

/**
 * An OME-Zarr labels image `labels/<name>/` inside an existing NGFF 0.4 image (same shape, same number of
 * levels and voxel size), listed in `labels/.zattrs` and pointing back with `image-label`. Only `labels/` is
 * written: the image's own arrays and attributes are never touched. Refused for an image emseg did not write
 * unless `foreign`; `mode` as createOmeZarr's, for the labels image alone.
 */
export async function createLabelsImage(imageDir: string, name: string, o: LabelsImageOptions, mode: WriteMode = {}): Promise<OmeZarrWriter> {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new EmsegError('invalid-option', name, 'a labels name is letters, digits, ".", "_" or "-"');
  const { store: files, loc } = storeFor(imageDir);
  imageDir = loc;
  const image = await imageForLabels(files, imageDir, o);
  const labelsDir = files.join(imageDir, 'labels');
  const listPath = files.join(labelsDir, '.zattrs');
  const list = await readText(files, listPath).then((t) => labelsListed(t, listPath), () => [] as string[]);
  const w = await createOmeZarr(files.join(labelsDir, name), { shape: o.shape, dtype: o.dtype, chunks: o.chunks, kind: 'labels', name,
    compression: o.compression, levels: image.levels, voxelSize: image.voxelSize, unit: image.unit, extra: o.extra }, mode);
  const attrsPath = files.join(labelsDir, name, '.zattrs');
  const attrs = JSON.parse(await readText(files, attrsPath)) as Record<string, unknown>;
  if (attrs['image-label'] === undefined) {
    attrs['image-label'] = { version: NGFF_VERSION, source: { image: '../../' } };
    await files.write(attrsPath, json(attrs));
  }
  if (!(await files.isFile(files.join(labelsDir, '.zgroup')))) await files.write(files.join(labelsDir, '.zgroup'), json({ zarr_format: 2 }));
  if (!list.includes(name)) await files.write(listPath, json({ labels: [...list, name] }));
  return w;
}
