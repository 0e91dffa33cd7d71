import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { iterateSlices, writeStack } from '../io/index.js';
import { toFloat32 } from '../image/stack.js';
import { ISBI_POLARITY, toMembraneInPlace } from '../image/map-meaning.js';
import { DEMO_OUTPUTS, SAMPLE_IMAGES, SAMPLE_LABELS, SHIPPED_MODEL } from '../pipeline/assets.js';
import { COMMON_DEFAULTS as C, PREDICT_DEFAULTS } from '../pipeline/defaults.js';
import { runPredict } from '../pipeline/predict.js';
import { runSegment } from '../pipeline/segment.js';
import { runEval } from './eval.js';
import { barFactory } from './progress.js';
import { backendKind } from './options.js';
import { closeGapsOptions } from '../pipeline/close-gaps.js';
import { resolveModelDir } from '../models/shipped.js';


/** PNG pictures of an ISBI-format map (white = membrane), for people to look at. */
async function writeMembranePngs(isbiTiff: string, folder: string): Promise<void> {
  async function* membrane() {
    for await (const s of iterateSlices(isbiTiff)) {
      yield { width: s.width, height: s.height, data: toMembraneInPlace(toFloat32(s.data), ISBI_POLARITY) };
    }
  }
  await writeStack(folder, membrane(), { format: 'png-folder', overwrite: true });
}

/**
 * The main job: segment the bundled sample sections with the shipped model, score them with the ISBI metrics,
 * and write the membrane maps, the cells and a report. The demo owns its output folder and replaces its own files there.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('segment the bundled sample sections with the shipped model, evaluate, write maps and a report')
    .option('--out <dir>', 'output folder (its demo files are replaced)', 'out/demo')
    .option('--model <dir>', 'model directory or shipped model name', SHIPPED_MODEL)
    .option('--tta', 'average the 8 rotations/flips')
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--quiet', 'no progress bars')
    .action(async (flags) => {
      const o = { ...flags, model: resolveModelDir(flags.model) };
      mkdirSync(o.out, { recursive: true });
      const maps = join(o.out, DEMO_OUTPUTS.maps);
      const pngs = join(o.out, DEMO_OUTPUTS.mapPictures);
      const common = { models: [o.model], input: SAMPLE_IMAGES, tta: o.tta ?? false, bf16: false, tile: PREDICT_DEFAULTS.tile.value,
        backend: o.backend, overwrite: true } as const;
      const bars = barFactory(o.quiet ?? false);
      const t0 = Date.now();
      await runPredict({ ...common, out: maps, format: 'isbi', membraneProb: false, closeGaps: {} }, bars);
      await writeMembranePngs(maps, pngs);
      const cells = join(o.out, DEMO_OUTPUTS.cells);
      const pictures = join(o.out, DEMO_OUTPUTS.cellPictures);
      const { segments } = await runSegment({ pred: maps, out: cells, membraneProb: false, images: SAMPLE_IMAGES, pictures,
        options: closeGapsOptions([o.model], {}).options, overwrite: true }, bars);
      const report = join(o.out, DEMO_OUTPUTS.report);
      const { output } = await runEval({ labels: SAMPLE_LABELS, prediction: maps, images: SAMPLE_IMAGES, report,
        overwrite: true, json: false, perThreshold: false, perSlice: true, quiet: o.quiet ?? false });
      process.stdout.write(`${output}\nmembrane maps: ${maps} (ISBI format: 1 = non-membrane) and ${pngs}/ ` +
        `(white = membrane)\ncells: ${cells} (${segments.join(', ')} per section) and ${pictures}/\nreport: ${report}\ndone in ${((Date.now() - t0) / 1000).toFixed(1)} s\n` +
        `look at it: npx emseg view ${SAMPLE_IMAGES} --map ${maps} --cells ${cells} --labels ${SAMPLE_LABELS}\n`);
    });
}
