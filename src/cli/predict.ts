import type { Command } from 'commander';
import { EmsegError } from '../errors.js';
import { runPredict } from '../pipeline/predict.js';
import { backendKind, positiveInt } from './options.js';
import { barFactory } from './progress.js';
import { addSegmentOptions, segmentOptionsFrom } from './segment.js';

export function registerPredict(program: Command): void {
  addSegmentOptions(program
    .command('predict')
    .description('membrane maps for whole sections (dense fully convolutional evaluation, mirrored borders)')
    .requiredOption('--model <dirs...>', 'model directory (or ensemble directory); several = ensemble average')
    .requiredOption('--input <path>', 'image stack: folder, glob or TIFF')
    .requiredOption('--out <path>', 'output: a .tif file (isbi, tiff) or a folder (png-folder, tiff-folder); a mismatch is refused')
    .option('--format <f>', 'isbi (multi-page float TIFF, 1 = non-membrane), tiff, png-folder, tiff-folder', 'isbi')
    .option('--membrane-prob', 'with tiff/png outputs, write P(membrane) instead of ISBI polarity')
    .option('--tta', 'average the 8 rotations/flips')
    .option('--close-gaps', 'draw the boundaries of `emseg segment` into the maps as membrane (watershed options below)')
    .option('--bf16', 'bfloat16 inference')
    .option('--tile <px>', 'output tile edge (bounds memory)', positiveInt, 512)
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', 'auto, onednn or reference', backendKind, 'auto')
    .option('--overwrite', 'replace outputs emseg wrote earlier (never inputs, links or special files)')
    .option('--quiet', 'no progress bar'))
    .action(async (o) => {
      if (!['isbi', 'tiff', 'png-folder', 'tiff-folder'].includes(o.format)) {
        throw new EmsegError('invalid-option', '--format', `must be isbi, tiff, png-folder or tiff-folder (got "${o.format}")`);
      }
      const written = await runPredict({ models: o.model, input: o.input, out: o.out, format: o.format,
        membraneProb: o.membraneProb ?? false, tta: o.tta ?? false,
        closeGaps: o.closeGaps ? segmentOptionsFrom(o) : undefined, bf16: o.bf16 ?? false, tile: o.tile,
        threads: o.threads, backend: o.backend, overwrite: o.overwrite ?? false }, barFactory(o.quiet ?? false));
      process.stdout.write(`wrote ${written.length === 1 ? written[0] : `${written.length} files`}\n`);
    });
}
