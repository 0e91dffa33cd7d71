import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { openStack, toFloat32, writeStack, type Slice, type SliceLike } from '../io/index.js';
import { encodeRgbaPng } from '../report/png.js';
import { DEFAULT_SEGMENT_OPTIONS, segmentSection, segmentationPicture, type SegmentOptions } from '../segment/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { nonNegativeNumber, positiveInt } from './options.js';
import { progressBar } from './progress.js';

/** The watershed options shared by `emseg segment` and `emseg predict --close-gaps`. */
export function addSegmentOptions(command: Command): Command {
  const d = DEFAULT_SEGMENT_OPTIONS;
  return command
    .option('--sigma <px>', 'Gaussian smoothing of the map before the watershed', nonNegativeNumber, d.sigma)
    .option('--seed-threshold <p>', 'seeds where the smoothed P(membrane) is below this', probability, d.seedThreshold)
    .option('--min-seed-area <px>', 'smaller seed regions are dropped', positiveInt, d.minSeedArea)
    .option('--merge-threshold <p>', 'merge neighbours whose boundary (mean of each pixel pair\'s higher P(membrane)) is below this (0: never)', probability, d.mergeThreshold);
}

export function segmentOptionsFrom(o: Record<string, unknown>): SegmentOptions {
  return { sigma: o.sigma as number, seedThreshold: o.seedThreshold as number, minSeedArea: o.minSeedArea as number,
    mergeThreshold: o.mergeThreshold as number };
}

function probability(value: string): number {
  const p = nonNegativeNumber(value);
  if (p > 1) throw new InvalidArgumentError(`expected a probability in [0, 1], got "${value}"`);
  return p;
}

export interface SegmentCliOptions {
  pred: string;
  out: string;
  /** The maps hold P(membrane) rather than the ISBI polarity (1 = non-membrane). */
  membraneProb: boolean;
  /** Raw EM sections to draw the pictures over. */
  images?: string;
  /** Folder for one colour picture per section. */
  pictures?: string;
  options: SegmentOptions;
  overwrite: boolean;
  quiet: boolean;
}

/** P(membrane) of a map slice, refusing values outside [0, 1] with the file and slice named. */
function membraneProbability(s: Slice, membraneProb: boolean, path: string): Float32Array {
  const p = toFloat32(s.data);
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    if (!(v >= 0 && v <= 1)) throw new Error(`${path}: slice ${s.index} pixel ${i} is ${v}; a probability map holds values in [0, 1]`);
    if (!membraneProb) p[i] = 1 - v;
  }
  return p;
}

/** Segments every section of a map stack; writes a label stack (uint32, 1..n per section) and optional pictures. */
export async function runSegment(o: SegmentCliOptions): Promise<{ written: string[]; segments: number[] }> {
  if (o.pictures && !o.overwrite && existsSync(o.pictures)) {
    throw new Error(`${o.pictures} exists; pass --overwrite to replace its pictures`);
  }
  const maps = await openStack(o.pred);
  const images = o.images ? await openStack(o.images) : undefined;
  if (images && (images.width !== maps.width || images.height !== maps.height || images.depth !== maps.depth)) {
    throw new Error(`${o.images}: ${images.depth} sections of ${images.width}x${images.height} do not match the maps' ` +
      `${maps.depth} of ${maps.width}x${maps.height} (${o.pred})`);
  }
  const raw = images?.slices();
  const segments: number[] = [];
  const bar = progressBar('segment', maps.depth, 'section {section}', o.quiet);
  async function* labelled(): AsyncGenerator<SliceLike<Uint32Array>> {
    for await (const s of maps.slices()) {
      const image = raw ? (await raw.next()).value as Slice : undefined;
      const { labels, count } = segmentSection(membraneProbability(s, o.membraneProb, o.pred), s.height, s.width, o.options);
      segments.push(count);
      if (o.pictures) {
        const picture = segmentationPicture(labels, s.height, s.width, image && toFloat32(image.data));
        writeFileAtomic(join(o.pictures, `${String(s.index).padStart(4, '0')}.png`), encodeRgbaPng(picture));
      }
      bar.update(segments.length, { section: s.index });
      yield { width: s.width, height: s.height, data: new Uint32Array(labels.buffer, labels.byteOffset, labels.length) };
    }
  }
  try {
    return { written: await writeStack(o.out, labelled(), { format: o.out.match(/\.tiff?$/i) ? 'tiff' : 'tiff-folder',
      overwrite: o.overwrite }), segments };
  } finally {
    bar.stop();
  }
}

export function registerSegment(program: Command): void {
  addSegmentOptions(program
    .command('segment')
    .description('cells from membrane maps: seeded watershed + merging across weak boundaries; label stack and pictures')
    .requiredOption('--pred <path>', 'membrane maps (ISBI format: 1 = non-membrane), e.g. from emseg predict')
    .requiredOption('--out <path>', 'label stack: a .tif file (multi-page uint32) or a folder of .tif slices')
    .option('--membrane-prob', 'the maps hold P(membrane) instead of the ISBI polarity')
    .option('--images <path>', 'raw sections to draw the pictures over')
    .option('--pictures <dir>', 'write one colour PNG per section here'))
    .option('--overwrite', 'replace existing outputs')
    .option('--quiet', 'no progress bar')
    .action(async (o) => {
      const { written, segments } = await runSegment({ pred: o.pred, out: o.out, membraneProb: o.membraneProb ?? false,
        images: o.images, pictures: o.pictures, options: segmentOptionsFrom(o), overwrite: o.overwrite ?? false,
        quiet: o.quiet ?? false });
      process.stdout.write(`${segments.length} sections, ${segments.join(', ')} segments; wrote ${written.length === 1 ? written[0] : `${written.length} files`}` +
        `${o.pictures ? ` and pictures in ${o.pictures}` : ''}\n`);
    });
}
