/**
 * Blockwise prediction of a volume into an OME-Zarr membrane map (`emseg predict --out maps.zarr`).
 *
 * 2-D networks run per section, so a block is a z-range times a y/x window. Its write region starts at multiples
 * of the block size, a multiple of the networks' stride, and the predictor sees it as a section of the block's
 * size whose reads go to the volume: window coordinates are shifted to the block's origin and mirrored at the
 * volume's border (never the block's), exactly as whole-section prediction mirrors. Every tile then starts on the
 * whole section's pooling grid, so the map equals the whole-volume (stack) prediction. The read region is the
 * write region grown by the networks' margin; a tile of an edge band may reach beyond it, but only into inputs
 * of outputs that are thrown away, so those reads are clamped into the region.
 *
 * Intensities are mapped per volume, never per block (a block's min-max would depend on the block size): the
 * dtype rule or a fixed range; per-section statistics (min-max, percentiles) are refused for volumes.
 *
 * The prediction is one block task (engine/task.ts): the engine's runner overlaps reading, compute and writing,
 * retries failed blocks, and runs the same task in-process, by shard and from the queue.
 *
 * 3-d networks (spec `input.dims` 3) take another path from the same job: openVolumePredict hands them to
 * volume-predict3d.ts (a multi-channel map), so the CLI, shards and the queue's `predict` kind carry both.
 */
import { join } from 'node:path';
import { createBackend } from '../backend/index.js';
import { profiled } from '../backend/profile.js';
import { EmsegError } from '../errors.js';
import { checkFinite, formatIntensity, type IntensitySpec } from '../image/intensity.js';
import { neighbourSections, reflect } from '../image/mirror.js';
import type { SectionSource } from '../infer/section.js';
import { checkPredictionMemory } from '../infer/memory.js';
import { Predictor } from '../infer/predict.js';
import { resolveTile } from '../infer/tile-choice.js';
import { commonStride } from '../infer/tiling.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { flagPolarity, fromMembrane } from '../image/map-meaning.js';
import { missingChunksNotice, regionShape, voxelCount, type Region, type Vec3 } from '../io/formats/volume.js';
import { openVolume, recordedVolumePath, volumeLocation } from '../io/registry.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import { recordedPath } from '../util/paths.js';
import { BYTES_PER_SAMPLE, type StackData } from '../image/stack.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { loadModels, SPEC_FILE, WEIGHTS_FILE, type LoadedModel } from '../models/model-dir.js';
import { resolveModelDir } from '../models/shipped.js';
import { alignBlock, planBlocks, type Block, type BlockPlan } from './blocks.js';
import { mapsRecord } from './close-gaps.js';
import { predictIntensity } from './intensity.js';
import { digest, digestFiles, openMarkers, volumeFingerprint, type MarkerStore } from './markers.js';
import { DEFAULT_READ_AHEAD, runJob } from './engine/run.js';
import { jobsetOf, type BlockTask, type TaskJob } from './engine/task.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import { checkUnitRange, checkVolumePredictJob, volumeMapping, type VolumePredictJob, type VolumePredictResult } from './volume-predict-job.js';
import { openVolumePredict3d, type VolumePredict3dRun } from './volume-predict3d.js';

export { volumeMapping, type MapDtype, type VolumePredictJob, type VolumePredictResult } from './volume-predict-job.js';

/** Default block edge in y and x (rounded down to the stride): ~1 M voxels per section of a block. */
export const DEFAULT_BLOCK_EDGE = 1024;
/** Sections per block by default: 2-D networks gain nothing from deeper blocks, and chunks stay small. */
export const DEFAULT_BLOCK_DEPTH = 1;
const UINT8_MAX = 255;
/** Inputs alive at once (engine/run.ts): the block computing and those read ahead. */
const INPUTS_IN_FLIGHT = 1 + DEFAULT_READ_AHEAD;
/** Maps alive at once: one being computed, one being written. */
const MAPS_IN_FLIGHT = 2;

/**
 * The block as a section for the predictor: a full block (`size`, even at the volume's edge, so every block is cut
 * into the same tiles as a whole section predicted with the same --tile) at the write region's origin in section
 * z, read from `data` (the block's read region) with mirroring at the volume border, normalised like sectionFrom.
 */
function blockSection(data: StackData, read: Region, z: number, write: Region, size: Vec3, shape: Vec3, mapping: { low: number; high: number }): SectionSource {
  const [, rh, rw] = regionShape(read);
  const plane = (z - read.start[0]) * rh * rw;
  const { low } = mapping;
  const span = mapping.high - low;
  const flat = !(span > 0);
  const local = (v: number, n: number, start: number, size: number) => Math.min(size - 1, Math.max(0, reflect(v, n) - start));
  const [, y0, x0] = write.start;
  return {
    height: size[1],
    width: size[2],
    read(top, left, h, w, out) {
      const cols = new Int32Array(w);
      for (let x = 0; x < w; x++) cols[x] = local(x0 + left + x, shape[2], read.start[2], rw);
      for (let y = 0; y < h; y++) {
        const row = plane + local(y0 + top + y, shape[1], read.start[1], rh) * rw;
        const o = y * w;
        for (let x = 0; x < w; x++) {
          const v = flat ? 0 : (data[row + cols[x]!]! - low) / span;
          out[o + x] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
      }
    },
  };
}

export interface Engine {
  predictor: Predictor;
  /** The output tile edge every block's sections are predicted with (job.tile resolved: never 'auto'). */
  tile: number;
  /** The plan's block size (edge blocks are predicted at this size too). */
  block: Vec3;
  /** The region a block's tiles read (see inputRegion). */
  input: (b: Block) => Region;
  /** Float input under auto/dtype: refuse values outside [0, 1] instead of clipping them. */
  floatInUnitRange: boolean;
  mapping: { low: number; high: number };
  reader: VolumeReader;
  job: VolumePredictJob;
}

/**
 * Every input voxel the block's tiles read: [start - margin, start + block + margin) on y and x, and the write
 * region's sections +- `radius` (a 2.5D model's neighbours) on z, mirrored at the volume border. Tiles of edge
 * bands reach past the write region's halo; reading them too (rather than clamping) gives the tiles the very
 * inputs a whole-section prediction gives them, so even the rounding of Winograd-style convolutions, which mixes
 * neighbouring inputs, is the same.
 */
export function inputRegion(b: Block, block: Vec3, margin: number, shape: Vec3, radius = 0): Region {
  const span = (a: 0 | 1 | 2, from: number, to: number) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let v = from; v < to; v++) {
      const r = reflect(v, shape[a]);
      lo = Math.min(lo, r);
      hi = Math.max(hi, r);
    }
    return [lo, hi + 1];
  };
  const around = (a: 1 | 2) => span(a, b.write.start[a] - margin, b.write.start[a] + block[a] + margin);
  const [z0, z1] = span(0, b.write.start[0] - radius, b.write.end[0] + radius);
  const [y0, y1] = around(1);
  const [x0, x1] = around(2);
  return { start: [z0!, y0!, x0!], end: [z1!, y1!, x1!] };
}

/** The block's map in the output dtype and polarity (z-major, write region); `data` holds inputRegion(b). */
function computeBlock(e: Engine, b: Block, data: StackData): StackData {
  if (e.floatInUnitRange) checkUnitRange(data, e.input(b), e.reader.path);
  const [bz, bh, bw] = regionShape(b.write);
  const n = bh * bw;
  const out = e.job.dtype === 'uint8' ? new Uint8Array(bz * n) : new Float32Array(bz * n);
  const polarity = flagPolarity(e.job.membraneProb);
  const size = e.block;
  const read = e.input(b);
  for (let z = 0; z < bz; z++) {
    const sections = neighbourSections(b.write.start[0] + z, e.reader.shape[0], e.predictor.radius)
      .map((s) => blockSection(data, read, s, b.write, size, e.reader.shape, e.mapping));
    for (const band of e.predictor.bands(sections, { tta: e.job.tta, tile: e.tile, profile: e.job.profile })) {
      checkFinite(band.data, e.reader.path, `the map of block [${b.grid.join(',')}] (models ${e.job.models.join(', ')})`);
      // Rows and columns past the volume's edge were computed only to keep the tile grid; they are dropped.
      for (let y = 0; y < band.rows && band.top + y < bh; y++) {
        const src = y * size[2];
        const dst = z * n + (band.top + y) * bw;
        for (let x = 0; x < bw; x++) {
          const p = fromMembrane(band.data[src + x]!, polarity);
          out[dst + x] = e.job.dtype === 'uint8' ? Math.round(p * UINT8_MAX) : p;
        }
      }
    }
  }
  return out;
}

/** Block (z, y, x): the user's (checked here against the stride, naming --block) or the default, capped by the volume. */
function blockFor(job: VolumePredictJob, shape: Vec3, stride: number): Vec3 {
  if (job.block) {
    if (job.block.slice(1).some((v) => v % stride !== 0)) {
      const down = alignBlock(job.block, [1, stride, stride]).join(',');
      const up = job.block.map((v, a) => (a === 0 ? v : Math.ceil(v / stride) * stride)).join(',');
      throw new EmsegError('invalid-option', '--block', `y and x must be multiples of the network's stride ${stride} (got ${job.block.join(',')}); `
        + `e.g. ${down === up ? down : `${down} or ${up}`} (default ${DEFAULT_BLOCK_DEPTH},${DEFAULT_BLOCK_EDGE},${DEFAULT_BLOCK_EDGE})`);
    }
    return job.block;
  }
  const cap = (edge: number, size: number) => Math.min(edge, Math.ceil(size / stride) * stride);
  return alignBlock([Math.min(DEFAULT_BLOCK_DEPTH, shape[0]), cap(DEFAULT_BLOCK_EDGE, shape[1]), cap(DEFAULT_BLOCK_EDGE, shape[2])], [1, stride, stride]);
}

/**
 * What computes the output, for the done markers: model files and every option that changes a voxel (not the tile
 * size: the maps are the same at every tile size, so blocks of one run may be computed with different ones).
 */
async function modelIdentity(job: VolumePredictJob, dirs: readonly string[], spec: IntensitySpec): Promise<string> {
  const files = dirs.flatMap((d) => [join(d, SPEC_FILE), join(d, WEIGHTS_FILE)]);
  const options = { tta: job.tta, bf16: job.bf16, dtype: job.dtype, membraneProb: job.membraneProb, intensity: formatIntensity(spec) };
  return digest(await digestFiles(files), JSON.stringify(options));
}

/**
 * An opened blockwise prediction: one task (predict, then the pyramid as its finish) with everything a block needs
 * (predictor, reader, writer, markers), built exactly the same way by the single-process run, a `--shard` and a
 * queue worker, so all three compute the same bytes.
 */
export interface VolumePredictRun extends TaskJob {
  job: VolumePredictJob;
  plan: BlockPlan;
  writer: OmeZarrWriter;
  markers: MarkerStore;
  engine: Engine;
}

/**
 * Opens (creating or validating) the output and its markers for `job`, as `emseg predict --out x.zarr` does: the
 * output's layout must agree, and a run record of another layout, model or input is refused unless `restart`.
 */
export async function openVolumePredict(given: VolumePredictJob): Promise<VolumePredictRun | VolumePredict3dRun> {
  const job = { ...given, models: given.models.map((m) => resolveModelDir(m)) }; // a shipped model's name is its folder
  const reader = await openVolume(job.input, { scale: job.scale, colour: job.toGrey ? 'to-grey' : 'reject', allowMissingChunks: job.allowMissingChunks });
  try {
    checkVolumePredictJob(job, reader);
    const models = job.models.flatMap((dir) => loadModels(dir));
    if (dimsOf(models) === 3) return await openVolumePredict3d(job, reader, models);
    if (job.volumeTile?.some((v) => v !== job.tile)) { // (a 2-d tile given as 'auto' leaves volumeTile unset)
      throw new EmsegError('invalid-option', '--tile', `${job.volumeTile.join(',')} is a 3-d tile (z,y,x); 2-d networks take one tile edge`);
    }
    const intensity = predictIntensity(models, reader.dtype, job.input, job.intensity);
    intensity.notices.forEach((m) => job.notice?.(m));
    const mapping = volumeMapping(intensity.spec, reader.dtype);
    const stride = commonStride(models.map((m) => m.spec));
    const block = blockFor(job, reader.shape, stride);
    const backend = profiled(createBackend({ kind: job.backend, precision: job.bf16 ? 'bfloat16' : 'float32', threads: job.threads }), job.profile);
    const predictor = new Predictor(models, backend);
    const specs = models.map((m) => m.spec);
    const { radius } = predictor;
    // Two read regions (current and prefetched), the block's map being filled and the one being written.
    const readBytes = (margin: number) => INPUTS_IN_FLIGHT * BYTES_PER_SAMPLE[reader.dtype]
      * voxelCount([block[0] + 2 * radius, block[1] + 2 * margin, block[2] + 2 * margin]);
    const mapBytes = MAPS_IN_FLIGHT * voxelCount(block) * BYTES_PER_SAMPLE[job.dtype];
    // The tile is chosen before the margin it implies is known: the check below counts the read regions' halo.
    const tile = resolveTile(job.tile, specs, block[1], block[2], readBytes(0) + mapBytes);
    const grid = predictor.layout(block[1], block[2], tile);
    const margin = Math.max(...models.map((m) => predictor.geometry(m, grid.stepH, grid.stepW).margin));
    const plan = planBlocks(reader.shape, block, [radius, margin, margin], [1, stride, stride]);
    checkPredictionMemory(specs, tile, block[1], block[2], readBytes(margin) + mapBytes, '--block');
    const polarity = flagPolarity(job.membraneProb);
    const voxel = chooseVoxelSize(reader.voxelSize, { voxelSize: job.voxelSize, unit: job.unit }, reader.path, job.notice);
    // Paths relative to the output (util/paths.ts): the metadata names no machine's folders.
    const writer = await createOmeZarr(job.out, { shape: reader.shape, dtype: job.dtype, chunks: block, kind: 'membrane', polarity,
      compression: job.compression, name: 'membrane', voxelSize: voxel?.size, unit: voxel?.unit,
      extra: { models: job.models.map((m) => recordedPath(m, job.out)), input: recordedVolumePath(job.input, job.out),
        intensity: formatIntensity(intensity.spec), tta: job.tta, ...mapsRecord(job.models) } },
    { overwrite: job.overwrite, resume: !job.overwrite, inputs: [volumeLocation(job.input), ...job.models] });
    // The input is named relative to the output, so workers mounting the storage elsewhere agree on the run.
    const identity = { model: await modelIdentity(job, models.map((m) => m.dir), intensity.spec), input: volumeFingerprint(reader, job.out) };
    const markers = await openMarkers(job.out, plan, identity, { restart: job.restart });
    const input = (b: Block) => inputRegion(b, block, margin, reader.shape, radius);
    const floatInUnitRange = reader.dtype === 'float32' && (intensity.spec.kind === 'auto' || intensity.spec.kind === 'dtype');
    const engine: Engine = { predictor, tile, block, input, floatInUnitRange, mapping, reader, job };
    return { kind: 'predict', out: job.out, tasks: [predictTask(plan, markers, engine, writer)], jobset: jobsetOf(markers), notice: job.notice, job, plan, writer, markers, engine,
      close: async () => {
        const missing = missingChunksNotice(reader);
        if (missing) job.notice?.(missing);
        await reader.close();
      } };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** 3 when the models are 3-d networks, else 2; an ensemble mixing both is refused. */
function dimsOf(models: readonly LoadedModel[]): 2 | 3 {
  const flat = models.find((m) => m.spec.input.dims !== 3);
  const deep = models.find((m) => m.spec.input.dims === 3);
  if (flat && deep) {
    throw new EmsegError('mismatch', deep.dir, `is a 3-d network and ${flat.dir} a 2-d one; an ensemble's models must all be 2-d or all 3-d`);
  }
  return deep ? 3 : 2;
}

/** The prediction's one task: a block's input region read, its map computed, its chunks written; then the pyramid. */
function predictTask(plan: BlockPlan, markers: MarkerStore, engine: Engine, writer: OmeZarrWriter): BlockTask<StackData, StackData> {
  return {
    name: 'predict', plan, markers, upstream: [],
    read: (b) => engine.reader.readRegion(engine.input(b)),
    compute: (b, data) => computeBlock(engine, b, data),
    write: (b, map) => writer.writeBlock(b.write, map),
    finish: () => writer.buildPyramid(),
  };
}

/** Predicts a volume block by block into an OME-Zarr map; resumable (done markers) and shardable. */
export async function runVolumePredict(job: VolumePredictJob, progress: ProgressFactory = silentProgress): Promise<VolumePredictResult> {
  const started = Date.now();
  const run = await openVolumePredict(job);
  try {
    const r = await runJob(run, { shard: job.shard, attempts: job.attempts, progress });
    const done = r.tasks.get('predict') ?? { computed: 0, skipped: 0, failed: [], voxels: 0 };
    return { out: job.out, plan: run.plan, ...done, complete: r.complete, seconds: (Date.now() - started) / 1000 };
  } finally {
    await run.close();
  }
}
