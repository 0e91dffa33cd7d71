/**
 * What every `emseg segment --method` path shares (the whole-volume run, pipeline/neurons.ts, and the blockwise job,
 * pipeline/neurons-blockwise.ts): the job, its memory estimate, and the affinity map's channels (offsets from the
 * map's record, channel count checked against it, values as probabilities).
 */
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import type { Region, Vec3, VolumeReader } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import type { Offset3 } from '../image/affinities.js';
import { parseMapRecord } from '../image/map-meaning.js';
import { nearestChannels } from '../segment/affinity/index.js';
import type { SegmentOptions } from '../segment/index.js';
import type { Shard } from './blocks.js';
import { NEURON_DEFAULTS, NEURON_ID_TYPES, type NeuronIdType, type NeuronMethod } from './defaults.js';

export interface NeuronSegmentJob {
  pred: string;
  out: string;
  /** `auto`: the method tuned for the model the maps name (pipeline/tuned-neurons.ts), resolved before anything runs. */
  method: NeuronMethod | 'auto';
  /** watershed-agglomerate: mean boundary affinity from which fragments merge; seed boundary evidence. */
  mergeAffinity?: number;
  seedBoundary?: number;
  /** link: smallest overlap fraction; the 2-D watershed options the user gave (the rest from the maps' record). */
  minOverlap?: number;
  options?: Partial<SegmentOptions>;
  membraneProb?: boolean;
  predIsMap?: boolean;
  overwrite?: boolean;
  scale?: number;
  allowMissingChunks?: boolean;
  voxelSize?: Vec3;
  unit?: string;
  /**
   * watershed-agglomerate only: segment block by block (pipeline/neurons-blockwise.ts), memory bounded by the block
   * and the region graph; `halo` voxels of context (z, y, x) around each block for its fragments.
   */
  block?: Vec3;
  halo?: Vec3;
  /** Blockwise: only this static part of every task's blocks (`--shard i/n`); the global steps are done once. */
  shard?: Shard;
  /** Blockwise: discard the progress of a run with another layout, affinities or parameters. */
  restart?: boolean;
  /** Blockwise with a shard: wait (polling every `pollMs`) for the other shards' blocks of a task before the next. */
  wait?: boolean;
  pollMs?: number;
  /** Blockwise: attempts per block before it is recorded as failed. */
  attempts?: number;
  /** The type of the ids written (default NEURON_DEFAULTS.ids: uint32). */
  ids?: NeuronIdType;
  /** Refuse volumes whose working memory estimate exceeds this (default NEURON_DEFAULTS.maxBytes). */
  maxBytes?: number;
  notice?: (line: string) => void;
}

/** Bytes per voxel and channel the affinity methods hold at most (mutex: the edge keys, ids and the sort's buffers). */
const BYTES_PER_EDGE: Record<NeuronMethod, number> = { 'watershed-agglomerate': 4, mutex: 28, link: 4 };
/** Bytes per voxel besides (labels, boundary evidence, distances, flags, queues; measured: about 100 in all for 8 float32 channels). */
const BYTES_PER_VOXEL = 80;

export function checkMemory(job: NeuronSegmentJob, shape: Vec3, channels: number): void {
  const voxels = shape[0] * shape[1] * shape[2];
  const bytes = voxels * (channels * BYTES_PER_EDGE[job.method as NeuronMethod] + BYTES_PER_VOXEL);
  const limit = job.maxBytes ?? NEURON_DEFAULTS.maxBytes.value;
  if (bytes > limit) {
    throw new EmsegError('too-large', job.pred, `${shape.join(' x ')} voxels x ${channels} channel(s) would need about ${(bytes / 2 ** 30).toFixed(1)} GiB `
      + `for --method ${job.method}, above the ${(limit / 2 ** 30).toFixed(1)} GiB this version segments in one piece; ${tooLargeAdvice(job)}`);
  }
}

/** What to do about a volume (or block) too large to segment in one piece. */
function tooLargeAdvice(job: NeuronSegmentJob): string {
  if (job.block) return 'give a smaller --block';
  if (job.method === 'watershed-agglomerate') return 'segment it block by block (e.g. --block 64,256,256: memory bounded by the block, the same neurons)';
  return 'crop the volume (emseg convert) first, or segment it block by block with --method watershed-agglomerate --block 64,256,256';
}

/** A map's values as float32 in [0, 1] (uint8 maps are 0..255). */
export function asProbabilities(data: ArrayLike<number>, dtype: string, path: string): Float32Array {
  if (dtype === 'float32') return data as Float32Array;
  if (dtype !== 'uint8') throw new EmsegIoError('unsupported', path, `is ${dtype}; maps are uint8 (0..255) or float32 (0..1)`);
  return Float32Array.from(data, (v) => v / 255);
}

/** The offsets of an affinity map, from its record; refused when it is not one. */
export function affinityOffsets(reader: VolumeReader): Offset3[] {
  const record = parseMapRecord(reader.attributes, reader.path);
  if (record.channels !== 'multi' || record.meanings.some((m) => m.kind !== 'affinity')) {
    throw new EmsegIoError('unsupported', reader.path, 'records no affinity channels (an OME-Zarr map with a channel axis "c" and the record '
      + '{"kind": "maps", "channels": [{"kind": "affinity", "offset": [dz, dy, dx]}, ...]}); for a membrane map use --method link');
  }
  return record.meanings.map((m) => (m as { offset: [number, number, number] }).offset);
}

/** Channel `c` of the map, or undefined when the array has no such channel. */
export async function openChannel(job: NeuronSegmentJob, c: number): Promise<VolumeReader | undefined> {
  try {
    return await openVolume(job.pred, { scale: job.scale, allowMissingChunks: job.allowMissingChunks, channel: c });
  } catch (err) {
    if (c > 0 && err instanceof EmsegError && err.code === 'invalid-option') return undefined;
    throw err;
  }
}

/** Refuses a map whose channel count differs from its record's (the record names every channel, in order). */
export async function checkChannelCount(job: NeuronSegmentJob, path: string, channels: number): Promise<void> {
  const last = await openChannel(job, channels - 1);
  if (last === undefined) throw new EmsegIoError('mismatch', path, `its record names ${channels} channels, the array holds fewer`);
  await last.close();
  const beyond = await openChannel(job, channels);
  if (beyond !== undefined) {
    await beyond.close();
    throw new EmsegIoError('mismatch', path, `holds more channels than the ${channels} its record names`);
  }
}

/** Readers of the nearest-neighbour channels of an affinity map, and their offsets (the blockwise run reads only them). */
export async function nearestReaders(job: NeuronSegmentJob): Promise<{ readers: VolumeReader[]; offsets: Offset3[]; first: VolumeReader }> {
  const first = (await openChannel(job, 0))!;
  const readers: VolumeReader[] = [];
  try {
    const all = affinityOffsets(first);
    await checkChannelCount(job, first.path, all.length);
    const channels = nearestChannels(all, first.shape).filter((c) => c >= 0);
    for (const c of channels) {
      const r = (await openChannel(job, c))!;
      readers.push(r);
      asProbabilities(new Float32Array(0), r.dtype, r.path);
    }
    return { readers, offsets: channels.map((c) => all[c]!), first };
  } catch (err) {
    await Promise.all([first, ...readers].map((r) => r.close()));
    throw err;
  }
}

/** The channels' affinities over `region`, channel-major, as probabilities. */
export async function readChannels(channels: readonly VolumeReader[], region: Region): Promise<Float32Array> {
  const parts = await Promise.all(channels.map((r) => r.readRegion(region)));
  const n = parts[0]!.length;
  const out = new Float32Array(n * parts.length);
  parts.forEach((p, k) => {
    if (p instanceof Float32Array) out.set(p, k * n);
    else for (let i = 0; i < n; i++) out[k * n + i] = p[i]! / 255;
  });
  return out;
}

/** The id type of the job, checked. */
export function idTypeOf(job: NeuronSegmentJob): NeuronIdType {
  const ids = job.ids ?? NEURON_DEFAULTS.ids.value;
  if (!(NEURON_ID_TYPES as readonly string[]).includes(ids)) throw new EmsegError('invalid-option', '--ids', `"${ids}" is not one of ${NEURON_ID_TYPES.join(', ')}`);
  return ids;
}

/**
 * Neuron ids (each below 2^32: the agglomeration holds at most MAX_FRAGMENTS fragments) as the type written: the
 * array itself for uint32; for uint64 each id widened (the low word of each little-endian 64-bit id, as the Zarr
 * dtype "<u8" stores it; the typed array's byte order is the machine's, little-endian on every platform Node runs on).
 */
export function idsAs(ids: Uint32Array, type: NeuronIdType): Uint32Array | BigUint64Array {
  if (type === 'uint32') return ids;
  const words = new Uint32Array(2 * ids.length);
  for (let i = 0; i < ids.length; i++) words[2 * i] = ids[i]!;
  return new BigUint64Array(words.buffer);
}
