/**
 * `emseg segment --method ...`: 3-D neurons into an OME-Zarr labels image, from affinities (a multi-channel OME-Zarr
 * map whose record names each channel's offset: `watershed-agglomerate`, `mutex`) or from a one-channel membrane map
 * stack (`link`: 2-D cells per section, linked across sections by overlap). This first version segments the whole
 * volume in one piece, in memory: volumes whose estimate exceeds `maxBytes` are refused before anything is read
 * ('too-large'). The output is built in a hidden folder and moved into place once complete, or in a bucket
 * (`s3://`) in place with its group metadata written last (as emseg convert).
 */
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { replace } from '../io/formats/convert.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import type { Vec3, VolumeReader } from '../io/formats/volume.js';
import { labelsInside } from '../io/outputs.js';
import { outputGuard } from '../io/output-guard.js';
import { recordedAsMap, volumeSpread } from '../io/plausibility.js';
import { isUrl, openVolume, recordedVolumePath, volumeLocation } from '../io/registry.js';
import { refuseRemoteOutput, storeFor } from '../io/stores/index.js';
import { RECORDS_DIR, checkStoredVolumeTarget, checkVolumeTarget } from '../io/volume-output.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import type { Offset3 } from '../image/affinities.js';
import { decideMapPolarity, flagPolarity, parseMapRecord, toMembraneInPlace } from '../image/map-meaning.js';
import { linkSections, mutexWatershed, nearestChannels, watershedAgglomerate, type AffinityVolume, type Labelling } from '../segment/affinity/index.js';
import { segmentSection, type SegmentOptions } from '../segment/index.js';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../util/temp-files.js';
import { mapSegmentOptions } from './close-gaps.js';
import { runBlockwiseNeurons } from './neurons-blockwise.js';
import { NEURON_DEFAULTS, NEURON_METHODS, type NeuronMethod } from './defaults.js';

/** Bytes per voxel and channel the affinity methods hold at most (mutex: the edge keys, ids and the sort's buffers). */
const BYTES_PER_EDGE: Record<NeuronMethod, number> = { 'watershed-agglomerate': 4, mutex: 28, link: 4 };
/** Bytes per voxel besides (labels, boundary evidence, distances, flags, queues; measured: about 100 in all for 8 float32 channels). */
const BYTES_PER_VOXEL = 80;
/** Chunk edge of the labels written (z, y, x at most). */
const LABEL_CHUNKS: Vec3 = [32, 256, 256];

export interface NeuronSegmentJob {
  pred: string;
  out: string;
  method: NeuronMethod;
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
  /** Refuse volumes whose working memory estimate exceeds this (default NEURON_DEFAULTS.maxBytes). */
  maxBytes?: number;
  notice?: (line: string) => void;
}

export interface NeuronSegmentResult {
  out: string;
  method: NeuronMethod;
  shape: Vec3;
  neurons: number;
}

function checkMethod(job: NeuronSegmentJob): void {
  if (!(NEURON_METHODS as readonly string[]).includes(job.method)) {
    throw new EmsegError('invalid-option', '--method', `"${job.method}" is not one of ${NEURON_METHODS.join(', ')}`);
  }
  if (labelsInside(job.out)) {
    throw new EmsegError('invalid-option', '--out', `--method ${job.method} writes a standalone labels image (neurons.zarr), not labels inside an image`);
  }
}

export function checkMemory(job: NeuronSegmentJob, shape: Vec3, channels: number): void {
  const voxels = shape[0] * shape[1] * shape[2];
  const bytes = voxels * (channels * BYTES_PER_EDGE[job.method] + BYTES_PER_VOXEL);
  const limit = job.maxBytes ?? NEURON_DEFAULTS.maxBytes.value;
  if (bytes > limit) {
    throw new EmsegError('too-large', job.pred, `${shape.join(' x ')} voxels x ${channels} channel(s) would need about ${(bytes / 2 ** 30).toFixed(1)} GiB `
      + `for --method ${job.method}, above the ${(limit / 2 ** 30).toFixed(1)} GiB this version segments in one piece; crop the volume (emseg convert) first`);
  }
}

/** A map's values as float32 in [0, 1] (uint8 maps are 0..255). */
function asProbabilities(data: ArrayLike<number>, dtype: string, path: string): Float32Array {
  if (dtype === 'float32') return data as Float32Array;
  if (dtype !== 'uint8') throw new EmsegIoError('unsupported', path, `is ${dtype}; maps are uint8 (0..255) or float32 (0..1)`);
  return Float32Array.from(data, (v) => v / 255);
}

/** The offsets of an affinity map, from its record; refused when it is not one. */
function affinityOffsets(reader: VolumeReader): Offset3[] {
  const record = parseMapRecord(reader.attributes, reader.path);
  if (record.channels !== 'multi' || record.meanings.some((m) => m.kind !== 'affinity')) {
    throw new EmsegIoError('unsupported', reader.path, 'records no affinity channels (an OME-Zarr map with a channel axis "c" and the record '
      + '{"kind": "maps", "channels": [{"kind": "affinity", "offset": [dz, dy, dx]}, ...]}); for a membrane map use --method link');
  }
  return record.meanings.map((m) => (m as { offset: [number, number, number] }).offset);
}

/** Channel `c` of the map, or undefined when the array has no such channel. */
async function openChannel(job: NeuronSegmentJob, c: number): Promise<VolumeReader | undefined> {
  try {
    return await openVolume(job.pred, { scale: job.scale, allowMissingChunks: job.allowMissingChunks, channel: c });
  } catch (err) {
    if (c > 0 && err instanceof EmsegError && err.code === 'invalid-option') return undefined;
    throw err;
  }
}

/** Refuses a map whose channel count differs from its record's (the record names every channel, in order). */
async function checkChannelCount(job: NeuronSegmentJob, path: string, channels: number): Promise<void> {
  const last = await openChannel(job, channels - 1);
  if (last === undefined) throw new EmsegIoError('mismatch', path, `its record names ${channels} channels, the array holds fewer`);
  await last.close();
  const beyond = await openChannel(job, channels);
  if (beyond !== undefined) {
    await beyond.close();
    throw new EmsegIoError('mismatch', path, `holds more channels than the ${channels} its record names`);
  }
}

/** The affinity volume: every channel read whole (after the memory check), as probabilities. */
export async function readAffinities(job: NeuronSegmentJob): Promise<{ volume: AffinityVolume; reader: VolumeReader }> {
  const single = await openVolume(job.pred, { scale: job.scale }).catch((err: unknown) => {
    if (err instanceof EmsegError && err.code === 'unsupported') return undefined; // a channel axis: read below
    throw err;
  });
  if (single) {
    try { affinityOffsets(single); } finally { await single.close(); }
  }
  const reader = (await openChannel(job, 0))!;
  try {
    const offsets = affinityOffsets(reader);
    await checkChannelCount(job, reader.path, offsets.length);
    checkMemory(job, reader.shape, offsets.length);
    const n = reader.shape[0] * reader.shape[1] * reader.shape[2];
    const data = new Float32Array(n * offsets.length);
    const whole = { start: [0, 0, 0] as Vec3, end: reader.shape };
    for (let c = 0; c < offsets.length; c++) {
      const channel = (await openChannel(job, c))!;
      try {
        data.set(asProbabilities(await channel.readRegion(whole), channel.dtype, channel.path), c * n);
      } finally {
        await channel.close();
      }
    }
    return { volume: { data, shape: reader.shape, offsets }, reader };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** Link: 2-D cells per section of a membrane map (its tuned options), linked by overlap with the map as evidence. */
async function linkNeurons(job: NeuronSegmentJob): Promise<{ labels: Labelling; reader: VolumeReader }> {
  const reader = await openVolume(job.pred, { scale: job.scale, allowMissingChunks: job.allowMissingChunks });
  try {
    const polarity = decideMapPolarity(reader.attributes, reader.path, { given: flagPolarity(job.membraneProb) });
    if (!job.predIsMap && !recordedAsMap(reader.attributes)) (await volumeSpread(reader)).check(job.pred);
    checkMemory(job, reader.shape, 1);
    const options = mapSegmentOptions(reader.attributes, reader.path, job.options ?? {}, job.notice, job.pred);
    const [Z, Y, X] = reader.shape;
    const membrane = toMembraneInPlace(Float32Array.from(asProbabilities(await reader.readRegion({ start: [0, 0, 0], end: reader.shape }), reader.dtype, reader.path)), polarity);
    const cells = new Uint32Array(membrane.length);
    for (let z = 0; z < Z; z++) {
      const section = segmentSection(membrane.subarray(z * Y * X, (z + 1) * Y * X), Y, X, options);
      cells.set(section.labels, z * Y * X);
    }
    const labels = linkSections(cells, reader.shape, { minOverlap: job.minOverlap ?? NEURON_DEFAULTS.minOverlap.value, membrane, maxMembrane: 1 });
    return { labels, reader };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** The neurons, by the job's method. */
async function computeNeurons(job: NeuronSegmentJob): Promise<{ labels: Labelling; reader: VolumeReader; record: Record<string, unknown> }> {
  if (job.method === 'link') {
    const { labels, reader } = await linkNeurons(job);
    return { labels, reader, record: { method: job.method, minOverlap: job.minOverlap ?? NEURON_DEFAULTS.minOverlap.value } };
  }
  const { volume, reader } = await readAffinities(job);
  const o = { mergeAffinity: job.mergeAffinity ?? NEURON_DEFAULTS.mergeAffinity.value, seedBoundary: job.seedBoundary ?? NEURON_DEFAULTS.seedBoundary.value };
  try {
    if (job.method === 'mutex') return { labels: mutexWatershed(volume), reader, record: { method: job.method } };
    return { labels: watershedAgglomerate(volume, o), reader, record: { method: job.method, ...o } };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/**
 * Segments `job.pred` into 3-D neurons with `job.method` and writes them as a uint32 OME-Zarr labels image (ids
 * 1..neurons; the parameters recorded under "emseg".neurons). Nothing is written before the neurons are computed,
 * and the output replaces an old one only once it is whole.
 */
export async function runNeuronSegment(job: NeuronSegmentJob): Promise<NeuronSegmentResult> {
  checkMethod(job);
  const exists = await checkTarget(job);
  if (job.block) return runBlockwise(job, exists);
  const { labels, reader, record } = await computeNeurons(job);
  try {
    const voxel = chooseVoxelSize(reader.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, reader.path, job.notice);
    const chunks = LABEL_CHUNKS.map((c, a) => Math.min(c, reader.shape[a]!)) as unknown as Vec3;
    await buildOutput(job, exists, { shape: reader.shape, chunks, extra: { maps: recordedVolumePath(job.pred, job.out), neurons: record }, voxel },
      (writer) => writer.writeRegion({ start: [0, 0, 0], end: reader.shape }, labels.labels));
    return { out: job.out, method: job.method, shape: reader.shape, neurons: labels.count };
  } finally {
    await reader.close();
  }
}

/**
 * Checks the output before anything is computed: a local (or shared) folder, or an `s3://` prefix (http(s) is
 * read-only); an existing one is refused without --overwrite. Returns whether one exists.
 */
async function checkTarget(job: NeuronSegmentJob): Promise<boolean> {
  refuseRemoteOutput(job.out, true);
  const inputs = [volumeLocation(job.pred)];
  if (!isUrl(job.out)) return checkVolumeTarget(job.out, outputGuard(job.overwrite ?? false, inputs));
  const { store, loc } = storeFor(job.out);
  return checkStoredVolumeTarget(store, loc, { overwrite: job.overwrite ?? false, inputs });
}

/** The labels image to build: its shape, chunks, recorded parameters and voxel size. */
interface LabelsImage { shape: Vec3; chunks: Vec3; extra: Record<string, unknown>; voxel: ReturnType<typeof chooseVoxelSize> }

/** What `fill` writes: level 0 of the labels image, with a place for its work files (the blockwise run's fragments). */
type Fill<T> = (writer: OmeZarrWriter, workDir: string) => Promise<T>;

/** The labels image's level 0 by `fill`, its digests and its pyramid. */
async function fillLabels<T>(job: NeuronSegmentJob, at: string, image: LabelsImage, fill: Fill<T>, workDir: string, unpublished = false) {
  const { shape, chunks, extra, voxel } = image;
  const writer = await createOmeZarr(at, { shape, dtype: 'uint32', chunks, kind: 'labels', name: basename(job.out).replace(/\.zarr$/i, '') || 'neurons',
    voxelSize: voxel?.size, unit: voxel?.unit, extra }, { unpublished });
  await writer.recordDigests();
  const result = await fill(writer, workDir);
  await writer.sealDigests();
  await writer.buildPyramid();
  return { writer, result };
}

/**
 * Builds the labels image in a hidden folder next to the output, then moves it into place (an old output goes only
 * then); a failure removes the hidden folder. In a bucket (no rename) as emseg convert builds one there.
 */
async function buildOutput<T>(job: NeuronSegmentJob, exists: boolean, image: LabelsImage, fill: Fill<T>): Promise<T> {
  if (isUrl(job.out)) return buildStoredOutput(job, exists, image, fill);
  sweepStaleTemps(dirname(job.out));
  const tmp = tempPathFor(job.out);
  registerTemp(tmp);
  try {
    const { result } = await fillLabels(job, tmp, image, fill, join(tmp, '.emseg-work'));
    await replace(tmp, job.out, exists);
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    releaseTemp(tmp);
  }
}

/**
 * The labels image in a bucket, which has no rename: an old output is deleted first (--overwrite), the new one is
 * built in place with its group metadata left out until every array is written (no reader takes it for an image
 * before), its work files under its .emseg/ prefix; a failure deletes what was written.
 */
async function buildStoredOutput<T>(job: NeuronSegmentJob, exists: boolean, image: LabelsImage, fill: Fill<T>): Promise<T> {
  const { store, loc } = storeFor(job.out);
  if (exists) await store.remove(loc, true);
  try {
    const { writer, result } = await fillLabels(job, loc, image, fill, store.join(loc, RECORDS_DIR, 'neurons-work'), true);
    await writer.publish();
    return result;
  } catch (err) {
    await store.remove(loc, true).catch(() => undefined); // the error that stopped it is the one to report
    throw err;
  }
}

/** Readers of the nearest-neighbour channels of an affinity map, and their offsets (the blockwise run reads only them). */
async function nearestReaders(job: NeuronSegmentJob): Promise<{ readers: VolumeReader[]; offsets: Offset3[]; first: VolumeReader }> {
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

function checkBlockwise(job: NeuronSegmentJob): void {
  if (job.method !== 'watershed-agglomerate') throw new EmsegError('invalid-option', '--block', `blockwise runs are made for --method watershed-agglomerate (not ${job.method}) in this version`);
  for (const [flag, v, min] of [['--block', job.block!, 1], ['--halo', job.halo ?? [0, 0, 0], 0]] as const) {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((d) => Number.isSafeInteger(d) && d >= min)) throw new EmsegError('invalid-option', flag, `${JSON.stringify(v)} is not z,y,x of whole numbers >= ${min}`);
  }
}

/** watershed-agglomerate block by block into the hidden output folder, then moved into place. */
async function runBlockwise(job: NeuronSegmentJob, exists: boolean): Promise<NeuronSegmentResult> {
  checkBlockwise(job);
  const { readers, offsets, first } = await nearestReaders(job);
  const shape = first.shape;
  try {
    const block = job.block!.map((b, a) => Math.min(b, shape[a]!)) as unknown as Vec3;
    const halo = job.halo ?? NEURON_DEFAULTS.halo.value;
    checkMemory({ ...job, method: 'watershed-agglomerate' }, block.map((b, a) => b + 2 * halo[a]!) as unknown as Vec3, offsets.length);
    const mergeAffinity = job.mergeAffinity ?? NEURON_DEFAULTS.mergeAffinity.value;
    const seedBoundary = job.seedBoundary ?? NEURON_DEFAULTS.seedBoundary.value;
    const voxel = chooseVoxelSize(first.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, first.path, job.notice);
    const record = { method: job.method, mergeAffinity, seedBoundary, block, halo };
    const counts = await buildOutput(job, exists, { shape, chunks: block, extra: { maps: recordedVolumePath(job.pred, job.out), neurons: record }, voxel },
      (writer, work) => runBlockwiseNeurons({ channels: readers, offsets, shape, block, halo, seedBoundary, mergeAffinity }, writer, work));
    return { out: job.out, method: job.method, shape, neurons: counts.neurons };
  } finally {
    await Promise.all([first, ...readers].map((r) => r.close()));
  }
}
