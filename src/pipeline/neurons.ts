/**
 * `emseg segment --method ...`: 3-D neurons into an OME-Zarr labels image, from affinities (a multi-channel OME-Zarr
 * map whose record names each channel's offset: `watershed-agglomerate`, `mutex`) or from a one-channel membrane map
 * stack (`link`: 2-D cells per section, linked across sections by overlap). Without `block` it segments the whole
 * volume in one piece, in memory: volumes whose estimate exceeds `maxBytes` are refused before anything is read
 * ('too-large'); the output is built in a hidden folder and moved into place once complete (as emseg convert). With
 * `block` (watershed-agglomerate) it runs block by block, in place and resumable: pipeline/neurons-blockwise.ts.
 */
import { rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { replace } from '../io/formats/convert.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import type { Vec3, VolumeReader } from '../io/formats/volume.js';
import { labelsInside } from '../io/outputs.js';
import { outputGuard } from '../io/output-guard.js';
import { recordedAsMap, volumeSpread } from '../io/plausibility.js';
import { displayPath, isUrl, openVolume, recordedVolumePath, volumeLocation } from '../io/registry.js';
import { checkVolumeTarget } from '../io/volume-output.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import { decideMapPolarity, flagPolarity, toMembraneInPlace } from '../image/map-meaning.js';
import { linkSections, mutexWatershed, watershedAgglomerate, type AffinityVolume, type Labelling } from '../segment/affinity/index.js';
import { segmentSection } from '../segment/index.js';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../util/temp-files.js';
import { mapSegmentOptions } from './close-gaps.js';
import { runBlockwiseNeurons, type BlockwiseNeuronsResult } from './neurons-blockwise.js';
import { affinityOffsets, asProbabilities, checkChannelCount, checkMemory, idTypeOf, idsAs, openChannel, type NeuronSegmentJob } from './neurons-input.js';
import { NEURON_DEFAULTS, NEURON_METHODS, type NeuronMethod } from './defaults.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import { AUTO_METHOD, applyTunedNeurons } from './tuned-neurons.js';

export { checkMemory, type NeuronSegmentJob };

/** Chunk edge of the labels written (z, y, x at most). */
const LABEL_CHUNKS: Vec3 = [32, 256, 256];

export interface NeuronSegmentResult {
  out: string;
  method: NeuronMethod;
  shape: Vec3;
  neurons: number;
  /** The blockwise run's passes (with --block): what this process did, and whether the output is complete. */
  blockwise?: BlockwiseNeuronsResult;
}

function checkMethod(job: NeuronSegmentJob): void {
  if (!(NEURON_METHODS as readonly string[]).includes(job.method)) {
    throw new EmsegError('invalid-option', '--method', `"${job.method}" is not one of ${NEURON_METHODS.join(', ')}`);
  }
  if (labelsInside(job.out)) {
    throw new EmsegError('invalid-option', '--out', `--method ${job.method} writes a standalone labels image (neurons.zarr), not labels inside an image`);
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
 * The job as it runs: the model's tuned choice (the maps name the model) filled in where no flag gave one, `--method
 * auto` resolved (tuned-neurons.ts), then checked. `emseg submit` resolves it so, before the spec is queued.
 */
export async function resolveNeuronJob(given: NeuronSegmentJob): Promise<NeuronSegmentJob> {
  if (given.method !== AUTO_METHOD) checkMethod(given); // an unknown method before any file is opened
  const job = await applyTunedNeurons(given);
  checkMethod(job);
  return job;
}

/**
 * Segments `job.pred` into 3-D neurons with `job.method` and writes them as a uint32 (or, `ids`, uint64) OME-Zarr labels image (ids
 * 1..neurons; the parameters recorded under "emseg".neurons). Nothing is written before the neurons are computed,
 * and the output replaces an old one only once it is whole.
 */
export async function runNeuronSegment(given: NeuronSegmentJob, progress: ProgressFactory = silentProgress): Promise<NeuronSegmentResult> {
  const job = await resolveNeuronJob(given);
  const method = job.method as NeuronMethod; // resolved: never auto
  // The labels image is built in a hidden local folder and moved into place: a store without rename is not served yet.
  if (isUrl(job.out)) throw new EmsegIoError('unsupported', displayPath(job.out), `--method ${job.method} writes a local (or shared) OME-Zarr folder; not a URL yet`);
  // Blockwise: built in place and resumable (its own output checks: an earlier run of the same job is resumed).
  if (job.block) {
    const blockwise = await runBlockwiseNeurons(job, progress);
    return { out: job.out, method, shape: blockwise.plan.shape, neurons: blockwise.neurons ?? 0, blockwise };
  }
  const ids = idTypeOf(job);
  const exists = checkVolumeTarget(job.out, outputGuard(job.overwrite ?? false, [volumeLocation(job.pred)]));
  const { labels, reader, record } = await computeNeurons(job);
  // uint64 on request is recorded with the parameters; the default (uint32) record stays as it always was.
  const neurons = ids === 'uint32' ? record : { ...record, ids };
  try {
    const voxel = chooseVoxelSize(reader.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, reader.path, job.notice);
    const chunks = LABEL_CHUNKS.map((c, a) => Math.min(c, reader.shape[a]!)) as unknown as Vec3;
    await buildOutput(job, exists, reader.shape, chunks, { maps: recordedVolumePath(job.pred, job.out), neurons }, voxel,
      (writer) => writer.writeRegion({ start: [0, 0, 0], end: reader.shape }, idsAs(labels.labels, ids)));
    return { out: job.out, method, shape: reader.shape, neurons: labels.count };
  } finally {
    await reader.close();
  }
}

/**
 * Builds the labels image in a hidden folder next to the output (`fill` writes its level 0), then its pyramid,
 * then moves it into place (an old output goes only then); a failure removes the hidden folder.
 */
async function buildOutput<T>(job: NeuronSegmentJob, exists: boolean, shape: Vec3, chunks: Vec3, extra: Record<string, unknown>,
  voxel: ReturnType<typeof chooseVoxelSize>, fill: (writer: OmeZarrWriter, tmp: string) => Promise<T>): Promise<T> {
  sweepStaleTemps(dirname(job.out));
  const tmp = tempPathFor(job.out);
  registerTemp(tmp);
  try {
    const writer = await createOmeZarr(tmp, { shape, dtype: idTypeOf(job), chunks, kind: 'labels', name: basename(job.out).replace(/\.zarr$/i, '') || 'neurons',
      voxelSize: voxel?.size, unit: voxel?.unit, extra });
    await writer.recordDigests();
    const result = await fill(writer, tmp);
    await writer.sealDigests();
    await writer.buildPyramid();
    await replace(tmp, job.out, exists);
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    releaseTemp(tmp);
  }
}

