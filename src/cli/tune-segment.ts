import { InvalidArgumentError, type Command } from 'commander';
import type { MetricName } from '../metrics/index.js';
import { HIGHER_IS_BETTER, loadInputs, table } from '../report/index.js';
import { DEFAULT_SEGMENT_OPTIONS, segmentGrid, tuneSegmentation, type TuneRow } from '../segment/index.js';
import { metricList } from './eval.js';
import { COMMON_DEFAULTS as C, NEURON_DEFAULTS as N, NEURON_METHODS, type NeuronMethod } from '../pipeline/defaults.js';
import { tuneNeuronSegment, type TuneNeuronsRow } from '../pipeline/tune-neurons.js';
import { NEURONS_META_KEY } from '../pipeline/tuned-neurons.js';
import { EmsegError } from '../errors.js';
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

/** The 3-D rows (best VOI first) as a text table. */
function formatNeuronRows(rows: TuneNeuronsRow[]): string {
  const cells = rows.map((r) => [String(r.options.seedBoundary ?? ''), String(r.options.mergeAffinity ?? ''), String(r.neurons),
    ...[r.voi, r.voiSplit, r.voiMerge, r.arand, r.cremi].map((v) => v.toFixed(4))]);
  return table(['seed-boundary', 'merge-affinity', 'neurons', 'voi', 'voi_split', 'voi_merge', 'arand', 'cremi'], cells, (c) => c >= 2);
}

/** The 2-D grid flags `--method` does not use: refused when given, naming the first. */
const TWO_D_FLAGS = ['sigma', 'seedThreshold', 'minSeedArea', 'mergeThreshold', 'extraSeedThreshold', 'metrics', 'by', 'polarity', 'membraneProb', 'predIsMap'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander's parsed options
async function tuneNeurons(o: any, command: Command): Promise<void> {
  if (!(NEURON_METHODS as readonly string[]).includes(o.method)) throw new EmsegError('invalid-option', '--method', `"${o.method}" is not one of ${NEURON_METHODS.join(', ')}`);
  const given = TWO_D_FLAGS.find((k) => command.getOptionValueSource(k) === 'cli');
  if (given) throw new EmsegError('invalid-option', `--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, `is a 2-D watershed flag; --method ${o.method} tunes --merge-affinity and --seed-boundary`);
  const total = o.method === 'mutex' ? 1 : (o.mergeAffinity?.length ?? 1) * (o.seedBoundary?.length ?? 1);
  const bar = progressBar('tune', total, '', o.quiet ?? false);
  const rows = await tuneNeuronSegment({ pred: o.pred, labels: o.labels, method: o.method as NeuronMethod, mergeAffinity: o.mergeAffinity, seedBoundary: o.seedBoundary,
    onProgress: (done) => bar.update(done), modelDir: o.modelDir, notice: noticeOnStderr });
  bar.stop();
  process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatNeuronRows(rows));
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
    .option('--method <name>', `3-D neurons instead: ${NEURON_METHODS.filter((m) => m !== 'link').join(' or ')} on an affinity OME-Zarr (--pred), scored against neuron ids (--labels) by VOI and ARAND`)
    .option('--merge-affinity <list>', `--method watershed-agglomerate: values to try (default ${N.mergeAffinity.value})`, numberList)
    .option('--seed-boundary <list>', `--method watershed-agglomerate: values to try (default ${N.seedBoundary.value})`, numberList)
    .option('--model-dir <dir>', `with --method: record the best row (method, thresholds, scores) in this model's meta.json "${NEURONS_META_KEY}"; `
      + 'emseg segment --method then uses it on the maps the model predicts (--method auto: the method too)')
    .option('--json', 'print the rows as JSON')
    .option('--quiet', 'no progress bar')
    .action(async (o, command: Command) => {
      if (o.method !== undefined) return tuneNeurons(o, command);
      if (o.modelDir !== undefined) throw new EmsegError('invalid-option', '--model-dir', 'records a --method tuning; the 2-D options go in meta.json "close_gaps" by hand (docs/MODELS.md)');
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
