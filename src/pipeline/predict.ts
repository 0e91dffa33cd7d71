import { createBackend } from '../backend/index.js';
import { checkFinite, sectionNormaliser } from '../image/intensity.js';
import { checkOutputPath, openStack, writeIsbiSubmission, writeStack, type OutputFormat, type SliceLike } from '../io/index.js';
import { Predictor } from '../infer/predict.js';
import { closeMembraneGaps, type SegmentOptions } from '../segment/index.js';
import { loadModels } from '../models/model-dir.js';
import { predictIntensity } from './intensity.js';
import { silentProgress, type ProgressFactory } from './progress.js';

export interface PredictJob {
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
  /** An --intensity rule; default: the one the models were trained with. */
  intensity?: string;
  /** Reduce colour images to their luma instead of refusing them. */
  toGrey?: boolean;
  /** Warnings for the user (the CLI prints them on stderr). */
  notice?: (message: string) => void;
}

/** Predict every section of a stack, streaming slices in and out (a large stack is never held whole). */
export async function runPredict(o: PredictJob, progress: ProgressFactory = silentProgress): Promise<string[]> {
  checkOutputPath(o.out, o.format); // before any model is loaded
  const backend = createBackend({ kind: o.backend, precision: o.bf16 ? 'bfloat16' : 'float32', threads: o.threads });
  const models = o.models.flatMap((dir) => loadModels(dir));
  const predictor = new Predictor(models, backend);
  const reader = await openStack(o.input, { colour: o.toGrey ? 'to-grey' : 'reject' });
  const intensity = predictIntensity(models, reader.sampleType, o.input, o.intensity);
  intensity.notices.forEach((m) => o.notice?.(m));
  const normalise = sectionNormaliser(intensity.spec);
  const inputs = [...reader.files, ...o.models]; // never written over, even with --overwrite
  const bar = progress('predict', reader.depth, 'section {section} {tiles}');
  async function* maps(): AsyncGenerator<SliceLike<Float32Array>> {
    let done = 0;
    for await (const s of reader.slices()) {
      let p = predictor.predict(normalise(s), s.height, s.width, {
        tta: o.tta, tile: o.tile,
        onTile: (d, n) => bar.update(done, { section: s.index, tiles: `tile ${d}/${n}` }),
      });
      checkFinite(p, s.source, `the map of section ${s.index} (models ${o.models.join(', ')})`);
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
        values: 'membrane-probability', overwrite: o.overwrite, inputs })];
    }
    return await writeStack(o.out, maps(), { format: o.format, overwrite: o.overwrite, inputs });
  } finally {
    bar.stop();
  }
}
