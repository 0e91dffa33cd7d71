import { resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { FolderOutput, outputGuard, writeStack, type OutputFormat, type Slice } from '../io/index.js';
import { missingChunksNotice, type VolumeReader } from '../io/formats/volume.js';
import { labelStackOutput } from '../io/outputs.js';
import { openVolume } from '../io/registry.js';
import { volumeInputs, volumeSlices, volumeSource } from '../io/volume-slices.js';
import { toFloat32, type SliceLike } from '../image/stack.js';
import { decideMapPolarity, flagPolarity, toMembrane, type MapPolarity } from '../image/map-meaning.js';
import { mapSpread, recordedAsMap } from '../io/plausibility.js';
import { encodeRgbaPng } from '../report/png.js';
import { segmentSection, segmentationPicture, type SegmentOptions } from '../segment/index.js';
import { mapSegmentOptions } from './close-gaps.js';
import { chooseVoxelSize, type VoxelSize } from '../io/voxel-size.js';
import { silentProgress, type ProgressFactory } from './progress.js';
import { planBlocks } from './blocks.js';
import { memoryMarkers } from './engine/memory-markers.js';
import { runInOrder, sectionReader } from './engine/ordered.js';
import type { BlockTask } from './engine/task.js';

export interface SegmentJob {
  /** Membrane maps: any volume openVolume reads (a PNG/TIFF stack, maps.zarr, `maps.h5:/pred`, a big TIFF). */
  pred: string;
  /** A label stack (io/outputs.ts labelsOutput): one multi-page .tif or a folder of .tif slices; OME-Zarr is runVolumeSegment's. */
  out: string;
  /**
   * The maps hold P(membrane) (true) or the ISBI polarity, 1 = non-membrane (false); default: the polarity the maps
   * record (emseg predict's TIFF maps do), else the ISBI polarity, as for map volumes (decideMapPolarity).
   */
  membraneProb?: boolean;
  /** Raw EM sections to draw the pictures over (any volume of the maps' shape). */
  images?: string;
  /** Folder for one colour picture per section. */
  pictures?: string;
  /**
   * The watershed options the user set; the rest come from the record emseg predict left in a TIFF map stack
   * (the model's tuned options), else the defaults (close-gaps.ts mapSegmentOptions).
   */
  options: Partial<SegmentOptions>;
  overwrite: boolean;
  /** The maps are maps even if their values are spread like a raw image's (else refused, code 'not-a-map'). */
  predIsMap?: boolean;
  /** Voxel size (z, y, x) and unit TIFF labels record, over the maps' own (io/voxel-size.ts chooseVoxelSize). */
  voxelSize?: readonly [number, number, number];
  unit?: string;
  /** Read absent chunk files of Zarr maps (or images) as their fill value (one notice at the end) instead of refusing them. */
  allowMissingChunks?: boolean;
  /** Lines for the user (the CLI prints them on stderr): which recorded options the segmentation uses. */
  notice?: (message: string) => void;
}

/** P(membrane) of a map slice of `polarity`, refusing values outside [0, 1] with the file and slice named. */
function membraneProbability(s: Slice, polarity: MapPolarity, path: string): Float32Array {
  const p = toFloat32(s.data);
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    if (!(v >= 0 && v <= 1)) {
      throw new EmsegIoError('invalid-data', path, `slice ${s.index} pixel ${i} is ${v}; a probability map holds values in [0, 1]`);
    }
    p[i] = toMembrane(v, polarity);
  }
  return p;
}

/**
 * Labels are 32-bit: one multi-page .tif, or a folder of .tif slices (a folder path, or any path without .tif); a .png
 * path or an OME-Zarr one (runVolumeSegment's) is refused naming both (io/outputs.ts).
 */
export function labelOutputFormat(out: string): OutputFormat {
  return labelStackOutput(out).kind;
}

/** Opens raw images (for the pictures) as a volume of the maps' shape, or refuses them naming both. */
async function openImages(o: SegmentJob, maps: VolumeReader): Promise<VolumeReader | undefined> {
  if (!o.images) return undefined;
  const images = await openVolume(o.images, { allowMissingChunks: o.allowMissingChunks, stream: true });
  if (images.shape.some((v, a) => v !== maps.shape[a])) {
    const [d, h, w] = images.shape;
    await images.close();
    throw new EmsegIoError('mismatch', o.images, `${d} sections of ${w}x${h} do not match the maps' ` +
      `${maps.shape[0]} of ${maps.shape[2]}x${maps.shape[1]} (${o.pred})`);
  }
  return images;
}

/** Closes a reader, first telling the user of absent chunks it read as the fill value. */
async function closeReader(reader: VolumeReader | undefined, notice?: (line: string) => void): Promise<void> {
  if (!reader) return;
  const missing = missingChunksNotice(reader);
  if (missing) notice?.(missing);
  await reader.close();
}

/**
 * Segments every section of a map volume (a stack, HDF5, OME-Zarr, a big TIFF), read section by section and whole;
 * writes a label stack (uint32, 1..n per section) and optional pictures.
 */
export async function runSegment(o: SegmentJob, progress: ProgressFactory = silentProgress): Promise<{ written: string[]; segments: number[] }> {
  const format = labelOutputFormat(o.out);
  if (o.pictures && format === 'tiff-folder' && resolve(o.pictures) === resolve(o.out)) {
    // Two outputs in one folder would each keep its own manifest and disown the other's files.
    throw new EmsegError('invalid-option', '--pictures', `is the label folder ${o.out}; give the pictures their own folder`);
  }
  const maps = await openVolume(o.pred, { allowMissingChunks: o.allowMissingChunks, stream: true });
  try {
    return await segmentSections(o, format, maps, progress);
  } finally {
    await closeReader(maps, o.notice);
  }
}

async function segmentSections(o: SegmentJob, format: OutputFormat, maps: VolumeReader, progress: ProgressFactory):
  Promise<{ written: string[]; segments: number[] }> {
  const { attributes } = maps; // what emseg predict recorded in the maps (a TIFF's description, a volume's attributes)
  // A raw image segments into noise with no error: refused by its values (sampled sections, read once more).
  if (!o.predIsMap && !recordedAsMap(attributes)) (await mapSpread(maps)).check(o.pred);
  const source = volumeSource(maps);
  const voxelSize = chooseVoxelSize(maps.voxelSize, { voxelSize: o.voxelSize, unit: o.unit }, source, o.notice);
  const options = mapSegmentOptions(attributes, source, o.options, o.notice);
  const polarity = decideMapPolarity(attributes, source, { given: flagPolarity(o.membraneProb) });
  const images = await openImages(o, maps);
  try {
    return await writeLabels(o, format, { maps, images, voxelSize, options, polarity }, progress);
  } finally {
    await closeReader(images, o.notice);
  }
}

interface LabelsJob {
  maps: VolumeReader;
  images: VolumeReader | undefined;
  voxelSize: VoxelSize | undefined;
  options: SegmentOptions;
  /** What the maps' values mean (flag, record, else ISBI: image/map-meaning.ts). */
  polarity: MapPolarity;
}

/** The pictures folder, the segment counts and the bar: what each section's segmentation also feeds. */
interface SectionSinks {
  pictures: FolderOutput | undefined;
  segments: number[];
  bar: ReturnType<ProgressFactory>;
}

/**
 * One block task per section, run by the engine (engine/ordered.ts): the next section is read while one is
 * segmented and written; the labels go to the writer in order.
 */
function sectionTask(o: SegmentJob, job: LabelsJob, mapSlices: AsyncGenerator<Slice>, raw: AsyncGenerator<Slice> | undefined,
  sinks: SectionSinks): BlockTask<{ s: Slice; image?: Slice }, SliceLike<Uint32Array>> {
  const plan = planBlocks(job.maps.shape, [1, job.maps.shape[1], job.maps.shape[2]]);
  const readMap = sectionReader(mapSlices, (s) => s.index, o.pred);
  return {
    name: 'segment', plan, markers: memoryMarkers(plan, o.out), upstream: [],
    async read(b) {
      const s = await readMap(b);
      return { s, image: raw ? (await raw.next()).value as Slice : undefined };
    },
    async compute(_b, { s, image }) {
      const { labels, count } = segmentSection(membraneProbability(s, job.polarity, o.pred), s.height, s.width, job.options);
      sinks.segments.push(count);
      if (sinks.pictures) {
        const picture = segmentationPicture(labels, s.height, s.width, image && toFloat32(image.data));
        await sinks.pictures.add(`${String(s.index).padStart(4, '0')}.png`, encodeRgbaPng(picture));
      }
      sinks.bar.update(sinks.segments.length, { section: s.index });
      return { width: s.width, height: s.height, data: new Uint32Array(labels.buffer, labels.byteOffset, labels.length) };
    },
    write: async () => [],
  };
}

/** Segments the maps section by section into the label stack (and the pictures, over the images). */
async function writeLabels(o: SegmentJob, format: OutputFormat, job: LabelsJob, progress: ProgressFactory): Promise<{ written: string[]; segments: number[] }> {
  const { maps, images, voxelSize } = job;
  const inputs = [...volumeInputs(maps, o.pred), ...(images ? volumeInputs(images, o.images!) : [])];
  const pictures = o.pictures ? FolderOutput.open(o.pictures, outputGuard(o.overwrite, inputs)) : undefined;
  const raw = images && volumeSlices(images);
  const mapSlices = volumeSlices(maps);
  const sinks: SectionSinks = { pictures, segments: [], bar: progress('segment', maps.shape[0], 'section {section}') };
  try {
    const task = sectionTask(o, job, mapSlices, raw, sinks);
    const written = await runInOrder(task, (labelled) => writeStack(o.out, labelled, { format, overwrite: o.overwrite, inputs, voxelSize }));
    await pictures?.commit();
    return { written, segments: sinks.segments };
  } catch (err) {
    await pictures?.abort();
    throw err;
  } finally {
    await mapSlices.return(undefined);
    await raw?.return(undefined);
    sinks.bar.stop();
  }
}
