import { InvalidArgumentError, type Command } from 'commander';
import type { MetricName } from '../metrics/index.js';
import { HIGHER_IS_BETTER, loadInputs, table } from '../report/index.js';
import { DEFAULT_SEGMENT_OPTIONS, segmentGrid, tuneSegmentation, type TuneRow } from '../segment/index.js';
import { metricList } from './eval.js';
import { COMMON_DEFAULTS as C } from '../pipeline/defaults.js';
import { PRED_IS_MAP_HELP, givenPolarity, labelPolarity, noticeOnStderr, numberList } from './options.js';
import { progressBar } from './progress.js';

/** Rows best first by `by` (the baseline row included), as a text table. */
export function formatTuneRows(rows: TuneRow[], metrics: MetricName[], by: MetricName): string {
  const sign = HIGHER_IS_BETTER[by] ? -1 : 1;
  const sorted = [...rows].sort((a, b) => sign * (a.scores[by]! - b.scores[by]!));
  const cells = sorted.map((r) => [
    r.options ? String(r.options.sigma) : 'maps as they are', r.options ? String(r.options.seedThreshold) : '',
    r.options ? String(r.options.minSeedArea) : '', r.options ? String(r.options.mergeThreshold) : '',
    r.options ? String(r.options.extraSeedThreshold ?? 0) : '',
    ...metrics.map((m) => r.scores[m]!.toFixed(m === 'warping_error' ? 6 : 4)),
  ]);
  return table(['sigma', 'seed-threshold', 'min-seed-area', 'merge-threshold', 'extra-seed-threshold', ...metrics], cells, (c) => c >= 1);
}

export function registerTuneSegment(program: Command): void {
  const d = DEFAULT_SEGMENT_OPTIONS;
  program
    .command('tune-segment')
    .description('score `predict --close-gaps` over a grid of watershed options on labelled sections (best first)')
    .requiredOption('--labels <path>', 'label stack of the sections the maps cover')
    .requiredOption('--pred <path>', 'their membrane maps, as emseg predict writes them (without --close-gaps)')
    .option('--polarity <p>', C.polarity.help, labelPolarity, C.polarity.value)
    .option('--membrane-prob', 'the maps hold P(membrane) instead of the ISBI polarity (default: what the maps record; else ISBI)')
    .option('--pred-is-map', PRED_IS_MAP_HELP)
    .option('--sigma <list>', 'values to try', numberList, [d.sigma])
    .option('--seed-threshold <list>', 'values to try', numberList, [0.05, 0.1, 0.15, 0.2, 0.3])
    .option('--min-seed-area <list>', 'values to try', numberList, [5, 20])
    .option('--merge-threshold <list>', 'values to try (0: no merging)', numberList, [0, 0.5, 0.6, 0.7])
    .option('--extra-seed-threshold <list>', 'values to try (0: off)', numberList, [d.extraSeedThreshold])
    .option('--metrics <list>', 'metrics to compute', metricList)
    .option('--by <metric>', 'sort by this metric', 'v_rand')
    .option('--json', 'print the rows as JSON')
    .option('--quiet', 'no progress bar')
    .action(async (o, command: Command) => {
      const metrics: MetricName[] = o.metrics ?? ['pixel_error', 'rand_error', 'warping_error', 'v_rand', 'v_info'];
      if (!metrics.includes(o.by)) throw new InvalidArgumentError(`--by ${o.by} is not among the metrics computed (${metrics.join(', ')})`);
      const { gt, proposal } = await loadInputs({ labels: o.labels, prediction: o.pred, polarity: givenPolarity(o, command),
        membraneProb: o.membraneProb, predIsMap: o.predIsMap ?? false, notice: noticeOnStderr });
      const grid = segmentGrid({ sigma: o.sigma, seedThreshold: o.seedThreshold, minSeedArea: o.minSeedArea,
        mergeThreshold: o.mergeThreshold, extraSeedThreshold: o.extraSeedThreshold });
      const bar = progressBar('tune', grid.length + 1, '', o.quiet ?? false);
      const rows = tuneSegmentation(gt, proposal, grid, { metrics, onProgress: (done) => bar.update(done) });
      bar.stop();
      process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatTuneRows(rows, metrics, o.by));
    });
}
