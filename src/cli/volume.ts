/** Flags and reporting of blockwise (OME-Zarr) predict and segment. */
import type { Profile } from '../util/profile.js';
import type { Command } from 'commander';
import { EmsegError } from '../errors.js';
import { parseVec3, type Vec3 } from '../io/formats/volume.js';
import { AUTO_TILE, type TileSize } from '../infer/tile-choice.js';
import { parseShard } from '../pipeline/blocks.js';
import type { BlockFailure } from '../pipeline/markers.js';
import type { TaskOutcome } from '../pipeline/engine/run.js';
import { runVolumePredict, type MapDtype, type VolumePredictJob } from '../pipeline/volume-predict.js';
import { runVolumeSegment, type VolumeSegmentJob } from '../pipeline/volume-segment.js';
import type { SegmentOptions } from '../segment/index.js';
import type { OutputTarget } from '../io/outputs.js';
import { ALLOW_MISSING_CHUNKS, positiveInt, printResult } from './options.js';
import { PREDICT_DEFAULTS } from '../pipeline/defaults.js';
import { barFactory } from './progress.js';

const MAP_DTYPES: readonly MapDtype[] = ['uint8', 'float32'];

function mapDtype(text: string): MapDtype {
  if (!(MAP_DTYPES as readonly string[]).includes(text)) throw new EmsegError('invalid-option', '--dtype', `must be uint8 or float32, got "${text}"`);
  return text as MapDtype;
}

function scaleLevel(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new EmsegError('invalid-option', '--scale', `must be a level 0, 1, ... (got "${text}")`);
  return n;
}

/** --tile: auto, one edge N (2-d networks; N per axis for 3-d ones) or z,y,x (3-d networks only). */
export function tileSize(text: string): TileSize | Vec3 {
  if (text === AUTO_TILE) return AUTO_TILE;
  return text.includes(',') ? parseVec3(text, '--tile') : positiveInt(text);
}

export function addVolumeOptions(cmd: Command): Command {
  return cmd
    .option('--block <z,y,x>', '.zarr outputs: block (and output chunk) size; y, x multiples of the network stride (default 1,1024,1024); '
      + '3-d networks: rounded up to whole tiles (default 64,128,128)',
      (t: string) => parseVec3(t, '--block'))
    .option('--shard <i/n>', '.zarr outputs: compute only shard i of n (0-based; e.g. $SLURM_ARRAY_TASK_ID/n)', (t: string) => parseShard(t))
    .option('--restart', '.zarr outputs: discard the done markers of a run with another layout, model or input')
    .option('--scale <level>', 'multiscale OME-Zarr input: level to read (0 = full resolution)', scaleLevel)
    .option(...ALLOW_MISSING_CHUNKS)
    .option('--dtype <type>', '.zarr outputs: uint8 or float32 maps (predict), default uint8', mapDtype);
}

/**
 * Options of predict and segment that only blockwise (OME-Zarr) outputs use (commander's attribute names), with
 * what they need. Input options (--scale, --allow-missing-chunks) apply to every output.
 */
const BLOCKWISE_ONLY: Record<string, (t: OutputTarget) => string> = {
  block: () => 'is written in one piece',
  shard: () => 'is written in one piece',
  restart: () => 'is written in one piece, never resumed',
  halo: () => 'is written in one piece',
  wait: () => 'is written in one piece',
  dtype: (t) => `holds ${t.holds.includes('float32') ? 'float32' : '8-bit'} maps`,
  foreignImage: () => 'is not labels inside an OME-Zarr image',
};

/**
 * An output written in one piece would ignore the blockwise-only flags: refuses the first one given instead, naming
 * it and both formats (`target`, from the output registry, and the OME-Zarr output the flag needs).
 */
export function refuseBlockwiseFlags(o: Record<string, unknown>, command: Command, target: OutputTarget): void {
  if (target.blockwise) return;
  const given = command.options.find((opt) => opt.attributeName() in BLOCKWISE_ONLY && o[opt.attributeName()] !== undefined);
  if (given) {
    const flag = given.long ?? given.flags;
    throw new EmsegError('invalid-option', flag, `${target.name} ${BLOCKWISE_ONLY[given.attributeName()]!(target)}; ${flag} needs an OME-Zarr output (x.zarr)`);
  }
}

/** One line per failed block (coordinates and error), then an error that makes the command exit non-zero. */
export function reportFailures(out: string, failed: readonly BlockFailure[]): void {
  if (failed.length === 0) return;
  for (const f of failed) {
    process.stderr.write(`block [${f.grid.join(',')}] voxels [${f.write.start.join(',')}]..[${f.write.end.join(',')}] failed after ${f.attempts} attempts: ${f.message}\n`);
  }
  throw new EmsegError('blocks-failed', out, `${failed.length} block(s) failed and are not marked done; fix the cause and rerun the same command to compute them`);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
export function volumeJobFrom(o: any, command = 'predict', tileGiven = true): VolumePredictJob {
  if (o.closeGaps) throw new EmsegError('invalid-option', '--close-gaps', 'is not available for blockwise (.zarr) outputs; run emseg segment on the maps');
  // A 3-d tile only from a --tile the user gave: the 2-d default edge would be far too large a 3-d tile.
  // 'auto' chooses 2-d tiles only; 3-d networks then keep their default tile.
  const edge = typeof o.tile === 'number';
  const volumeTile: Vec3 | undefined = !tileGiven || o.tile === AUTO_TILE ? undefined : edge ? [o.tile, o.tile, o.tile] : o.tile;
  return { models: o.model, input: o.input, out: o.out, membraneProb: o.membraneProb ?? false,
    tta: o.tta ?? false, bf16: o.bf16 ?? false, tile: edge ? o.tile : PREDICT_DEFAULTS.tile.value, volumeTile, threads: o.threads, backend: o.backend, dtype: o.dtype ?? 'uint8',
    block: o.block, shard: o.shard, restart: o.restart ?? false, overwrite: o.overwrite ?? false, intensity: o.intensity,
    toGrey: o.toGrey ?? false, scale: o.scale, allowMissingChunks: o.allowMissingChunks ?? false, voxelSize: o.voxelSize, unit: o.unit,
    notice: (m) => process.stderr.write(`emseg ${command}: ${m}\n`) };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
export async function predictVolume(o: any, profile?: Profile, tileGiven = true): Promise<void> {
  const r = await runVolumePredict({ ...volumeJobFrom(o, 'predict', tileGiven), profile }, barFactory(o.quiet ?? false));
  const rate = r.seconds > 0 ? r.voxels / r.seconds : 0;
  printResult(o.json, 'predict', `computed ${r.computed} skipped ${r.skipped} failed ${r.failed.length} of ${r.plan.count} blocks` +
    ` (${(rate / 1e6).toFixed(2)} M voxels/s); ${r.complete ? `wrote ${r.out}` : 'the output is not complete yet'}\n`,
  { out: r.out, format: 'ome-zarr', models: o.model, blocks: r.plan.count, computed: r.computed, skipped: r.skipped,
    failed: r.failed.length, complete: r.complete, voxels: r.voxels, seconds: r.seconds });
  reportFailures(r.out, r.failed);
}

const passLine = (name: string, o: TaskOutcome) => `${name}: computed ${o.computed} skipped ${o.skipped} failed ${o.failed.length}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
export function volumeSegmentJobFrom(o: any, options: Partial<SegmentOptions>, command = 'segment'): VolumeSegmentJob {
  if (o.images || o.pictures) throw new EmsegError('invalid-option', o.pictures ? '--pictures' : '--images', 'pictures are drawn for stack outputs only; open the labels image in napari or Neuroglancer');
  return { pred: o.pred, out: o.out, membraneProb: o.membraneProb, predIsMap: o.predIsMap ?? false, options, block: o.block, halo: o.halo,
    notice: (line) => process.stderr.write(`emseg ${command}: ${line}\n`),
    overwrite: o.overwrite ?? false, shard: o.shard, restart: o.restart ?? false, foreignImage: o.foreignImage ?? false, wait: o.wait ?? false,
    allowMissingChunks: o.allowMissingChunks ?? false, voxelSize: o.voxelSize, unit: o.unit };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
export async function segmentVolume(o: any, options: Partial<SegmentOptions>): Promise<void> {
  const r = await runVolumeSegment(volumeSegmentJobFrom(o, options), barFactory(o.quiet ?? false));
  const stitch = r.stitch === 'waiting' ? 'stitch: waiting (pass 1 of other blocks is not done; rerun this command once every shard has segmented)'
    : `stitch: ${r.stitch} (${r.cells} cells, ${r.joined} joined across block borders)`;
  const pass = (t: TaskOutcome) => ({ computed: t.computed, skipped: t.skipped, failed: t.failed.length });
  printResult(o.json, 'segment', `${passLine('segment', r.segmented)}; ${stitch}; ${passLine('relabel', r.relabelled)}; of ${r.plan.count} blocks; ` +
    `${r.complete ? `wrote ${r.out}` : 'the output is not complete yet'}\n`, { out: r.out, format: 'ome-zarr', blocks: r.plan.count,
    segment: pass(r.segmented), stitch: r.stitch, relabel: pass(r.relabelled), complete: r.complete,
    ...(r.cells !== undefined ? { cells: r.cells, joined: r.joined } : {}), failed: r.failed.length });
  reportFailures(r.out, r.failed);
}
