import { InvalidArgumentError, type Command } from 'commander';
import { parseVec3 } from '../io/formats/volume.js';
import { runSegment } from '../pipeline/segment.js';
import { NEURON_DEFAULTS as N, NEURON_METHODS, SEGMENT_DEFAULTS as S } from '../pipeline/defaults.js';
import { runNeuronSegment, type NeuronSegmentJob } from '../pipeline/neurons.js';
import { EmsegError } from '../errors.js';
import type { SegmentOptions } from '../segment/index.js';
import { ALLOW_MISSING_CHUNKS, JSON_FLAG, PRED_IS_MAP_HELP, addVoxelSizeOptions, nonNegativeNumber, positiveInt, printResult } from './options.js';
import { barFactory } from './progress.js';
import { parseShard } from '../pipeline/blocks.js';
import { DEFAULT_SEGMENT_BLOCK_EDGE, DEFAULT_SEGMENT_HALO } from '../pipeline/volume-segment.js';
import { labelsOutput } from '../io/outputs.js';
import { refuseBlockwiseFlags, reportFailures, segmentVolume } from './volume.js';
import type { TaskOutcome } from '../pipeline/engine/run.js';

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

/** Flags of `emseg segment --method` (3-D neurons); `emseg submit segment` takes them too (blockwise only). */
export function addNeuronOptions(cmd: Command): Command {
  return cmd
    .option('--method <name>', `3-D neurons into an OME-Zarr labels image: ${NEURON_METHODS.join(', ')}, or auto (the method tuned for the model the maps name) `
      + '(--pred: affinities, an OME-Zarr map with a channel axis and its channels\' offsets recorded, for the first two; a membrane map for link); '
      + 'the whole volume in one piece, or with --block (watershed-agglomerate) block by block, --halo voxels of context along z, y and x '
      + '(resumable: rerun the same command; --shard i/n, --wait, --restart; emseg submit segment --method); '
      + `thresholds not given as flags come from the model's meta.json "segment_neurons" (emseg tune-segment --model-dir) when the maps name one model`)
    .option('--merge-affinity <p>', N.mergeAffinity.help, probability)
    .option('--seed-boundary <p>', N.seedBoundary.help, probability)
    .option('--min-overlap <f>', N.minOverlap.help, probability)
    .option('--ids <type>', N.ids.help);
}

const NEURON_ONLY = ['mergeAffinity', 'seedBoundary', 'minOverlap', 'ids'] as const;
const NOT_WITH_METHOD = ['foreignImage', 'images', 'pictures'] as const;
/** Flags of the resumable blockwise run only (--method watershed-agglomerate --block). */
const BLOCKWISE_ONLY = ['shard', 'restart', 'wait'] as const;

/** Refuses flags that the chosen path would ignore, naming the first one. */
export function checkMethodFlags(o: Record<string, unknown>): void {
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (o.method === undefined) {
    const given = NEURON_ONLY.find((k) => o[k] !== undefined);
    if (given) throw new EmsegError('invalid-option', flag(given), 'is an option of the 3-D neuron methods; give --method too');
    return;
  }
  const given = NOT_WITH_METHOD.find((k) => o[k] !== undefined);
  if (given) throw new EmsegError('invalid-option', flag(given), `is not used by --method ${String(o.method)}`);
  const blockwise = BLOCKWISE_ONLY.find((k) => o[k] !== undefined);
  if (blockwise && o.block === undefined) throw new EmsegError('invalid-option', flag(blockwise), `is for blockwise runs: give --block too (--method watershed-agglomerate); the whole-volume run is one piece`);
}

/** The neuron job of the parsed flags (`emseg segment --method`, `emseg submit segment --method`). */
export function neuronJobFrom(o: Record<string, unknown>, given: Partial<SegmentOptions>, command = 'segment'): NeuronSegmentJob {
  if (!labelsOutput(o.out as string).blockwise) throw new EmsegError('invalid-option', '--out', `--method ${String(o.method)} writes an OME-Zarr labels image: give neurons.zarr`);
  return { pred: o.pred as string, out: o.out as string, method: o.method as NeuronSegmentJob['method'],
    mergeAffinity: o.mergeAffinity as number | undefined, seedBoundary: o.seedBoundary as number | undefined, minOverlap: o.minOverlap as number | undefined,
    options: given, membraneProb: o.membraneProb as boolean | undefined, predIsMap: (o.predIsMap as boolean | undefined) ?? false,
    overwrite: (o.overwrite as boolean | undefined) ?? false, allowMissingChunks: (o.allowMissingChunks as boolean | undefined) ?? false,
    voxelSize: o.voxelSize as NeuronSegmentJob['voxelSize'], unit: o.unit as string | undefined,
    // --block: watershed-agglomerate block by block; --halo: its context, the same number of voxels along z, y and x.
    block: o.block as NeuronSegmentJob['block'], halo: o.halo === undefined ? undefined : [o.halo as number, o.halo as number, o.halo as number],
    ids: o.ids as NeuronSegmentJob['ids'], shard: o.shard as NeuronSegmentJob['shard'], restart: (o.restart as boolean | undefined) ?? false, wait: (o.wait as boolean | undefined) ?? false,
    notice: (line) => process.stderr.write(`emseg ${command}: ${line}\n`) };
}

async function segmentNeurons(o: Record<string, unknown>, given: Partial<SegmentOptions>): Promise<void> {
  const job = neuronJobFrom(o, given);
  const r = await runNeuronSegment(job, barFactory((o.quiet as boolean | undefined) ?? false));
  const b = r.blockwise;
  if (!b) {
    printResult(o.json as boolean | undefined, 'segment', `${r.neurons} neurons (--method ${r.method}, ${r.shape.join(' x ')} voxels); wrote ${r.out}\n`,
      { out: r.out, method: r.method, neurons: r.neurons, shape: r.shape });
    return;
  }
  const pass = (t: TaskOutcome) => ({ computed: t.computed, skipped: t.skipped, failed: t.failed.length });
  const passes = Object.entries(b.tasks).map(([name, t]) => `${name}: computed ${t.computed} skipped ${t.skipped} failed ${t.failed.length}`).join('; ');
  const state = b.complete ? `${r.neurons} neurons (--method ${r.method}, ${r.shape.join(' x ')} voxels); wrote ${r.out}`
    : b.waiting ? `waiting: ${b.waiting} needs the other shards' blocks of the task before it; rerun this command once every shard has run (or use --wait)`
      : 'the output is not complete yet';
  printResult(o.json as boolean | undefined, 'segment', `${passes}; of ${b.plan.count} blocks; ${state}\n`,
    { out: r.out, method: r.method, shape: r.shape, blocks: b.plan.count, complete: b.complete, ...(b.waiting ? { waiting: b.waiting } : {}),
      ...(b.neurons !== undefined ? { neurons: b.neurons, fragments: b.fragments } : {}),
      fragments_pass: pass(b.tasks.fragments), edges: pass(b.tasks.edges), relabel: pass(b.tasks.relabel), failed: b.failed.length });
  reportFailures(r.out, b.failed);
}

export function registerSegment(program: Command): void {
  addNeuronOptions(addSegmentCommandOptions(program
    .command('segment')
    .description('cells from membrane maps: seeded watershed + merging across weak boundaries; label stack and pictures')))
    .option(...JSON_FLAG)
    .action(async (o, command: Command) => {
      // Maps may carry the model's tuned options: only the flags given on the command line override them.
      const given = givenSegmentOptions(o, command);
      checkMethodFlags(o);
      if (o.method !== undefined) return segmentNeurons(o, given);
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
