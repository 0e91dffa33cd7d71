/**
 * Zarr v2 / v3 arrays and OME-Zarr (NGFF 0.4 on v2, 0.5 on v3) images, read through zarrita. A path names an
 * array (`vol.zarr/0`) or a multiscale group (`vol.zarr`, level chosen by `scale`); leading axes of size 1
 * (OME t, c) are dropped, so every array reads as (z, y, x).
 */
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import * as zarr from 'zarrita';
import { EmsegIoError, describe, fromFsError } from '../errors.js';
import { LABEL_TYPES, allocateRegion, checkRegion, chunksOverlapping, copyOverlap, voxelCount } from './volume.js';
import type { LabelData, LabelReader, LabelType, Region, ScaleLevel, StackData, Vec3, VolumeReader, VoxelSize } from './volume.js';
import { voxelSizeOf } from '../voxel-size.js';
import { BYTES_PER_SAMPLE } from '../../image/stack.js';
import { BYTES_PER_LABEL, allocateRawLabels, imageTypeOf, toLabelData } from './label-types.js';
import { registerZarrCodecs } from './zarr-codecs.js';
import { checkArrayMetadata, type ArrayReadKind } from './zarr-metadata.js';
import { ChunkVerifier } from './chunk-digests.js';
import { storeFor, type VolumeStore, type ZarrReadable } from '../stores/index.js';

/** Chunks decoded at once by one readRegion call: enough to keep the disk busy, few enough to bound memory. */
const PARALLEL_CHUNKS = 8;
/** Decoded bytes of the chunks one readRegion call decodes at once (at least one chunk, whatever its size). */
const PARALLEL_BYTES = 256 * 2 ** 20;

/** Groups of `size` items, taken from the iterator only as they are used (a region may span very many chunks). */
function* batches<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** zarrita's data type names that emseg reads: images take uint8..uint32 and float32, labels every integer type. */
const ELEMENT_TYPES: Record<string, LabelType | 'float32'> = { float32: 'float32',
  ...Object.fromEntries(LABEL_TYPES.map((t) => [t, t])) };

export interface ZarrOpenOptions {
  /** Level of a multiscale group to read (default 0, full resolution). */
  scale?: number;
  /** Refuse any file whose real path lies outside the store's folder (a server must not follow links out). */
  confined?: boolean;
  /**
   * Read an absent chunk file as the fill value, as the Zarr spec allows, counting it (reader.missingChunks);
   * otherwise it is refused ('missing-chunk'): for an input it is usually an incomplete copy, and zeros would pass
   * for data.
   */
  allowMissingChunks?: boolean;
  /**
   * Multi-channel maps (a leading axis named "c", e.g. affinities): the channel to read, from 0; without it such an
   * array is refused ('unsupported') as before.
   */
  channel?: number;
}

/** What kind of Zarr node a folder holds, judged by its metadata files alone. */
export type ZarrNodeKind = 'v2-array' | 'v2-group' | 'v3' | 'none';

export async function zarrNodeKind(store: VolumeStore, dir: string): Promise<ZarrNodeKind> {
  const has = (name: string) => store.isFile(store.join(dir, name));
  if (await has('.zarray')) return 'v2-array';
  if (await has('zarr.json')) return 'v3';
  if ((await has('.zgroup')) || (await has('.zattrs'))) return 'v2-group';
  return 'none';
}

/** Does this folder look like Zarr (its own metadata, a .zarr name, or a Zarr parent)? */
export async function looksLikeZarr(dir: string): Promise<boolean> {
  if (/\.zarr$/i.test(dir.replace(/[/\\]+$/, ''))) return true;
  const { store, loc } = storeFor(dir);
  if ((await zarrNodeKind(store, loc)) !== 'none') return true;
  return (await zarrNodeKind(store, store.parent(loc))) !== 'none';
}

async function readJson(store: VolumeStore, path: string): Promise<Record<string, unknown> | undefined> {
  const bytes = await store.read(path);
  if (bytes === undefined) return undefined;
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes); // as readFile(path, 'utf8'): a BOM stays, and is refused
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `metadata is not valid JSON (${describe(err)})`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EmsegIoError('corrupt', path, 'metadata is not a JSON object');
  return value as Record<string, unknown>;
}

/** Group attributes: v2 .zattrs, or v3 zarr.json attributes (NGFF 0.5 keeps OME metadata under "ome"). */
export async function groupAttributes(store: VolumeStore, dir: string): Promise<Record<string, unknown> | undefined> {
  const v3 = await readJson(store, store.join(dir, 'zarr.json'));
  if (v3) {
    const attrs = (v3.attributes ?? {}) as Record<string, unknown>;
    return (attrs.ome as Record<string, unknown> | undefined) ? { ...attrs, ...(attrs.ome as Record<string, unknown>) } : attrs;
  }
  return readJson(store, store.join(dir, '.zattrs'));
}

interface Multiscale {
  axes: { name: string; type?: string; unit?: string }[];
  levels: ScaleLevel[];
  /** Each level's whole scale vector (one entry per axis, t and c included); undefined where it has none. */
  scales: (number[] | undefined)[];
  /** The scale applied to every level (NGFF's multiscales-level coordinateTransformations), if any. */
  global?: number[];
}

type Transform = { type: string; scale?: unknown };

function scaleOf(transforms: unknown): number[] | undefined {
  const s = Array.isArray(transforms) ? (transforms as Transform[]).find((t) => t?.type === 'scale')?.scale : undefined;
  return Array.isArray(s) && s.every((v) => typeof v === 'number') ? s as number[] : undefined;
}

/** The first NGFF multiscales entry of a group, or undefined; refuses one that is malformed. */
function parseMultiscales(attrs: Record<string, unknown> | undefined, where: string): Multiscale | undefined {
  const list = attrs?.multiscales;
  if (list === undefined) return undefined;
  const ms = Array.isArray(list) ? (list[0] as Record<string, unknown> | undefined) : undefined;
  const datasets = ms?.datasets;
  if (!ms || !Array.isArray(datasets) || datasets.length === 0) {
    throw new EmsegIoError('corrupt', where, 'multiscales metadata has no datasets');
  }
  const axes = Array.isArray(ms.axes)
    ? (ms.axes as unknown[]).map((a) => (typeof a === 'string' ? { name: a } : (a as { name: string; type?: string; unit?: string })))
    : [];
  const scales = datasets.map((d: { coordinateTransformations?: unknown }) => scaleOf(d?.coordinateTransformations));
  const levels = datasets.map((d: { path?: unknown }, i) => {
    if (typeof d?.path !== 'string') throw new EmsegIoError('corrupt', where, `multiscales dataset ${i} has no path`);
    return { path: d.path, shape: [0, 0, 0] as Vec3, scale: (scales[i] ?? [1, 1, 1]).slice(-3) as unknown as Vec3 };
  });
  return { axes, levels, scales, global: scaleOf(ms.coordinateTransformations) };
}

const SPACE_NAMES = ['z', 'y', 'x'];

/**
 * The voxel size of level `level`: its scale times the global one along the image's space axes (the last three, or
 * two), in their units (NGFF 0.4 and 0.5 alike). A 2-D image's z is 1 in the unit of y.
 */
function levelVoxelSize(ms: Multiscale | undefined, level: number, dims: number): VoxelSize | undefined {
  const scale = ms?.scales[level];
  if (!ms || !scale) return undefined;
  const fits = ms.axes.length === scale.length;
  // Axes are another writer's JSON: an entry may be anything, and is a space axis only when it says so.
  const isSpace = (a: Multiscale['axes'][number] | null) => a?.type === 'space'
    || (a?.type === undefined && typeof a?.name === 'string' && SPACE_NAMES.includes(a.name.toLowerCase()));
  const axes = fits ? scale.map((_, i) => i).filter((i) => isSpace(ms.axes[i] ?? null)).slice(-3) : scale.map((_, i) => i).slice(-dims);
  if (axes.length < 2) return undefined;
  const size = axes.map((i) => scale[i]! * (ms.global?.[i] ?? 1));
  const units = axes.map((i) => (fits ? ms.axes[i]?.unit : undefined));
  return axes.length === 3 ? voxelSizeOf(size, units) : voxelSizeOf([1, ...size], [units[0], ...units]);
}

/** Splits `vol.zarr` + scale, or `vol.zarr/0`, into the group folder and the array inside it. */
type ZarrVersion = 2 | 3;

interface Located {
  root: string;
  array: string;
  multiscale?: Multiscale;
  level: number;
  /** Format of the container: its arrays must be of the same version (a v3 image holds v3 arrays). */
  version: ZarrVersion;
}

/** The Zarr node at `path`, refused when there is none: a missing folder, a file, a folder (or URL) without metadata. */
async function nodeKindAt(store: VolumeStore, path: string): Promise<Exclude<ZarrNodeKind, 'none'>> {
  if (store.scheme === 'file') {
    const info = await stat(path).catch((err) => {
      throw fromFsError(err, path, 'opening');
    });
    if (!info.isDirectory()) throw new EmsegIoError('not-image', path, 'a Zarr array or group is a folder');
  }
  const kind = await zarrNodeKind(store, path);
  if (kind !== 'none') return kind;
  // Over HTTP and S3 there are no folders to find: no metadata at a URL is all a store can tell of a missing array.
  if (store.scheme === 'http') throw new EmsegIoError('not-found', path, 'the server has no Zarr array or group here (no .zarray, .zgroup, .zattrs or zarr.json; HTTP 404)');
  if (store.scheme === 's3') throw new EmsegIoError('not-found', path, 'the bucket has no Zarr array or group here (no .zarray, .zgroup, .zattrs or zarr.json object under this prefix)');
  throw new EmsegIoError('corrupt', path, 'holds no .zarray, .zgroup or zarr.json; not a Zarr array or group (metadata missing)');
}

async function locateArray(store: VolumeStore, path: string, scale: number | undefined): Promise<Located> {
  const kind = await nodeKindAt(store, path);
  const v3 = kind === 'v3' ? await readJson(store, store.join(path, 'zarr.json')) : undefined;
  const isGroup = kind === 'v2-group' || v3?.node_type === 'group';
  if (isGroup) {
    const ms = parseMultiscales(await groupAttributes(store, path), store.join(path, kind === 'v3' ? 'zarr.json' : '.zattrs'));
    if (!ms) throw new EmsegIoError('unsupported', path, 'is a Zarr group without OME-Zarr multiscales; name the array inside it, e.g. vol.zarr/0');
    const level = scale ?? 0;
    if (!Number.isInteger(level) || level < 0 || level >= ms.levels.length) {
      throw new EmsegIoError('not-found', path, `has scale levels 0..${ms.levels.length - 1}; there is no level ${scale}`);
    }
    return { root: path, array: ms.levels[level]!.path, multiscale: ms, level, version: kind === 'v3' ? 3 : 2 };
  }
  if (scale !== undefined && scale !== 0) {
    throw new EmsegIoError('invalid-option', path, 'names one array; choose the scale level by its path (vol.zarr/1) or give the group with --scale');
  }
  const parent = store.parent(path);
  const name = store.name(path);
  const parentKind = await zarrNodeKind(store, parent);
  const ms = parentKind === 'none' ? undefined : parseMultiscales(await groupAttributes(store, parent), parent);
  const level = ms?.levels.findIndex((l) => l.path === name) ?? -1;
  if (ms && level >= 0) return { root: parent, array: name, multiscale: ms, level, version: parentKind === 'v3' ? 3 : 2 };
  return { root: path, array: '', level: 0, version: kind === 'v3' ? 3 : 2 };
}

/** Distinct absent chunk files a reader remembers for its count; beyond it the count is a lower bound. */
const MAX_MISSING_TRACKED = 100_000;

/** How a store meets an absent chunk file once its array is open (before that, absent metadata files are normal). */
interface ChunkPolicy {
  allowMissing: boolean;
  /** The array's fill value, for messages. */
  fill: number;
  /** Absent chunk (or shard) files read as the fill value so far. */
  missing: Set<string>;
}

/**
 * The store every reader opens: when `confined`, it reads only files whose real path lies inside its (real) root
 * (a chunk or metadata file that is a link to a place outside is refused, naming it); once armed with a chunk
 * policy, an absent chunk file is refused or counted instead of silently becoming the fill value; with a verifier,
 * a chunk emseg wrote is checked against its recorded digest. It reads through the store the root names (stores/):
 * a local folder or a URL, where an absent chunk (HTTP 404) follows the same rules.
 */
export class ReadStore implements ZarrReadable {
  private realRoot: Promise<string> | undefined;
  private readonly inner: ZarrReadable;
  chunks: ChunkPolicy | undefined;

  constructor(private readonly store: VolumeStore, readonly root: string, private readonly confined = false,
    private readonly verifier?: ChunkVerifier) {
    this.inner = store.zarr(root);
  }

  private async inside(key: string): Promise<void> {
    if (!this.confined || this.store.scheme !== 'file') return;
    this.realRoot ??= realpath(this.root);
    const file = join(this.root, key.replace(/^\/+/, ''));
    const real = await realpath(file).catch(() => undefined);
    if (real === undefined) return; // missing: the store answers undefined as usual
    const rel = relative(await this.realRoot, real);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new EmsegIoError('outside', file, 'is a link to a place outside the Zarr folder; not read');
    }
  }

  private found<T>(key: string, value: T | undefined): T | undefined {
    if (value !== undefined || !this.chunks) return value;
    const file = this.store.join(this.root, key.replace(/^\/+/, ''));
    if (!this.chunks.allowMissing) {
      throw new EmsegIoError('missing-chunk', file, `chunk file is absent: an incomplete copy, or a writer that leaves out chunks holding only the fill value; pass --allow-missing-chunks to read absent chunks as the fill value (${this.chunks.fill})`);
    }
    if (this.chunks.missing.size < MAX_MISSING_TRACKED) this.chunks.missing.add(file);
    return value;
  }

  async get(key: `/${string}`, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> {
    await this.inside(key);
    const bytes = this.found(key, await this.inner.get(key, opts));
    if (bytes !== undefined) await this.verifier?.check(key, bytes);
    return bytes;
  }

  async getRange(key: `/${string}`, range: Parameters<ZarrReadable['getRange']>[1],
    opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> {
    await this.inside(key);
    return this.found(key, await this.inner.getRange(key, range, opts));
  }
}

type AnyArray = zarr.Array<zarr.DataType, ReadStore>;

async function openArray(store: VolumeStore, root: string, array: string, where: string, version: ZarrVersion,
  confined = false, kind: ArrayReadKind = 'image'): Promise<AnyArray> {
  registerZarrCodecs();
  const metaFile = store.join(where, version === 3 ? 'zarr.json' : '.zarray');
  const meta = await readJson(store, metaFile);
  if (meta) await checkArrayMetadata(meta, metaFile, version, kind); // absent: zarrita's refusal below names it
  // Chunks emseg wrote are checked against the digests it recorded (chunk-digests.ts); foreign data reads as is.
  const verifier = store.scheme === 'file' ? await ChunkVerifier.open(root, array, confined) : ChunkVerifier.remote(store, root, array);
  const loc = zarr.root(new ReadStore(store, root, confined, verifier));
  const at = array ? loc.resolve(array) : loc;
  try {
    const node = version === 3 ? await zarr.open.v3(at, { kind: 'array' }) : await zarr.open.v2(at, { kind: 'array' });
    return node as AnyArray;
  } catch (err) {
    const missing = err instanceof zarr.NotFoundError;
    throw new EmsegIoError('corrupt', where, missing
      ? `array metadata (${version === 3 ? 'zarr.json' : '.zarray'}) is missing`
      : `array metadata is invalid (${describe(err)})`, { cause: err });
  }
}

/** Number of leading axes to drop (all must be 1, but for a channel axis "c" when a channel is asked for) so that the last three are z, y, x. */
function leadingAxes(shape: number[], where: string, axes: { name: string }[], channel?: number): number {
  if (shape.length < 2) throw new EmsegIoError('unsupported', where, `array has ${shape.length} dimension(s); expected 2 (y,x) or 3 (z,y,x)`);
  const lead = Math.max(0, shape.length - 3);
  for (let a = 0; a < lead; a++) {
    if (channel !== undefined && axes[a]?.name === CHANNEL_AXIS_NAME) continue;
    if (shape[a] !== 1 && axes[a]?.name === CHANNEL_AXIS_NAME) throw new ChannelsRefusal(where, shape[a]!);
    if (shape[a] !== 1) {
      const name = axes[a]?.name ?? `axis ${a}`;
      throw new EmsegIoError('unsupported', where, `array of shape [${shape.join(',')}] has ${shape[a]} entries along ${name}; only single-channel, single-time-point volumes are read`);
    }
  }
  return lead;
}

/**
 * A multi-channel map (affinities...) read without a channel: 'unsupported', with the number of channels, so that a
 * caller that can read them one by one (emseg info) knows how many there are.
 */
export class ChannelsRefusal extends EmsegIoError {
  constructor(path: string, readonly channels: number) {
    super('unsupported', path, `is a map of ${channels} channels (axis "${CHANNEL_AXIS_NAME}"); read one channel at a time `
      + `(e.g. emseg info --channel 0), or give the map to emseg segment --method, which reads them all`);
  }
}

/** The axis name of the channels of a multi-channel map (image/map-meaning.ts CHANNEL_AXIS). */
const CHANNEL_AXIS_NAME = 'c';

/** Where channel `channel` lies: its leading axis, its chunk index and its index inside the chunk (undefined: no channel asked for). */
function channelPlace(arr: AnyArray, axes: { name: string }[], lead: number, channel: number | undefined, where: string): { axis: number; chunk: number; within: number } | undefined {
  if (channel === undefined) return undefined;
  const axis = axes.slice(0, lead).findIndex((a) => a.name === CHANNEL_AXIS_NAME);
  if (axis < 0) throw new EmsegIoError('invalid-option', where, `has no channel axis "${CHANNEL_AXIS_NAME}"; a channel can be chosen only in a multi-channel OME-Zarr image`);
  if (!Number.isSafeInteger(channel) || channel < 0 || channel >= arr.shape[axis]!) {
    throw new EmsegIoError('invalid-option', where, `has ${arr.shape[axis]} channel(s); channel ${channel} does not exist`);
  }
  const size = arr.chunks[axis]!;
  return { axis, chunk: Math.floor(channel / size), within: channel % size };
}

function to3(values: number[], lead: number): Vec3 {
  const v = values.slice(lead);
  return (v.length === 2 ? [1, v[0]!, v[1]!] : v) as unknown as Vec3;
}

/** File of one chunk, for error messages (v2 keys 'z.y.x' or 'z/y/x'; v3 default keys 'c/z/y/x'). */
async function chunkFile(store: VolumeStore, arrayDir: string, coords: number[]): Promise<string> {
  const v2 = await readJson(store, store.join(arrayDir, '.zarray')).catch(() => undefined);
  if (v2) return store.join(arrayDir, coords.join((v2.dimension_separator as string | undefined) ?? '.'));
  const v3 = await readJson(store, store.join(arrayDir, 'zarr.json')).catch(() => undefined);
  const enc = v3?.chunk_key_encoding as { name?: string; configuration?: { separator?: string } } | undefined;
  const sep = enc?.configuration?.separator ?? (enc?.name === 'v2' ? '.' : '/');
  return store.join(arrayDir, enc?.name === 'v2' ? coords.join(sep) : ['c', ...coords].join(sep));
}

export async function openZarr(given: string, options: ZarrOpenOptions = {}): Promise<VolumeReader> {
  const z = await openZarrArray(given, options, 'image');
  const dtype = z.type === 'float32' ? 'float32' : imageTypeOf(z.type, z.arrayDir);
  return {
    ...z.base, dtype,
    async readRegion(region: Region): Promise<StackData> {
      checkRegion(region, z.base.shape, z.base.path);
      const out = allocateRegion(dtype, region, z.base.path);
      await z.readInto(region, out);
      return out;
    },
    async close() {},
  };
}

/** A Zarr array of integer ids (uint8..uint64, int8..int64) read as labels. */
export async function openZarrLabels(given: string, options: ZarrOpenOptions = {}): Promise<LabelReader> {
  const z = await openZarrArray(given, options, 'labels');
  if (z.type === 'float32') throw new EmsegIoError('invalid-data', z.base.path, 'holds float32 values; label ids must be integers (uint8..uint64, int8..int64)');
  const labelType = z.type;
  return {
    ...z.base, labelType,
    async readLabels(region: Region): Promise<LabelData> {
      checkRegion(region, z.base.shape, z.base.path);
      const raw = allocateRawLabels(labelType, region, z.base.path);
      await z.readInto(region, raw as unknown as StackData);
      return toLabelData(raw, labelType, region, z.base.path);
    },
    async close() {},
  };
}

/** What the image and the label reads of an array share: its description and a read of a region into an array of its type. */
interface OpenedArray {
  base: Omit<VolumeReader, 'dtype' | 'readRegion' | 'close'>;
  type: LabelType | 'float32';
  arrayDir: string;
  readInto(region: Region, out: StackData): Promise<void>;
}

async function openZarrArray(given: string, options: ZarrOpenOptions, kind: ArrayReadKind): Promise<OpenedArray> {
  const { store, loc: path } = storeFor(given); // a URL from here on without credentials
  const { root, array, multiscale, level, version } = await locateArray(store, path, options.scale);
  const arrayDir = array ? store.join(root, array) : root;
  const arr = await openArray(store, root, array, arrayDir, version, options.confined, kind);
  const policy: ChunkPolicy = { allowMissing: options.allowMissingChunks ?? false, fill: Number(arr.fillValue ?? 0), missing: new Set() };
  arr.store.chunks = policy; // from now on the store reads chunk files only
  const type = ELEMENT_TYPES[arr.dtype];
  if (!type) throw new EmsegIoError('unsupported', arrayDir, `data type ${arr.dtype} is not read (uint8, uint16, uint32, float32; labels also uint64 and int8..int64)`);
  const lead = leadingAxes(arr.shape, arrayDir, multiscale?.axes ?? [], options.channel);
  const place = channelPlace(arr, multiscale?.axes ?? [], lead, options.channel, arrayDir);
  const shape = to3(arr.shape, lead);
  const chunks = to3(arr.chunks, lead);
  const scales = await levelShapes(store, root, multiscale, lead, { path: array || '.', shape, scale: [1, 1, 1] }, version, kind);
  const attrs = { ...((await groupAttributes(store, multiscale ? root : arrayDir)) ?? {}) };
  const labels = multiscale ? (await groupAttributes(store, store.join(root, 'labels')).catch(() => undefined))?.labels : undefined;
  if (Array.isArray(labels)) attrs.labels = labels;
  attrs.compression = await compressionOf(store, arrayDir);
  const full = arr.shape.length === 2 ? 2 : 3;
  const voxelSize = levelVoxelSize(multiscale, level, full);

  async function readChunk(coords: Vec3): Promise<{ data: StackData; strides: Vec3 }> {
    const key = [...new Array<number>(lead).fill(0), ...coords.slice(3 - full)];
    if (place) key[place.axis] = place.chunk;
    let chunk: zarr.Chunk<zarr.DataType>;
    try {
      chunk = await arr.getChunk(key);
    } catch (err) {
      if (err instanceof EmsegIoError) throw err; // the store's own refusal (a link out of a confined store, an absent chunk)
      // zarrita wraps the codec's own error (which says what is wrong with the chunk) as the cause.
      const cause = (err as { cause?: unknown }).cause;
      const why = cause === undefined ? describe(err) : `${describe(err)}: ${describe(cause)}`;
      throw new EmsegIoError('corrupt', await chunkFile(store, arrayDir, key), `chunk cannot be decoded; truncated or damaged (${why})`, { cause: err });
    }
    const expected = arr.chunks.reduce((a, b) => a * b, 1);
    const data = chunk.data as StackData;
    if (data.length !== expected) {
      throw new EmsegIoError('corrupt', await chunkFile(store, arrayDir, key), `chunk holds ${data.length} values of ${arr.dtype}, its shape [${arr.chunks.join(',')}] needs ${expected}; truncated or of the wrong data type`);
    }
    // One channel of a multi-channel chunk: its values start at its index along the channel axis.
    const from = place ? place.within * chunk.stride[place.axis]! : 0;
    return { data: from === 0 ? data : data.subarray(from) as StackData, strides: to3(chunk.stride, lead) };
  }

  // Chunks decoded at once: PARALLEL_CHUNKS, fewer when chunks are big, so one read holds at most PARALLEL_BYTES.
  const itemBytes = type === 'float32' ? BYTES_PER_SAMPLE.float32 : BYTES_PER_LABEL[type];
  const parallel = Math.max(1, Math.min(PARALLEL_CHUNKS, Math.floor(PARALLEL_BYTES / (voxelCount(chunks) * itemBytes))));
  return {
    type, arrayDir,
    base: { path, format: 'zarr', shape, chunks, scales, level, attributes: attrs, ...(voxelSize ? { voxelSize } : {}),
      missingChunks: () => ({ count: policy.missing.size, atLeast: policy.missing.size >= MAX_MISSING_TRACKED, fill: policy.fill }) },
    async readInto(region: Region, out: StackData): Promise<void> {
      for (const batch of batches(chunksOverlapping(region, chunks, shape), parallel)) {
        const settled = await Promise.allSettled(batch.map((c) => readChunk(c.coords)));
        const failure = settled.find((r) => r.status === 'rejected');
        if (failure) throw failure.reason; // the first bad chunk in raster order, so the error does not depend on timing
        const decoded = settled.map((r) => (r as PromiseFulfilledResult<{ data: StackData; strides: Vec3 }>).value);
        batch.forEach((c, k) => {
          const start = c.coords.map((v, a) => v * chunks[a]!) as unknown as Vec3;
          const end = start.map((v, a) => v + chunks[a]!) as unknown as Vec3;
          copyOverlap(decoded[k]!.data, { start, end }, decoded[k]!.strides, out, region);
        });
      }
    },
  };
}

/** The array's compressor (v2) or byte codecs (v3), for `emseg info`. */
async function compressionOf(store: VolumeStore, arrayDir: string): Promise<string> {
  const v2 = await readJson(store, store.join(arrayDir, '.zarray')).catch(() => undefined);
  if (v2) return (v2.compressor as { id?: string } | null)?.id ?? 'none';
  const v3 = await readJson(store, store.join(arrayDir, 'zarr.json')).catch(() => undefined);
  const codecs = ((v3?.codecs ?? []) as { name: string }[]).map((c) => c.name).filter((n) => n !== 'bytes');
  return codecs.join('+') || 'none';
}

/** Shapes of every level of a multiscale image (read from each level's metadata). */
async function levelShapes(store: VolumeStore, root: string, ms: Multiscale | undefined, lead: number, single: ScaleLevel,
  version: ZarrVersion, kind: ArrayReadKind): Promise<ScaleLevel[]> {
  if (!ms) return [single];
  const out: ScaleLevel[] = [];
  for (const l of ms.levels) {
    const arr = await openArray(store, root, l.path, store.join(root, l.path), version, false, kind);
    out.push({ path: l.path, shape: to3(arr.shape, lead), scale: l.scale });
  }
  return out;
}

export { AtomicFileSystemStore } from '../stores/file-chunks.js';
