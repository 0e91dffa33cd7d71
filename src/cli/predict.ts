import type { Command } from 'commander';
import { createBackend } from '../backend/index.js';
import { openStack, toFloat32, writeIsbiSubmission, writeStack, type OutputFormat, type SliceLike } from '../io/index.js';
import { Predictor } from '../infer/predict.js';
import { closeMembraneGaps, type SegmentOptions } from '../segment/index.js';
import { loadModels } from '../models/model-dir.js';
import { backendKind, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { addSegmentOptions, segmentOptionsFrom } from './segment.js';

export interface PredictCliOptions {
  models: readonly string[];
  input: string;
  out: string;
  format: 'isbi' | OutputFormat;
  membraneProb: boolean;
  tta: boolean;
  /** Draw the watershed segments' boundaries into the maps as certain membrane (closes gaps). */
  closeGaps?: SegmentOptions;
  bf16: boolean;
  tile: number;
  threads?: number;
  backend: 'auto' | 'onednn' | 'reference';
  overwrite: boolean;
  quiet: boolean;
}

/** Predict every section of a stack, streaming slices in and out (a large stack is never held whole). */
export async function runPredict(o: PredictCliOptions): Promise<string[]> {
  const backend = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads });
  const models = o.models.flatMap((dir) => loadModels(dir));
  const predictor = new Predictor(models, backend);
  const reader = await openStack(o.input);
  const bar = progressBar('predict', reader.depth, 'section {section} {tiles}', o.quiet);
  async function* maps(): AsyncGenerator<SliceLike<Float32Array>> {
    let done = 0;
    for await (const s of reader.slices()) {
      let p = predictor.predict(toFloat32(s.data), s.height, s.width, {
        tta: o.tta, tile: o.tile,
        onTile: (d, n) => bar.update(done, { section: s.index, tiles: `tile ${d}/${n}` }),
      });
      if (o.closeGaps) p = closeMembraneGaps(p, s.height, s.width, o.closeGaps);
      if (o.format !== 'isbi' && !o.membraneProb) for (let i = 0; i < p.length; i++) p[i] = 1 - p[i]!;
      done++;
      bar.update(done, { section: s.index, tiles: '' });
      yield { width: s.width, height: s.height, data: p };
    }
  }
  try {
    if (o.format === 'isbi') {
      return [await writeIsbiSubmission(o.out, maps(), {
        values: 'membrane-probability', overwrite: o.overwrite })];
    }
    return await writeStack(o.out, maps(), { format: o.format, overwrite: o.overwrite });
  } finally {
    bar.stop();
  }
}

export function registerPredict(program: Command): void {
  addSegmentOptions(program
    .command('predict')
    .description('membrane maps for whole sections (dense fully convolutional evaluation, mirrored borders)')
    .requiredOption('--model <dirs...>', 'model directory (or ensemble directory); several = ensemble average')
    .requiredOption('--input <path>', 'image stack: folder, glob or TIFF')
    .requiredOption('--out <path>', 'output: .tif file (ISBI format by default) or folder')
    .option('--format <f>', 'isbi (multi-page float TIFF, 1 = non-membrane), tiff, png-folder, tiff-folder', 'isbi')
    .option('--membrane-prob', 'with tiff/png outputs, write P(membrane) instead of ISBI polarity')
    .option('--tta', 'average the 8 rotations/flips')
    .option('--close-gaps', 'draw the boundaries of `emseg segment` into the maps as membrane (watershed options below)')
    .option('--bf16', 'bfloat16 inference')
    .option('--tile <px>', 'output tile edge (bounds memory)', positiveInt, 512)
    .option('--threads <n>', 'CPU threads', positiveInt)
    .option('--backend <kind>', 'auto, onednn or reference', backendKind, 'auto')
    .option('--overwrite', 'replace existing outputs')
    .option('--quiet', 'no progress bar'))
    .action(async (o) => {
      if (!['isbi', 'tiff', 'png-folder', 'tiff-folder'].includes(o.format)) {
        throw new Error(`--format must be isbi, tiff, png-folder or tiff-folder (got "${o.format}")`);
      }
      const written = await runPredict({ models: o.model, input: o.input, out: o.out, format: o.format,
        membraneProb: o.membraneProb ?? false, tta: o.tta ?? false,
        closeGaps: o.closeGaps ? segmentOptionsFrom(o) : undefined, bf16: o.bf16 ?? false, tile: o.tile,
        threads: o.threads, backend: o.backend, overwrite: o.overwrite ?? false, quiet: o.quiet ?? false });
      process.stdout.write(`wrote ${written.length === 1 ? written[0] : `${written.length} files`}\n`);
    });
}
