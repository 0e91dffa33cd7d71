import { createBackend } from '../backend/index.js';
import { profiled } from '../backend/profile.js';
import { EmsegError } from '../errors.js';
import { checkFinite, sectionMapping, type IntensitySpec } from '../image/intensity.js';
import { DECODE_BYTES_PER_RAW_BYTE, availableMemoryBytes, formatBytes } from '../io/limits.js';
import { writeIsbiSubmission, writeStack, type AnySlice, type OutputFormat, type Slice } from '../io/index.js';
import { missingChunksNotice } from '../io/formats/volume.js';
import { stackOutput } from '../io/outputs.js';
import { openVolume } from '../io/registry.js';
import { volumeInputs, volumeSlices, volumeSource } from '../io/volume-slices.js';
import { BYTES_PER_SAMPLE } from '../image/stack.js';
import { ISBI_POLARITY, MEMBRANE_POLARITY, flagPolarity, fromMembraneInPlace, type MapPolarity } from '../image/map-meaning.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import { checkPredictionMemory } from '../infer/memory.js';
import { resolveTile, type TileSize } from '../infer/tile-choice.js';
import { Predictor } from '../infer/predict.js';
import { CLOSE_GAPS_STEP } from '../infer/profile.js';
import { sectionFrom, type SectionSource } from '../infer/section.js';
import { closeMembraneGaps, type SegmentOptions } from '../segment/index.js';
import { loadModels, type LoadedModel } from '../models/model-dir.js';
import { resolveModelDir } from '../models/shipped.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { closeGapsOptions, describeCloseGaps, mapsDescription } from './close-gaps.js';
import { predictIntensity } from './intensity.js';
import { calibrateInt8 } from './int8.js';
import { withNeighbours, type SliceWithNeighbours } from './neighbours.js';
import { planBlocks, type BlockPlan } from './blocks.js';
import { memoryMarkers } from './engine/memory-markers.js';
import { runInOrder, sectionReader } from './engine/ordered.js';
import type { BlockTask } from './engine/task.js';
import { sectionRadius } from '../nn/spec.js';
import type { Profile } from '../util/profile.js';
import { silentProgress, type Progress, type ProgressFactory } from './progress.js';

export interface PredictJob {
  models: readonly string[];
  /** Any volume openVolume reads: a PNG/TIFF stack (folder, glob, file), `vol.h5:/raw`, `vol.zarr/0`, a big TIFF. */
  input: string;
  /** A stack output of `format` (io/outputs.ts stackOutput); an OME-Zarr output is runVolumePredict's. */
  out: string;
  format: 'isbi' | OutputFormat;
  membraneProb: boolean;
  tta: boolean;
  /**
   * Draw the watershed segments' boundaries into the maps as certain membrane (closes gaps): the options the user
   * set ({} for none); the rest come from the model's tuned record, else the defaults (close-gaps.ts).
   */
  closeGaps?: Partial<SegmentOptions>;
  bf16: boolean;
  /**
   * Predict with int8 convolutions (nn/int8.ts; oneDNN on an AVX-512 VNNI CPU), calibrated first on these images
   * (a few sections like the input's; read only).
   */
  int8?: { calibrate: string };
  /** Output tile edge, or 'auto' (infer/tile-choice.ts): chosen once for the stack's section size. */
  tile: TileSize;
  threads?: number;
  backend: 'auto' | 'onednn' | 'reference';
  overwrite: boolean;
  /** An --intensity rule; default: the one the models were trained with. */
  intensity?: string;
  /** Reduce colour images to their luma instead of refusing them. */
  toGrey?: boolean;
  /** Voxel size (z, y, x) and unit TIFF maps record, over the input's own (io/voxel-size.ts chooseVoxelSize). */
  voxelSize?: readonly [number, number, number];
  unit?: string;
  /** Scale level of a multiscale OME-Zarr input. */
  scale?: number;
  /** Read absent chunk files of a Zarr input as its fill value (one notice at the end) instead of refusing them. */
  allowMissingChunks?: boolean;
  /** Warnings for the user (the CLI prints them on stderr). */
  notice?: (message: string) => void;
  /** Adds where the time goes (tile steps, backend ops, gap closing) to this profile (infer/profile.ts reports it). */
  profile?: Profile;
}

/**
 * Bytes per pixel --close-gaps holds for a whole section: the assembled map (4), the watershed and its output
 * (16.5, measured on a 4096x4096 map: 276 MB, before extra seeds), the extra seeds' mask and region labels (5,
 * counted), and the writer's float copy (4), rounded up.
 */
export const CLOSE_GAPS_BYTES_PER_PIXEL = 30;


/** The section as the predictor reads it: windows of normalised intensities from the decoded slice. */
function sectionOf(s: Slice, spec: IntensitySpec): SectionSource {
  return sectionFrom(s.data, s.height, s.width, sectionMapping(spec, s.data, s));
}

/** --close-gaps segments the whole map at once; refuse a section whose watershed would not fit in memory. */
function checkCloseGapsMemory(width: number, height: number, prediction: number): void {
  const needed = CLOSE_GAPS_BYTES_PER_PIXEL * width * height + prediction;
  const available = availableMemoryBytes();
  if (needed > available) {
    throw new EmsegError('insufficient-memory', '--close-gaps', `closing gaps segments the whole ${width}x${height} map at ` +
      `once and needs about ${formatBytes(needed)}, but only ${formatBytes(available)} is available; predict without --close-gaps`);
  }
}

/**
 * Predict every section of any volume (a stack, HDF5, OME-Zarr, a big TIFF), read section by section and whole, as a
 * stack's slices are (io/volume-slices.ts: per-section intensity statistics are computed on the whole section), with
 * maps streamed out band by band (memory bounded by the tile and a section).
 */
export async function runPredict(job: PredictJob, progress: ProgressFactory = silentProgress): Promise<string[]> {
  const o = { ...job, models: job.models.map((m) => resolveModelDir(m)) }; // a shipped model's name is its folder
  stackOutput(o.out, o.format); // before any model is loaded
  if (o.format === 'isbi' && o.membraneProb) {
    // The ISBI format is P(non-membrane) by definition: the flag would be dropped in silence.
    throw new EmsegError('invalid-option', '--membrane-prob', `the ISBI format (${o.out}) holds P(non-membrane) by definition; `
      + 'for P(membrane) maps give --format tiff (or png-folder, tiff-folder) or an OME-Zarr output (x.zarr)');
  }
  if (o.int8 && o.closeGaps) {
    // Gap closing thresholds a watershed of the maps: int8's small map changes moved its V_rand on ISBI sections
    // 20-24 by up to 0.005 (docs/MODELS.md, "int8 prediction"), outside issue 28's acceptance (0.001).
    throw new EmsegError('invalid-option', '--int8', 'int8 maps are not accepted for --close-gaps (they moved its V_rand by up to 0.005 '
      + 'on ISBI sections 20-24; docs/MODELS.md): predict without --int8, or without --close-gaps');
  }
  const models = o.models.flatMap((dir) => loadModels(dir));
  const reader = await openVolume(o.input, { colour: o.toGrey ? 'to-grey' : 'reject', scale: o.scale, allowMissingChunks: o.allowMissingChunks, stream: true });
  try {
    return await predictSections(o, models, reader, progress);
  } finally {
    const missing = missingChunksNotice(reader);
    if (missing) o.notice?.(missing);
    await reader.close();
  }
}

async function predictSections(o: PredictJob, models: LoadedModel[], reader: VolumeReader, progress: ProgressFactory): Promise<string[]> {
  const [depth, height, width] = reader.shape;
  const voxelSize = chooseVoxelSize(reader.voxelSize, { voxelSize: o.voxelSize, unit: o.unit }, volumeSource(reader), o.notice);
  const intensity = predictIntensity(models, reader.dtype, o.input, o.intensity);
  intensity.notices.forEach((m) => o.notice?.(m));
  // never written over, even with --overwrite
  const inputs = [...volumeInputs(reader, o.input), ...o.models, ...(o.int8 ? [o.int8.calibrate] : [])];
  // The decoded sections (with a 2.5D model's neighbours) stay while they are predicted, and the next one is read
  // meanwhile (engine/ordered.ts); the last decoder's buffers may not be collected yet.
  const radius = sectionRadius(models[0]!.spec);
  const sectionBytes = (2 * radius + 2 + DECODE_BYTES_PER_RAW_BYTE) * width * height * BYTES_PER_SAMPLE[reader.dtype];
  const tile = resolveTile(o.tile, models.map((m) => m.spec), height, width, sectionBytes);
  const ws = checkPredictionMemory(models.map((m) => m.spec), tile, height, width, sectionBytes);
  if (o.closeGaps) checkCloseGapsMemory(width, height, ws.total + sectionBytes);
  const gaps = o.closeGaps ? closeGapsOptions(o.models, o.closeGaps) : null;
  if (gaps?.from) o.notice?.(describeCloseGaps(gaps.options, gaps.from));
  const plain = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads, int8: o.int8 !== undefined });
  const int8 = o.int8 ? await calibrateInt8({ ...o, tile, calibrate: o.int8.calibrate }, models, plain, radius) : undefined;
  const backend = profiled(plain, o.profile);
  const predictor = new Predictor(models, backend, { int8 });
  // What the maps on disk hold: the ISBI format is membrane-low by definition, other formats what the flag says.
  const written: MapPolarity = o.format === 'isbi' ? ISBI_POLARITY : flagPolarity(o.membraneProb);
  // The ISBI writer converts P(membrane) itself; other writers are handed the written polarity.
  const handed: MapPolarity = o.format === 'isbi' ? MEMBRANE_POLARITY : written;
  const sections = withNeighbours(volumeSlices(reader), depth, radius);
  const bar = progress('predict', depth, 'section {section} {tiles}');
  const task = sectionTask(o, { predictor, tile, spec: intensity.spec, gaps: gaps?.options, handed, plan: planBlocks(reader.shape, [1, height, width], [radius, 0, 0]) }, sections, bar);
  // A multi-page TIFF remembers what its values mean and the model's tuned gap-closing options for `emseg segment`
  // (folders of slices carry none).
  const description = mapsDescription(o.models, written);
  try {
    if (o.format === 'isbi') {
      return [await runInOrder(task, (maps) => writeIsbiSubmission(o.out, maps, { values: handed, overwrite: o.overwrite, inputs, description, voxelSize }))];
    }
    const format = o.format;
    return await runInOrder(task, (maps) => writeStack(o.out, maps, { format, overwrite: o.overwrite, inputs, description, voxelSize }));
  } finally {
    await sections.return(undefined);
    bar.stop();
  }
}

/** How every section is predicted: the predictor, the intensity rule, gap closing, the polarity handed to the writer. */
interface SectionPrediction {
  predictor: Predictor;
  /** The output tile edge (resolved: never 'auto'). */
  tile: number;
  spec: IntensitySpec;
  gaps?: SegmentOptions;
  handed: MapPolarity;
  /** One block per section (whole), its neighbours as the halo. */
  plan: BlockPlan;
}

/**
 * One block task per section, run by the engine (engine/ordered.ts): the next section is read while one is
 * predicted and written; the maps go to the writer in order, band by band (memory bounded by the tile), or whole
 * when gaps are closed (closing segments the whole section).
 */
function sectionTask(o: PredictJob, p: SectionPrediction, sections: AsyncGenerator<SliceWithNeighbours>, bar: Progress): BlockTask<SliceWithNeighbours, AnySlice> {
  let done = 0;
  const optionsFor = (s: Slice) => ({ tta: o.tta, tile: p.tile, profile: o.profile,
    onTile: (d: number, n: number) => bar.update(done, { section: s.index, tiles: `tile ${d}/${n}` }) });
  // NaN weights or an overflow must never reach a written map.
  const finite = (s: Slice, m: Float32Array) => {
    checkFinite(m, s.source, `the map of section ${s.index} (models ${o.models.join(', ')})`);
    return m;
  };
  const bandsOf = (s: Slice, planes: Slice[]) => p.predictor.bands(planes.map((q) => sectionOf(q, p.spec)), optionsFor(s));
  const sectionDone = (s: Slice) => bar.update(++done, { section: s.index, tiles: '' });
  function* bands(s: Slice, planes: Slice[]): Generator<Float32Array> {
    for (const band of bandsOf(s, planes)) yield fromMembraneInPlace(finite(s, band.data), p.handed);
    sectionDone(s);
  }
  // Gaps are closed on membrane probabilities of the whole section; the polarity is applied afterwards.
  function closed(s: Slice, planes: Slice[], options: SegmentOptions): AnySlice {
    const membrane = new Float32Array(s.width * s.height);
    for (const band of bandsOf(s, planes)) membrane.set(finite(s, band.data), band.top * s.width);
    const close = () => closeMembraneGaps(membrane, s.height, s.width, options);
    const data = fromMembraneInPlace(o.profile ? o.profile.time(CLOSE_GAPS_STEP, close) : close(), p.handed);
    sectionDone(s);
    return { width: s.width, height: s.height, data };
  }
  const bandRows = p.predictor.layout(p.plan.shape[1], p.plan.shape[2], p.tile).stepH;
  return {
    name: 'predict', plan: p.plan, markers: memoryMarkers(p.plan, o.out), upstream: [],
    read: sectionReader(sections, (s) => s.slice.index, o.input),
    compute: (_b, { slice: s, planes }) => (p.gaps ? closed(s, planes, p.gaps)
      : { width: s.width, height: s.height, sampleType: 'float32', bandRows, bands: bands(s, planes) }),
    write: async () => [],
  };
}
