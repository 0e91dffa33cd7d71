/**
 * Blockwise prediction of a volume by 3-d networks (`emseg predict --model 3d-model --out aff.zarr`) into a
 * multi-channel OME-Zarr map: a channel axis `c`, one channel per target of the network, and the record of what
 * each channel means (an affinity and its offset, or a boundary map and its polarity: image/affinities.ts
 * targetsRecord), which `emseg segment --method` reads.
 *
 * Blocks are whole network tiles (infer/volume.ts): the block size is rounded up to a multiple of the tile's
 * step, and write regions start at multiples of it, so every block is cut into the very tiles a prediction of the
 * whole volume is (the same inputs, mirrored at the volume's faces, at the same sizes, through the same kernels):
 * the map equals predictVolume over the whole volume byte for byte, whatever the block. A block reads the input
 * box of its outputs clamped to the volume and mirrors the rest; memory is bounded by the block and the tile.
 *
 * Intensities are mapped per volume, as for 2-d networks (volumeMapping: the dtype rule or a fixed range). The
 * prediction is one block task of the engine (engine/task.ts), run in-process, by shard and from the queue.
 */
import { join } from 'node:path';
import { createBackend } from '../backend/index.js';
import { profiled } from '../backend/profile.js';
import { EmsegError } from '../errors.js';
import { targetsRecord, type TargetChannel } from '../image/affinities.js';
import { checkFinite, formatIntensity, type IntensityMapping, type IntensitySpec } from '../image/intensity.js';
import { flagPolarity, fromMembrane, multiChannelRecord, type ChannelMeaning, type MapPolarity } from '../image/map-meaning.js';
import { BYTES_PER_SAMPLE, type StackData } from '../image/stack.js';
import { BASE_PROCESS_BYTES, volumeTileBytes } from '../infer/memory.js';
import { DEFAULT_VOLUME_TILE, VolumePredictor, clampBox, inputBox, mirrorFill, seesOneSection, volumeGeometry, volumeOf, type Box } from '../infer/volume.js';
import { availableMemoryBytes, formatBytes } from '../io/limits.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { missingChunksNotice, regionShape, type Vec3, type VolumeReader } from '../io/formats/volume.js';
import { recordedVolumePath, volumeLocation } from '../io/registry.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import { SPEC_FILE, WEIGHTS_FILE, type LoadedModel } from '../models/model-dir.js';
import { recordedPath } from '../util/paths.js';
import { planBlocks, type Block, type BlockPlan } from './blocks.js';
import { DEFAULT_READ_AHEAD } from './engine/run.js';
import { jobsetOf, type BlockTask, type TaskJob } from './engine/task.js';
import { predictIntensity } from './intensity.js';
import { digest, digestFiles, openMarkers, volumeFingerprint, type MarkerStore } from './markers.js';
import { checkUnitRange, volumeMapping, type VolumePredictJob } from './volume-predict-job.js';

/** Default block (z, y, x) of 3-d networks: about 1 M voxels, as a 2-d block's section; rounded up to whole tiles. */
export const DEFAULT_VOLUME_BLOCK: Vec3 = [64, 128, 128];
/**
 * The same for networks that see one section at a time (planar ones): their halo is in-plane only, so wide in-plane
 * tiles waste least (a 4-level U-Net's 92-pixel halo around 64 x 64 outputs would read 15x the outputs; around
 * 512 x 512, 1.8x, as the 2-d predictor's tiles).
 */
export const DEFAULT_PLANAR_BLOCK: Vec3 = [8, 512, 512];
const DEFAULT_PLANAR_TILE: Vec3 = [1, 512, 512];
const UINT8_MAX = 255;
/** Inputs alive at once (engine/run.ts): the block computing and those read ahead; each also as floats, mirrored. */
const INPUTS_IN_FLIGHT = 1 + DEFAULT_READ_AHEAD;
const FLOAT_BYTES = 4;
/** Maps alive at once: one being computed (float probabilities, then the output's copy) and one being written. */
const MAPS_IN_FLIGHT = 2;

/** What a block of a 3-d prediction needs. */
export interface Predict3dEngine {
  predictor: VolumePredictor;
  reader: VolumeReader;
  mapping: IntensityMapping;
  /** Float input under auto/dtype: refuse values outside [0, 1] instead of clipping them. */
  floatInUnitRange: boolean;
  /** Per channel: a membrane (boundary) map, written in the polarity asked for; affinities are written as they are. */
  membrane: readonly boolean[];
  polarity: MapPolarity;
  job: VolumePredictJob;
}

/** An opened 3-d prediction, as VolumePredictRun is for 2-d networks. */
export interface VolumePredict3dRun extends TaskJob {
  job: VolumePredictJob;
  plan: BlockPlan;
  writer: OmeZarrWriter;
  markers: MarkerStore;
  engine: Predict3dEngine;
}

const map3 = (f: (a: 0 | 1 | 2) => number): Vec3 => [f(0), f(1), f(2)];
const roundUp = (v: number, step: number) => Math.max(1, Math.ceil(v / step)) * step;

/**
 * What each output channel means: the networks' targets (every member of an ensemble must have the same), boundary
 * channels in `polarity`. A 3-d network without recorded targets is refused: its channels' meaning would be guessed.
 */
export function channelMeanings(models: readonly LoadedModel[], polarity: MapPolarity): ChannelMeaning[] {
  const first = models[0]!;
  const targets: readonly TargetChannel[] | undefined = first.spec.targets;
  if (!targets) {
    throw new EmsegError('invalid-spec', join(first.dir, SPEC_FILE), 'records no "targets": what its output channels mean (affinity offsets, boundaries) is unknown, so no map can say it');
  }
  const other = models.find((m) => JSON.stringify(m.spec.targets) !== JSON.stringify(targets));
  if (other) {
    throw new EmsegError('mismatch', join(other.dir, SPEC_FILE), `predicts other targets than ${join(first.dir, SPEC_FILE)}; an ensemble's 3-d models must predict the same channels`);
  }
  return targetsRecord(targets).channels.map((c) => (c.kind === 'membrane' ? { ...c, polarity } : c));
}

/**
 * The block size before rounding (the user's --block, else the default capped by the volume) and the tile (the
 * user's --tile, else DEFAULT_VOLUME_TILE, at most the block: a tile larger than a block would compute outputs the
 * block throws away).
 */
function sizes(job: VolumePredictJob, shape: Vec3, planar: boolean): { asked: Vec3; tile: Vec3 } {
  if (job.block && job.block.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new EmsegError('invalid-option', '--block', `must be three positive integers z,y,x (got ${job.block.join(',')})`);
  }
  const asked = job.block ?? map3((a) => Math.min((planar ? DEFAULT_PLANAR_BLOCK : DEFAULT_VOLUME_BLOCK)[a], shape[a]));
  const tile = job.volumeTile ?? (planar ? DEFAULT_PLANAR_TILE : [DEFAULT_VOLUME_TILE, DEFAULT_VOLUME_TILE, DEFAULT_VOLUME_TILE]);
  if (tile.some((v) => !Number.isInteger(v) || v <= 0)) throw new EmsegError('invalid-option', '--tile', `must be positive integers (got ${tile.join(',')})`);
  return { asked, tile: map3((a) => Math.min(tile[a], asked[a])) };
}

/** The block: `asked` rounded up to whole tiles of `step` (said in a notice when the user's --block changes). */
function blockOf(job: VolumePredictJob, asked: Vec3, step: Vec3): Vec3 {
  const block = map3((a) => roundUp(asked[a], step[a]));
  if (job.block && block.some((v, a) => v !== job.block![a])) {
    job.notice?.(`--block ${job.block.join(',')} rounded up to ${block.join(',')}: blocks of a 3-d network are whole tiles of `
      + `${step.join(',')} output voxels (the network's stride per axis and --tile set them)`);
  }
  return block;
}

/** Refuses a block and tile whose working set exceeds the memory available now, naming the flag to lower. */
function checkMemory3d(models: readonly LoadedModel[], predictor: VolumePredictor, block: Vec3, inputType: VolumeReader['dtype'], dtype: VolumePredictJob['dtype']): void {
  const g = predictor.geometry;
  const tiles = volumeTileBytes(models.map((m) => m.spec), models.map(() => g.plan));
  const box = inputBox(g, { start: [0, 0, 0], end: block });
  const inputs = INPUTS_IN_FLIGHT * volumeOf(map3((a) => box.end[a] - box.start[a])) * (BYTES_PER_SAMPLE[inputType] + 2 * FLOAT_BYTES);
  const maps = MAPS_IN_FLIGHT * predictor.channels * volumeOf(block) * (FLOAT_BYTES + BYTES_PER_SAMPLE[dtype]);
  const total = BASE_PROCESS_BYTES + tiles + inputs + maps;
  const available = availableMemoryBytes();
  if (total > available) {
    const flag = tiles > inputs + maps ? '--tile' : '--block';
    throw new EmsegError('insufficient-memory', flag, `predicting blocks of ${block.join(' x ')} voxels (${predictor.channels} channels) with tiles of `
      + `${g.output.join(' x ')} needs about ${formatBytes(total)} (tiles ${formatBytes(tiles)}, block inputs ${formatBytes(inputs)}, `
      + `maps ${formatBytes(maps)}, the process ${formatBytes(BASE_PROCESS_BYTES)}) but only ${formatBytes(available)} is available; use a smaller ${flag}`);
  }
}

/** What computes the output, for the done markers: model files and every option that changes a voxel. */
async function modelIdentity3d(job: VolumePredictJob, models: readonly LoadedModel[], spec: IntensitySpec, tile: Vec3): Promise<string> {
  const files = models.flatMap((m) => [join(m.dir, SPEC_FILE), join(m.dir, WEIGHTS_FILE)]);
  const options = { dims: 3, bf16: job.bf16, tile, dtype: job.dtype, membraneProb: job.membraneProb, intensity: formatIntensity(spec),
    ...(job.tta ? { tta: true } : {}) };
  return digest(await digestFiles(files), JSON.stringify(options));
}

/** The block's input as floats in [0, 1] (the volume's mapping, clipped), mirrored at the volume's faces into its input box. */
function blockInput(e: Predict3dEngine, box: Box, data: StackData): Float32Array {
  const shape = e.reader.shape;
  const clamp = clampBox(box, shape);
  if (e.floatInUnitRange) checkUnitRange(data, clamp, e.reader.path);
  const { low } = e.mapping;
  const span = e.mapping.high - low;
  const flat = !(span > 0);
  const scaled = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = flat ? 0 : (data[i]! - low) / span;
    scaled[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return mirrorFill(scaled, shape, box);
}

/** The block's maps in the output dtype, channel-major (c, z, y, x) over its write region; `data` holds its clamped input box. */
function computeBlock3d(e: Predict3dEngine, b: Block, data: StackData): StackData {
  const box = inputBox(e.predictor.geometry, b.write);
  const probs = e.predictor.predictRegion(blockInput(e, box, data), b.write, e.job.profile);
  checkFinite(probs, e.reader.path, `the maps of block [${b.grid.join(',')}] (models ${e.job.models.join(', ')})`);
  const n = volumeOf(regionShape(b.write));
  for (let c = 0; c < e.membrane.length; c++) {
    if (!e.membrane[c]) continue;
    for (let i = c * n; i < (c + 1) * n; i++) probs[i] = fromMembrane(probs[i]!, e.polarity);
  }
  return e.job.dtype === 'uint8' ? Uint8Array.from(probs, (p) => Math.round(p * UINT8_MAX)) : probs;
}

/** The prediction's one task: a block's input box read (clamped to the volume), its maps computed, its chunks written. */
function predict3dTask(plan: BlockPlan, markers: MarkerStore, e: Predict3dEngine, writer: OmeZarrWriter): BlockTask<StackData, StackData> {
  return {
    name: 'predict', plan, markers, upstream: [],
    read: (b) => e.reader.readRegion(clampBox(inputBox(e.predictor.geometry, b.write), e.reader.shape)),
    compute: (b, data) => computeBlock3d(e, b, data),
    async write(b, maps) {
      await writer.writeRegion(b.write, maps);
      return writer.chunkFiles(b.write);
    },
  };
}

/**
 * Opens (creating or validating) the multi-channel output and its markers for 3-d `models` reading `reader`, as
 * openVolumePredict does for 2-d networks (it calls this one when the models are 3-d; the caller closes the
 * reader if this throws).
 */
export async function openVolumePredict3d(job: VolumePredictJob, reader: VolumeReader, models: readonly LoadedModel[]): Promise<VolumePredict3dRun> {
  const polarity = flagPolarity(job.membraneProb);
  const meanings = channelMeanings(models, polarity);
  const intensity = predictIntensity(models, reader.dtype, job.input, job.intensity);
  intensity.notices.forEach((m) => job.notice?.(m));
  const mapping = volumeMapping(intensity.spec, reader.dtype);
  const { asked, tile } = sizes(job, reader.shape, models.every((m) => seesOneSection(volumeGeometry(m.spec))));
  const backend = profiled(createBackend({ kind: job.backend, precision: job.bf16 ? 'bfloat16' : 'float32', threads: job.threads }), job.profile);
  const predictor = new VolumePredictor(models, backend, tile, { tta: job.tta });
  if (predictor.channels !== meanings.length) {
    throw new EmsegError('invalid-spec', join(models[0]!.dir, SPEC_FILE), `outputs ${predictor.channels} channels but records ${meanings.length} targets`);
  }
  const g = predictor.geometry;
  const block = blockOf(job, asked, g.step);
  checkMemory3d(models, predictor, block, reader.dtype, job.dtype);
  const plan = planBlocks(reader.shape, block, g.offset, g.step);
  const voxel = chooseVoxelSize(reader.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, reader.path, job.notice);
  // Paths relative to the output (util/paths.ts): the metadata names no machine's folders.
  const writer = await createOmeZarr(job.out, { shape: reader.shape, dtype: job.dtype, chunks: block, maps: multiChannelRecord(meanings),
    compression: job.compression, name: 'maps', voxelSize: voxel?.size, unit: voxel?.unit,
    extra: { models: job.models.map((m) => recordedPath(m, job.out)), input: recordedVolumePath(job.input, job.out),
      intensity: formatIntensity(intensity.spec) } },
  { overwrite: job.overwrite, resume: !job.overwrite, inputs: [volumeLocation(job.input), ...job.models] });
  const identity = { model: await modelIdentity3d(job, models, intensity.spec, g.output), input: volumeFingerprint(reader, job.out) };
  const markers = await openMarkers(job.out, plan, identity, { restart: job.restart });
  const floatInUnitRange = reader.dtype === 'float32' && (intensity.spec.kind === 'auto' || intensity.spec.kind === 'dtype');
  const engine: Predict3dEngine = { predictor, reader, mapping, floatInUnitRange, membrane: meanings.map((m) => m.kind === 'membrane'), polarity, job };
  return { kind: 'predict', out: job.out, tasks: [predict3dTask(plan, markers, engine, writer)], jobset: jobsetOf(markers), notice: job.notice,
    job, plan, writer, markers, engine,
    close: async () => {
      const missing = missingChunksNotice(reader);
      if (missing) job.notice?.(missing);
      await reader.close();
    } };
}
