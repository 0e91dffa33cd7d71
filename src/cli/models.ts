import type { Command } from 'commander';
import { summarize } from '../models/summary.js';
import { resolveSpec, zoo3dNames, zooNames } from '../models/zoo.js';

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the model zoo: window / receptive field (3-d: depth x height x width), parameters, FLOPs per output pixel (3-d: voxel)')
    .argument('[model]', 'print this zoo model\'s spec as JSON')
    .option('--json', 'print JSON')
    .action((model: string | undefined, o) => {
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
