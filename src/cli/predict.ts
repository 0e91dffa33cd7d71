import type { Command } from 'commander';
import { EmsegError } from '../errors.js';
import { COMMON_DEFAULTS as C, PREDICT_DEFAULTS as P } from '../pipeline/defaults.js';
import { mapsOutput, type StackFormat } from '../io/outputs.js';
import { runPredict } from '../pipeline/predict.js';
import { addVolumeOptions, predictVolume, refuseBlockwiseFlags, tileSize } from './volume.js';
import { INTENSITY_HELP } from '../image/intensity.js';
import { addVoxelSizeOptions, backendKind, intensityRule, JSON_FLAG, positiveInt, printResult } from './options.js';
import { barFactory } from './progress.js';
import { Profile } from '../util/profile.js';
import { formatBreakdown, predictBreakdown } from '../infer/profile.js';
import { addSegmentOptions, givenSegmentOptions } from './segment.js';

/** The flags of `emseg predict`; `emseg submit predict` takes the same ones. */
export function addPredictOptions(cmd: Command): Command {
  return addVolumeOptions(addVoxelSizeOptions(addSegmentOptions(cmd
    .requiredOption('--model <dirs...>', 'model directory (or ensemble directory); several = ensemble average')
    .requiredOption('--input <path>', 'any volume: an image stack (folder, glob, TIFF), vol.zarr/0, vol.h5:/raw, a big TIFF')
    .requiredOption('--out <path>', 'output: a .tif file (isbi, tiff), a folder (png-folder, tiff-folder), or an OME-Zarr (path ending .zarr: blockwise, resumable); a mismatch is refused')
    .option('--intensity <rule>', `${INTENSITY_HELP}. Default: the rule the model was trained with (models without a record: dtype, checked as auto)`, intensityRule)
    .option('--to-grey', 'reduce colour images to their luma (ITU-R BT.601; alpha ignored) instead of refusing them')
    .option('--format <f>', P.format.help, P.format.value)
    .option('--membrane-prob', 'with tiff/png outputs, write P(membrane) instead of ISBI polarity')
    .option('--tta', 'average the 8 rotations/flips (3-d networks: of the sections\' plane, affinity channels remapped; 8x the time)')
    .option('--close-gaps', 'draw the boundaries of `emseg segment` into the maps as membrane (watershed options below)')
    .option('--bf16', 'bfloat16 inference')
    .option('--tile <px>', `${P.tile.help}, 2-d networks; 3-d networks (.zarr outputs): z,y,x or one edge, default 64 per axis, at most the block`, tileSize, P.tile.value)
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--overwrite', 'replace outputs emseg wrote earlier (never inputs, links or special files)')
    .option('--profile', 'print where the time went (tile steps, network ops, the rest) on stderr at the end')
    .option('--quiet', 'no progress bar'))));
}

/** --int8 and --calibrate come together, for outputs predicted section by section (stack outputs). */
function int8Option(o: { int8?: boolean; calibrate?: string }, blockwise: boolean): { calibrate: string } | undefined {
  if (o.calibrate !== undefined && !o.int8) throw new EmsegError('invalid-option', '--calibrate', 'calibrates int8 prediction: give --int8 with it');
  if (!o.int8) return undefined;
  if (blockwise) throw new EmsegError('invalid-option', '--int8', 'int8 prediction writes stack outputs (TIFF, PNG/TIFF folders), not OME-Zarr');
  if (o.calibrate === undefined) throw new EmsegError('invalid-option', '--int8', 'needs --calibrate <images>: a few sections like the input to calibrate the int8 scales on');
  return { calibrate: o.calibrate };
}

export function registerPredict(program: Command): void {
  addPredictOptions(program
    .command('predict')
    .description('membrane maps for whole sections (dense fully convolutional evaluation, mirrored borders)'))
    // Not in addPredictOptions: queued predictions (emseg submit predict) run in float32 or bf16.
    .option('--int8', 'int8 convolutions (oneDNN, AVX-512 VNNI CPUs; stack outputs), calibrated on --calibrate; docs/MODELS.md')
    .option('--calibrate <images>', 'with --int8: a few sections like the input (any volume) to calibrate the int8 scales on')
    .option(...JSON_FLAG)
    .action(async (o, command: Command) => {
      // The output decides the path, once: OME-Zarr blockwise, every other kind section by section.
      const target = mapsOutput(o.out, o.format, command.getOptionValueSource('format') !== 'default');
      const profile = o.profile ? new Profile() : undefined;
      const t0 = performance.now();
      const report = () => {
        const wall = performance.now() - t0;
        if (profile) process.stderr.write(`emseg predict: profile\n${formatBreakdown(predictBreakdown(profile, wall), wall)}`);
      };
      const int8 = int8Option(o, target.blockwise);
      if (target.blockwise) {
        await predictVolume(o, profile, command.getOptionValueSource('tile') !== 'default');
        report();
        return;
      }
      refuseBlockwiseFlags(o, command, target);
      if (Array.isArray(o.tile)) throw new EmsegError('invalid-option', '--tile', `${o.tile.join(',')} is a 3-d tile (z,y,x), for 3-d networks writing an OME-Zarr (x.zarr)`);
      const written = await runPredict({ profile, models: o.model, input: o.input, out: o.out, format: target.kind as StackFormat,
        membraneProb: o.membraneProb ?? false, tta: o.tta ?? false,
        closeGaps: o.closeGaps ? givenSegmentOptions(o, command) : undefined, bf16: o.bf16 ?? false, int8, tile: o.tile,
        threads: o.threads, backend: o.backend, overwrite: o.overwrite ?? false, intensity: o.intensity, toGrey: o.toGrey ?? false,
        voxelSize: o.voxelSize, unit: o.unit, scale: o.scale, allowMissingChunks: o.allowMissingChunks ?? false,
        notice: (m) => process.stderr.write(`emseg predict: ${m}\n`) }, barFactory(o.quiet ?? false));
      report();
      printResult(o.json, 'predict', `wrote ${written.length === 1 ? written[0] : `${written.length} files`}\n`,
        { out: o.out, format: target.kind, models: o.model, written });
    });
}
