import type { Command } from 'commander';
import { shippedModels } from '../models/shipped.js';
import { summarize } from '../models/summary.js';
import { resolveSpec, zoo3dNames, zooNames } from '../models/zoo.js';

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the model zoo: window / receptive field (3-d: depth x height x width), parameters, FLOPs per output pixel (3-d: voxel)')
    .argument('[model]', 'print this zoo model\'s spec as JSON')
    .option('--json', 'print JSON')
    .option('--shipped', 'list the trained models shipped with emseg instead (use them by name: --model emseg-isbi)')
    .action((model: string | undefined, o) => {
      if (o.shipped) {
        printShipped(o.json ?? false);
        return;
      }
      if (model) {
        process.stdout.write(`${JSON.stringify(resolveSpec(model), null, 2)}\n`);
        return;
      }
      const rows = [...zooNames(), ...zoo3dNames()].map((n) => summarize(resolveSpec(n)));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      const header = ['model', 'window', 'field', 'params', 'MFLOP/px', 'description'];
      const lines = rows.map((r) => [r.name, r.window ?? '-', r.receptiveField3d?.join('x') ?? r.receptiveField, r.params.toLocaleString('en-US'),
        (r.flopsPerPixel / 1e6).toFixed(2), r.description].map(String));
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
      for (const l of [header, ...lines]) {
        process.stdout.write(`${l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
      }
    });
}

/** The scores `emseg models --shipped` shows, in this order (a model's meta.json may record more). */
const SHOWN_SCORES = ['v_rand', 'v_info', 'rand_error', 'pixel_error', 'warping_error', 'voi', 'voi_split', 'voi_merge', 'arand', 'cremi_score'] as const;

function printShipped(json: boolean): void {
  const models = shippedModels();
  if (json) {
    process.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
    return;
  }
  for (const m of models) {
    const scores = SHOWN_SCORES.filter((k) => m.scores?.[k] !== undefined).map((k) => `${k} ${m.scores![k]!.toFixed(4)}`);
    process.stdout.write(`${m.name} (${m.kind}): ${m.use}\n  ${m.dir}\n`
      + `${scores.length ? `  scores: ${scores.join(', ')}${m.scoredOn ? ` (${m.scoredOn})` : ''}\n` : ''}`);
  }
}
