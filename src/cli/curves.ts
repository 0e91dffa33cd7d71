import type { Command } from 'commander';
import { CURVE_METRICS, readTrainingCurve, trainingCurvesChart, type CurveMetric } from '../report/training-curves.js';
import { checkFileTarget, outputGuard } from '../io/output-guard.js';
import { writeFileAtomic } from '../io/atomic.js';
import { EmsegError } from '../errors.js';

/** `name=dir` names a run in the legend; a bare dir is named by its folder. */
function parseRun(arg: string): { name?: string; dir: string } {
  const eq = arg.indexOf('=');
  return eq > 0 ? { name: arg.slice(0, eq), dir: arg.slice(eq + 1) } : { dir: arg };
}

export function registerCurves(program: Command): void {
  program
    .command('curves')
    .description('chart the validation scores of training runs against their wall time (from each run\'s train-log.jsonl), as SVG')
    .argument('<runs...>', 'training output folders, optionally named: name=dir')
    .requiredOption('--out <file.svg>', 'SVG file to write')
    .option('--title <text>', 'chart title', 'Validation scores against training time')
    .option('--time-label <text>', 'x axis label', 'training wall time (hours)')
    .option('--overwrite', 'replace an existing file emseg wrote')
    .action((runs: string[], o: { out: string; title: string; timeLabel: string; overwrite?: boolean }) => {
      if (!o.out.endsWith('.svg')) throw new EmsegError('invalid-option', o.out, '--out must name an .svg file');
      const curves = runs.map((r) => {
        const { name, dir } = parseRun(r);
        return readTrainingCurve(dir, name);
      });
      const empty = curves.filter((c) => c.points.length === 0).map((c) => c.name);
      if (empty.length) process.stderr.write(`emseg curves: no validation scores in the log of ${empty.join(', ')} (trained with --val none?)\n`);
      checkFileTarget(o.out, outputGuard(o.overwrite ?? false));
      const chart = trainingCurvesChart(curves, Object.keys(CURVE_METRICS) as CurveMetric[], o.title, o.timeLabel);
      writeFileAtomic(o.out, `${chart.svg}\n`);
      for (const c of curves) {
        const last = c.points.at(-1);
        const scores = last ? Object.entries(last.scores).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ') : 'no validation';
        process.stdout.write(`${c.name}: ${c.hours.toFixed(2)} h, ${c.points.length} validations; last (step ${last?.step ?? '-'}): ${scores}\n`);
      }
      process.stdout.write(`wrote ${o.out}\n`);
    });
}
