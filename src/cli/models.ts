import type { Command } from 'commander';
import { probePlan } from '../models/model-dir.js';
import { resolveSpec, zooNames } from '../models/zoo.js';
import { paramShapes } from '../nn/params.js';
import { planModel } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';
import { numel } from '../tensor/tensor.js';

export interface ModelSummary {
  name: string;
  window: number | null;
  receptiveField: number;
  params: number;
  /** Forward FLOPs per output pixel of dense whole-image inference (512x512 output). */
  flopsPerPixel: number;
  description: string;
}

export function summarize(spec: ModelSpec): ModelSummary {
  const probe = probePlan(spec);
  const params = paramShapes(probe).reduce((s, p) => s + numel(p.shape), 0);
  const out = 512;
  const mode = spec.window ? 'dense' : 'strided';
  const size = spec.window ? out + spec.window - 1 : out;
  const plan = planModel(spec, size, size, { mode });
  const pixels = plan.output[1] * plan.output[2];
  return { name: spec.name, window: spec.window ?? null, receptiveField: probe.field, params,
    flopsPerPixel: plan.flops / pixels, description: spec.description ?? '' };
}

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the model zoo: window / receptive field, parameters, FLOPs per output pixel')
    .argument('[model]', 'print this zoo model\'s spec as JSON')
    .option('--json', 'print JSON')
    .action((model: string | undefined, o) => {
      if (model) {
        process.stdout.write(`${JSON.stringify(resolveSpec(model), null, 2)}\n`);
        return;
      }
      const rows = zooNames().map((n) => summarize(resolveSpec(n)));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      const header = ['model', 'window', 'field', 'params', 'MFLOP/px', 'description'];
      const lines = rows.map((r) => [r.name, r.window ?? '-', r.receptiveField, r.params.toLocaleString('en-US'),
        (r.flopsPerPixel / 1e6).toFixed(2), r.description].map(String));
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
      for (const l of [header, ...lines]) {
        process.stdout.write(`${l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
      }
    });
}
