import { extname, resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { FolderOutput, checkOutputPath, descriptionAttributes, hasTiffExtension, isFolderPath, openStack, outputGuard, writeStack,
  type OutputFormat, type Slice } from '../io/index.js';
import { toFloat32, type SliceLike } from '../image/stack.js';
import { decideMapPolarity, flagPolarity, toMembrane, type MapPolarity } from '../image/map-meaning.js';
import { recordedAsMap, stackSpread } from '../io/plausibility.js';
import { encodeRgbaPng } from '../report/png.js';
import { segmentSection, segmentationPicture, type SegmentOptions } from '../segment/index.js';
import { mapSegmentOptions } from './close-gaps.js';
import { chooseVoxelSize } from '../io/voxel-size.js';
import { silentProgress, type ProgressFactory } from './progress.js';

export interface SegmentJob {
  pred: string;
  out: string;
  /**
   * The maps hold P(membrane) (true) or the ISBI polarity, 1 = non-membrane (false); default: the polarity the maps
   * record (emseg predict's TIFF maps do), else the ISBI polarity, as for map volumes (decideMapPolarity).
   */
  membraneProb?: boolean;
  /** Raw EM sections to draw the pictures over. */
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

/** Labels are 32-bit: one multi-page .tif, or a folder of .tif slices (a folder path, or any path without .tif). */
export function labelOutputFormat(out: string): OutputFormat {
  const folder = isFolderPath(out);
  if (!folder && extname(out).toLowerCase() === '.png') {
    throw new EmsegIoError('wrong-format', out, 'labels are 32-bit integers, which PNG cannot hold; give a .tif path (one ' +
      'multi-page file) or a folder path (one .tif per section)');
  }
  const format: OutputFormat = !folder && hasTiffExtension(out) ? 'tiff' : 'tiff-folder';
  checkOutputPath(out, format);
  return format;
}

/** Segments every section of a map stack; writes a label stack (uint32, 1..n per section) and optional pictures. */
export async function runSegment(o: SegmentJob, progress: ProgressFactory = silentProgress): Promise<{ written: string[]; segments: number[] }> {
  const format = labelOutputFormat(o.out);
  if (o.pictures && format === 'tiff-folder' && resolve(o.pictures) === resolve(o.out)) {
    // Two outputs in one folder would each keep its own manifest and disown the other's files.
    throw new EmsegError('invalid-option', '--pictures', `is the label folder ${o.out}; give the pictures their own folder`);
  }
  const maps = await openStack(o.pred);
  const attributes = descriptionAttributes(maps.description);
  const polarity = decideMapPolarity(attributes, maps.files[0]!, { given: flagPolarity(o.membraneProb) });
  // A raw image segments into noise with no error: refused by its values (the first sections, read once more).
  if (!o.predIsMap && !recordedAsMap(attributes)) (await stackSpread(maps)).check(o.pred);
  const voxelSize = chooseVoxelSize(maps.voxelSize, { voxelSize: o.voxelSize, unit: o.unit }, maps.files[0]!, o.notice);
  const options = mapSegmentOptions(attributes, maps.files[0]!, o.options, o.notice);
  const images = o.images ? await openStack(o.images) : undefined;
  if (images && (images.width !== maps.width || images.height !== maps.height || images.depth !== maps.depth)) {
    throw new EmsegIoError('mismatch', o.images!, `${images.depth} sections of ${images.width}x${images.height} do not match the maps' ` +
      `${maps.depth} of ${maps.width}x${maps.height} (${o.pred})`);
  }
  const inputs = [...maps.files, ...(images?.files ?? [])];
  const pictures = o.pictures ? FolderOutput.open(o.pictures, outputGuard(o.overwrite, inputs)) : undefined;
  const raw = images?.slices();
  const segments: number[] = [];
  const bar = progress('segment', maps.depth, 'section {section}');
  async function* labelled(): AsyncGenerator<SliceLike<Uint32Array>> {
    for await (const s of maps.slices()) {
      const image = raw ? (await raw.next()).value as Slice : undefined;
      const { labels, count } = segmentSection(membraneProbability(s, polarity, o.pred), s.height, s.width, options);
      segments.push(count);
      if (pictures) {
        const picture = segmentationPicture(labels, s.height, s.width, image && toFloat32(image.data));
        await pictures.add(`${String(s.index).padStart(4, '0')}.png`, encodeRgbaPng(picture));
      }
      bar.update(segments.length, { section: s.index });
      yield { width: s.width, height: s.height, data: new Uint32Array(labels.buffer, labels.byteOffset, labels.length) };
    }
  }
  try {
    const written = await writeStack(o.out, labelled(), { format, overwrite: o.overwrite, inputs, voxelSize });
    await pictures?.commit();
    return { written, segments };
  } catch (err) {
    await pictures?.abort();
    throw err;
  } finally {
    bar.stop();
  }
}
