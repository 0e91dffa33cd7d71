import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { PAPER_MODEL, SAMPLE_IMAGES, SAMPLE_LABELS, SHIPPED_MODEL } from '../src/pipeline/assets.js';
import { runPredict } from '../src/pipeline/predict.js';
import { readModelMeta } from '../src/models/model-dir.js';
import { evaluateFiles } from '../src/pipeline/evaluate.js';

// Each shipped model must reproduce the scores documented for it (docs/MODELS.md, docs/REPRODUCTION.md, meta.json
// "samples") through the same predict + eval path a user runs. Small differences between CPUs' kernels can move a
// threshold decision, so scores are compared to 2e-3, and the (tiny) warping error to 5 % of its value.
for (const model of [SHIPPED_MODEL, PAPER_MODEL]) {
  const samples = readModelMeta(model).samples as Record<'scores' | 'scores_close_gaps', Record<string, number>>;
  for (const [name, closeGaps] of [['scores', undefined], ['scores_close_gaps', {}]] as const) {
    test(`${basename(model)} reproduces its documented ${name} on the bundled sample sections`, async () => {
      const out = join(mkdtempSync(join(tmpdir(), 'emseg-shipped-')), 'maps.tif');
      await runPredict({ models: [model], input: SAMPLE_IMAGES, out, format: 'isbi', membraneProb: false, tta: false,
        closeGaps, bf16: false, tile: 512, backend: 'auto', overwrite: false });
      const { result } = await evaluateFiles({ labels: SAMPLE_LABELS, prediction: out });
      for (const [metric, value] of Object.entries(samples[name])) {
        const got = result[metric as keyof typeof result] as number;
        const tolerance = metric === 'warping_error' ? 0.05 * value : 2e-3;
        assert.ok(Math.abs(got - value) <= tolerance, `${basename(model)} ${metric}: ${got} vs documented ${value}`);
      }
    });
  }
}
