import { InvalidArgumentError, type Command } from 'commander';
import { parseVec3 } from '../io/formats/volume.js';
import { runSegment } from '../pipeline/segment.js';
import { SEGMENT_DEFAULTS as S } from '../pipeline/defaults.js';
import type { SegmentOptions } from '../segment/index.js';
import { ALLOW_MISSING_CHUNKS, JSON_FLAG, PRED_IS_MAP_HELP, addVoxelSizeOptions, nonNegativeNumber, positiveInt, printResult } from './options.js';
import { barFactory } from './progress.js';
import { parseShard } from '../pipeline/blocks.js';
import { DEFAULT_SEGMENT_BLOCK_EDGE, DEFAULT_SEGMENT_HALO } from '../pipeline/volume-segment.js';
import { labelsOutput } from '../io/outputs.js';
import { refuseBlockwiseFlags, segmentVolume } from './volume.js';

/** The watershed options shared by `emseg segment` and `emseg predict --close-gaps`. */
export function addSegmentOptions(command: Command): Command {
  return command
    .option('--sigma <px>', S.sigma.help, nonNegativeNumber, S.sigma.value)
    .option('--seed-threshold <p>', S.seedThreshold.help, probability, S.seedThreshold.value)
    .option('--min-seed-area <px>', S.minSeedArea.help, positiveInt, S.minSeedArea.value)
    .option('--merge-threshold <p>', S.mergeThreshold.help, probability, S.mergeThreshold.value)
    .option('--extra-seed-threshold <p>', S.extraSeedThreshold.help, probability, S.extraSeedThreshold.value);
}

export function segmentOptionsFrom(o: Record<string, unknown>): SegmentOptions {
  return { sigma: o.sigma as number, seedThreshold: o.seedThreshold as number, minSeedArea: o.minSeedArea as number,
    mergeThreshold: o.mergeThreshold as number, extraSeedThreshold: o.extraSeedThreshold as number };
}

/** Only the watershed options set on the command line (not commander's defaults): `predict --close-gaps` takes
 *  the rest from the model's tuned record (pipeline/close-gaps.ts). */
export function givenSegmentOptions(o: Record<string, unknown>, command: Command): Partial<SegmentOptions> {
  return Object.fromEntries(Object.entries(segmentOptionsFrom(o)).filter(([key]) => command.getOptionValueSource(key) !== 'default'));
}

function probability(value: string): number {
  const p = nonNegativeNumber(value);
  if (p > 1) throw new InvalidArgumentError(`expected a probability in [0, 1], got "${value}"`);
  return p;
}

/** The flags of `emseg segment`; `emseg submit segment` takes the same ones. */
export function addSegmentCommandOptions(cmd: Command): Command {
  return addVoxelSizeOptions(addSegmentOptions(cmd
    .requiredOption('--pred <path>', 'membrane maps (ISBI format: 1 = non-membrane), any volume: a stack (folder, glob, TIFF), maps.zarr, maps.h5:/pred; emseg predict\'s TIFF and .zarr maps carry their polarity and the model\'s tuned watershed options (used for the flags not given)')
    .requiredOption('--out <path>', 'label stack: a .tif file (multi-page uint32), a folder of .tif slices, or an OME-Zarr labels image (blockwise, stitched): cells.zarr, or IMAGE.zarr/labels/NAME inside an OME-Zarr image')
    .option('--membrane-prob', 'the maps hold P(membrane) instead of the ISBI polarity (default: the polarity the maps record, as emseg predict writes it; else ISBI)')
    .option('--pred-is-map', PRED_IS_MAP_HELP)
    .option('--images <path>', 'raw sections to draw the pictures over')
    .option('--pictures <dir>', 'write one colour PNG per section here')
    .option('--block <z,y,x>', `.zarr outputs: block (and label chunk) size (default 1,${DEFAULT_SEGMENT_BLOCK_EDGE},${DEFAULT_SEGMENT_BLOCK_EDGE})`, (t: string) => parseVec3(t, '--block'))
    .option('--halo <px>', `.zarr outputs: pixels of context around each block in y and x (default ${DEFAULT_SEGMENT_HALO})`, positiveInt)
    .option('--shard <i/n>', '.zarr outputs: only shard i of n (0-based) of the per-block passes; rerun every shard once all have segmented', (t: string) => parseShard(t))
    .option('--restart', '.zarr outputs: discard the progress of a run with another layout, maps or parameters')
    .option('--wait', '.zarr outputs with --shard: after segmenting, wait for the other shards to segment theirs, then relabel (shards started together)')
    .option('--foreign-image', 'IMAGE.zarr/labels/NAME outputs: allow adding labels to an OME-Zarr image emseg did not write')
    .option(...ALLOW_MISSING_CHUNKS)))
    .option('--overwrite', 'replace outputs emseg wrote earlier (never inputs, links or special files)')
    .option('--quiet', 'no progress bar');
}

export function registerSegment(program: Command): void {
  addSegmentCommandOptions(program
    .command('segment')
    .description('cells from membrane maps: seeded watershed + merging across weak boundaries; label stack and pictures'))
    .option(...JSON_FLAG)
    .action(async (o, command: Command) => {
      // Maps may carry the model's tuned options: only the flags given on the command line override them.
      const given = givenSegmentOptions(o, command);
      // The output decides the path, once: OME-Zarr labels blockwise, a label stack section by section.
      const target = labelsOutput(o.out);
      if (target.blockwise) return segmentVolume(o, given);
      refuseBlockwiseFlags(o, command, target);
      const { written, segments } = await runSegment({ pred: o.pred, out: o.out, membraneProb: o.membraneProb,
        images: o.images, pictures: o.pictures, options: given, overwrite: o.overwrite ?? false, predIsMap: o.predIsMap ?? false,
        voxelSize: o.voxelSize, unit: o.unit, allowMissingChunks: o.allowMissingChunks ?? false,
        notice: (line) => process.stderr.write(`${line}\n`) }, barFactory(o.quiet ?? false));
      printResult(o.json, 'segment', `${segments.length} sections, ${segments.join(', ')} segments; wrote ${written.length === 1 ? written[0] : `${written.length} files`}` +
        `${o.pictures ? ` and pictures in ${o.pictures}` : ''}\n`, { out: o.out, written, segments, ...(o.pictures ? { pictures: o.pictures } : {}) });
    });
}
