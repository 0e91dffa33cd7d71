/**
 * A Zarr array's metadata (v2 .zarray, v3 zarr.json) checked before zarrita opens it: zarrita takes any shape,
 * chunk shape, data type and codec list on trust, so a shape of 1e12^3 or chunks of [0,256,256] would only fail
 * (or hang, or read zeros) once chunks are enumerated or decoded. Here they are refused at once, naming the
 * metadata file: malformed values are 'corrupt', what emseg does not decode is 'unsupported', sizes beyond the
 * limits of io/limits.ts are 'too-large'.
 */
import * as zarr from 'zarrita';
import { EmsegIoError } from '../errors.js';
import { MAX_CHUNK_BYTES, checkVolumeExtent, formatBytes } from '../limits.js';
import { registerZarrCodecs } from './zarr-codecs.js';
import { LabelTypeRefusal } from './label-types.js';
import type { LabelType } from './volume.js';

/** Bytes per element of the data types emseg reads: v2 dtype strings (without byte order) and v3 names. */
const V2_ITEM_BYTES: Record<string, number> = { u1: 1, u2: 2, u4: 4, f4: 4 };
const V3_ITEM_BYTES: Record<string, number> = { uint8: 1, uint16: 2, uint32: 4, float32: 4 };
const READ_TYPES = 'uint8, uint16, uint32, float32';
/** The integer types read only as labels (io/formats/label-types.ts): their bytes, and their names for the refusal. */
const V2_LABEL_BYTES: Record<string, number> = { u8: 8, i1: 1, i2: 2, i4: 4, i8: 8 };
const V3_LABEL_BYTES: Record<string, number> = { uint64: 8, int8: 1, int16: 2, int32: 4, int64: 8 };
const V2_LABEL_NAMES: Record<string, LabelType> = { u8: 'uint64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64' };

/** What the array is read as: an image (the types above) or labels (integer types of any width and sign). */
export type ArrayReadKind = 'image' | 'labels';

/** Bytes per element, or the refusal naming `file`: a label-only type read as an image says it can be read as labels. */
function itemBytesOf(name: string | undefined, kind: ArrayReadKind, version: 2 | 3, file: string, given: unknown): number {
  const images = version === 2 ? V2_ITEM_BYTES : V3_ITEM_BYTES;
  const labels = version === 2 ? V2_LABEL_BYTES : V3_LABEL_BYTES;
  const bytes = name === undefined ? undefined : images[name] ?? labels[name];
  if (bytes === undefined) throw new EmsegIoError('unsupported', file, `data type ${JSON.stringify(given)} is not read (${READ_TYPES}; labels also uint64 and int8..int64)`);
  if (kind === 'image' && images[name!] === undefined) throw new LabelTypeRefusal(file, version === 2 ? V2_LABEL_NAMES[name!]! : name as LabelType);
  return bytes;
}

/** The v3 codec that packs chunks into shards; its inner codecs and index codecs are checked like any others. */
const SHARDING = 'sharding_indexed';
/** The v2 filter zarrita rewrites into the v3 scale_offset (+ cast_value) codecs, never looked up by its own name. */
const FIXED_SCALE_OFFSET = ['fixedscaleoffset', 'numcodecs.fixedscaleoffset'];
/** Codecs of string data types, left out of the list a refusal gives. */
const STRING_CODECS = ['vlen-utf8', 'json2'];
/** Bytes per entry of a shard index (offset and length, two uint64). */
const SHARD_INDEX_ENTRY_BYTES = 16;

type Json = Record<string, unknown>;

interface CodecUse {
  /** Name in zarrita's registry ('numcodecs.<id>' for v2 compressors and filters). */
  name: string;
  /** Where the metadata names it, for the message: 'compressor', 'filter', 'codec'. */
  role: string;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(meta: Json, key: string, file: string): unknown[] {
  const v = meta[key];
  if (!Array.isArray(v)) throw new EmsegIoError('corrupt', file, `"${key}" is ${v === undefined ? 'missing' : JSON.stringify(v)}, not a list`);
  return v;
}

function v2Codecs(meta: Json, file: string): CodecUse[] {
  const uses: CodecUse[] = [];
  const add = (spec: unknown, role: string) => {
    if (!isObject(spec) || typeof spec.id !== 'string') throw new EmsegIoError('corrupt', file, `${role} ${JSON.stringify(spec)} has no codec id`);
    if (!FIXED_SCALE_OFFSET.includes(spec.id)) uses.push({ name: `numcodecs.${spec.id}`, role });
  };
  if (meta.compressor !== null && meta.compressor !== undefined) add(meta.compressor, 'compressor');
  if (meta.filters !== null && meta.filters !== undefined) list(meta, 'filters', file).forEach((f) => add(f, 'filter'));
  return uses;
}

function v2Layout(meta: Json, file: string, kind: ArrayReadKind): { shape: unknown[]; chunks: unknown[]; itemBytes: number; codecs: CodecUse[] } {
  const dtype = meta.dtype;
  const m = typeof dtype === 'string' ? /^[<>|]([a-zA-Z]\d+)$/.exec(dtype) : null;
  const itemBytes = itemBytesOf(m?.[1], kind, 2, file, dtype);
  if (meta.order !== undefined && meta.order !== 'C' && meta.order !== 'F') throw new EmsegIoError('corrupt', file, `order ${JSON.stringify(meta.order)} is neither "C" nor "F"`);
  return { shape: list(meta, 'shape', file), chunks: list(meta, 'chunks', file), itemBytes, codecs: v2Codecs(meta, file) };
}

/** Codec names of a v3 codec list; a sharding codec's inner chunk shape replaces the shard's as the decoded unit. */
function v3Codecs(codecs: unknown[], file: string, outer: unknown[], itemBytes: number, shape: unknown[]): { uses: CodecUse[]; chunks: unknown[] } {
  const uses: CodecUse[] = [];
  let chunks = outer;
  for (const c of codecs) {
    if (!isObject(c) || typeof c.name !== 'string') throw new EmsegIoError('corrupt', file, `codec ${JSON.stringify(c)} has no name`);
    if (c.name !== SHARDING) {
      uses.push({ name: c.name, role: 'codec' });
      continue;
    }
    const config = isObject(c.configuration) ? c.configuration : {};
    const inner = list(config, 'chunk_shape', file);
    checkVolumeExtent(file, shape, inner, itemBytes);
    if (outer.some((s, a) => (s as number) % (inner[a] as number) !== 0)) {
      throw new EmsegIoError('corrupt', file, `shard shape [${outer.join(',')}] is not a whole number of chunks [${inner.join(',')}]`);
    }
    // The shard's index (16 bytes per inner chunk) is read whole, like a chunk.
    const indexBytes = outer.reduce<number>((n, s, a) => n * ((s as number) / (inner[a] as number)), SHARD_INDEX_ENTRY_BYTES);
    if (indexBytes > MAX_CHUNK_BYTES) {
      throw new EmsegIoError('too-large', file, `shards [${outer.join(',')}] of chunks [${inner.join(',')}] have an index of ${formatBytes(indexBytes)}; emseg reads at most ${formatBytes(MAX_CHUNK_BYTES)}`);
    }
    uses.push(...v3Codecs(list(config, 'codecs', file), file, inner, itemBytes, shape).uses);
    uses.push(...v3Codecs(config.index_codecs === undefined ? [] : list(config, 'index_codecs', file), file, inner, itemBytes, shape).uses);
    chunks = inner;
  }
  return { uses, chunks };
}

function v3Layout(meta: Json, file: string, kind: ArrayReadKind): { shape: unknown[]; chunks: unknown[]; itemBytes: number; codecs: CodecUse[] } {
  const itemBytes = itemBytesOf(typeof meta.data_type === 'string' ? meta.data_type : undefined, kind, 3, file, meta.data_type);
  const grid = meta.chunk_grid;
  if (!isObject(grid) || grid.name !== 'regular' || !isObject(grid.configuration)) {
    throw new EmsegIoError('unsupported', file, `chunk grid ${JSON.stringify(grid)} is not read; emseg reads the "regular" chunk grid`);
  }
  const shape = list(meta, 'shape', file);
  const outer = list(grid.configuration, 'chunk_shape', file);
  // Shards are read by range, never whole: only their form is checked here (no bytes), their chunks' size below.
  checkVolumeExtent(file, shape, outer, 0);
  const { uses, chunks } = v3Codecs(list(meta, 'codecs', file), file, outer, itemBytes, shape);
  return { shape, chunks, itemBytes, codecs: uses };
}

/** Names every codec zarrita can load now; only for the message of a refusal. */
async function decodableCodecs(): Promise<string> {
  const names: string[] = [];
  for (const [name, load] of zarr.registry) {
    if (name.startsWith('numcodecs.') && zarr.registry.has(name.slice('numcodecs.'.length))) continue;
    if (STRING_CODECS.includes(name.replace(/^numcodecs\./, ''))) continue; // for string arrays, which emseg does not read
    if (await Promise.resolve().then(load).then(() => true, () => false)) names.push(name.replace(/^numcodecs\./, ''));
  }
  return names.join(', ');
}

async function checkCodecs(uses: CodecUse[], file: string): Promise<void> {
  registerZarrCodecs();
  for (const { name, role } of uses) {
    const load = zarr.registry.get(name);
    const loads = load !== undefined && (await Promise.resolve().then(load).then(() => true, () => false));
    if (!loads) {
      const id = name.replace(/^numcodecs\./, '');
      throw new EmsegIoError('unsupported', file, `${role} "${id}" is not a codec emseg decodes (it decodes ${await decodableCodecs()}); rewrite the array with one of those, e.g. with zarr-python`);
    }
  }
}

/**
 * Refuses array metadata (the parsed JSON of `file`) whose shape, chunks, data type or codecs emseg cannot read,
 * before any chunk is enumerated or allocated.
 */
export async function checkArrayMetadata(meta: Json, file: string, version: 2 | 3, kind: ArrayReadKind = 'image'): Promise<void> {
  const layout = version === 2 ? v2Layout(meta, file, kind) : v3Layout(meta, file, kind);
  checkVolumeExtent(file, layout.shape, layout.chunks, layout.itemBytes);
  await checkCodecs(layout.codecs, file);
}
