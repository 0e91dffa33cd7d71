import { InvalidArgumentError, type Command } from 'commander';
import { LABEL_POLARITIES } from '../io/index.js';
import { METRIC_NAMES, type MetricName } from '../metrics/index.js';
import { COMMON_DEFAULTS as C } from '../pipeline/defaults.js';
import { evaluateFiles, type EvaluateFilesOptions } from '../pipeline/evaluate.js';
import { evaluateVolumes, type EvaluateVolumesOptions } from '../pipeline/evaluate-3d.js';
import { EmsegError } from '../errors.js';
import { DEFAULT_WORST_COUNT } from '../metrics/index.js';
import { DEFAULT_SMALL_CELL_AREA } from '../metrics/index.js';
import {
  formatBreakdown,
  formatPerThreshold,
  formatSections,
  formatNeuronEvaluation,
  formatSummary,
  neuronEvaluationJson,
  toJson,
  type EvaluateFilesResult,
} from '../report/index.js';
import {
  PRED_IS_MAP_HELP, givenPolarity, intensityRule, labelPolarity, nonNegativeNumber, noticeOnStderr, positiveInt, voxelSizeArg,
} from './options.js';
import { progressBar, type Progress } from './progress.js';

export interface EvalCliOptions extends EvaluateFilesOptions {
  json: boolean;
  perThreshold: boolean;
  perSlice: boolean;
  quiet: boolean;
}

export function metricList(value: string): MetricName[] {
  const names = value.split(',').map((m) => m.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('expected a comma-separated list of metrics');
  for (const m of names) {
    if (!(METRIC_NAMES as readonly string[]).includes(m)) throw new InvalidArgumentError(`unknown metric "${m}" (use ${METRIC_NAMES.join(', ')})`);
  }
  return [...new Set(names as MetricName[])];
}

/** Progress on stderr: one bar per phase (load, metrics, sections). */
function phaseBars(quiet: boolean): { onProgress: NonNullable<EvaluateFilesOptions['onProgress']>; stop(): void } {
  let phase = '';
  let bar: Progress | undefined;
  return {
    onProgress(p, done, total) {
      if (p !== phase) {
        bar?.stop();
        phase = p;
        bar = progressBar(p.padEnd(8), total, '', quiet);
      }
      bar!.update(done);
    },
    stop: () => bar?.stop(),
  };
}

/** What `emseg eval` prints on stdout for a result. */
export function formatEvalOutput(e: EvaluateFilesResult, o: Pick<EvalCliOptions, 'json' | 'perThreshold' | 'perSlice'>): string {
  if (o.json) return `${JSON.stringify(toJson(e, o), null, 2)}\n`;
  let text = formatSummary(e);
  if (o.perThreshold) text += `\nper threshold\n${formatPerThreshold(e.result)}`;
  if (o.perSlice) text += `\nper section\n${formatSections(e)}`;
  if (e.breakdown) text += `\n${formatBreakdown(e)}`;
  if (e.report) text += `\nwrote ${e.report.path}\n`;
  return text;
}

/** The CLI action: evaluate with progress bars, return the text for stdout. */
export async function runEval(o: EvalCliOptions): Promise<{ result: EvaluateFilesResult; output: string }> {
  const bars = phaseBars(o.quiet);
  let result: EvaluateFilesResult;
  try {
    result = await evaluateFiles({ ...o, analyseSections: o.perSlice, onProgress: bars.onProgress });
  } finally {
    bars.stop();
  }
  return { result, output: formatEvalOutput(result, o) };
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('score a prediction against labels with the ISBI 2012 metrics (pixel, Rand, warping, V_rand, V_info), '
      + 'or (--seg) a 3-D segmentation against neuron ids with the CREMI / SNEMI3D scores (VOI, ARAND, CREMI score)')
    .requiredOption('--labels <path>', 'label stack: folder, glob or TIFF; with --seg, ground-truth neuron ids (any volume: '
      + 'gt.h5:/volumes/labels/neuron_ids, a Zarr, TIFF or stack; any integer type, uint64 included; id 0 = unlabelled, ignored)')
    .option('--pred <path>', 'prediction stack: P(non-membrane) in [0,1] (ISBI polarity; integer images are scaled to [0,1])')
    .option('--cells <path>', 'instead of --pred: 2-D cells (a label stack or volume, as emseg segment writes them) scored with the ISBI metrics '
      + 'as the map of where cells meet (and label 0), as the challenge scored segmentations')
    .option('--seg <path>', 'instead of --pred: a 3-D segmentation (cells, neuron ids; any volume) scored against --labels with '
      + 'VOI split/merge, adapted Rand error and the CREMI score (docs/MODELS.md, "3-D neuron segmentations")')
    .option('--border-nm <nm>', 'with --seg: leave out ground-truth voxels within this distance (nm, in-plane) of a label boundary, '
      + 'as CREMI (25 nm there); needs the voxel size', nonNegativeNumber)
    .option('--voxel-size <z,y,x>', 'with --seg: voxel size in nm for --border-nm (default: what the labels, else the segmentation, record)', voxelSizeArg)
    .option('--worst <n>', 'with --seg: how many worst split neurons and merged segments to list', positiveInt, DEFAULT_WORST_COUNT)
    .option('--membrane-prob', 'the prediction is P(membrane) (1 = membrane): flip it (default: what the maps record, as emseg predict writes it; else ISBI)')
    .option('--pred-is-map', PRED_IS_MAP_HELP)
    .option('--polarity <p>', `label encoding: ${LABEL_POLARITIES.join(', ')}; labels that read as mostly membrane are refused as inverted `
      + 'with the default, and warned about when given', labelPolarity, C.polarity.value)
    .option('--metrics <list>', `comma list of metrics to compute (default all: ${METRIC_NAMES.join(',')})`, metricList)
    .option('--json', 'print JSON (values, best thresholds; details with --per-threshold / --per-slice)')
    .option('--per-threshold', 'also print every metric at every threshold')
    .option('--per-slice', 'also print per-section scores and warping splits/mergers')
    .option('--breakdown', 'also break the warping error down by kind of event at its best threshold: gaps, small cells merged, '
      + 'false boundaries, small pieces cut off, and the events it does not count (specks, missed cells, ...); docs/MODELS.md "The warping error by kind"')
    .option('--small-cell-area <px>', 'with --breakdown: labelled cells smaller than this count as small', positiveInt, DEFAULT_SMALL_CELL_AREA)
    .option('--report <file>', 'write a report: .html = everything (plots, tables, error overlays), .svg = the plots only (scores against threshold and per section), '
      + '.png = the error-overlay mosaic only (rasterising the plots would need a browser, so they are not in the PNG)')
    .option('--images <path>', 'raw EM stack to show under the error marks in the report (default: the prediction)')
    .option('--intensity <rule>', 'how the --images values become grey in the report (display only; default: divided by the type\'s full range): dtype, min-max, '
      + 'percentiles[:LOW,HIGH] or LOW,HIGH, as for predict', intensityRule)
    .option('--to-grey', 'reduce colour --images to their luma (ITU-R BT.601) instead of refusing them')
    .option('--report-sections <n>', 'most sections drawn in the report, the worst first', positiveInt, 30)
    .option('--overwrite', 'replace an existing report')
    .option('--quiet', 'no progress bar')
    .addHelpText('after', `
Report overlays mark, for each section at the best warping threshold, split pixels in orange-red and
merger pixels in sky blue on the section in grey (raw EM with --images, else the prediction).
Exit status 1 with a message naming the file on missing files, size/count mismatches, values outside [0,1].`)
    .action(async (o, cmd: Command) => {
      const write = rootWriter(cmd);
      if (o.seg !== undefined) {
        write(await runEval3d(volumeOptions(o, cmd), o.json ?? false, o.quiet ?? false));
        return;
      }
      if ((o.pred === undefined) === (o.cells === undefined)) {
        throw new EmsegError('invalid-option', '--pred', 'give one of --pred (a 2-D map stack, ISBI metrics), --cells (2-D cells, ISBI metrics) or --seg (a 3-D segmentation, CREMI scores)');
      }
      refuseGiven(cmd, ['borderNm', 'voxelSize', 'worst'], 'with --seg only');
      if (o.cells !== undefined) refuseGiven(cmd, ['membraneProb', 'predIsMap'], 'for maps (--pred), not --cells');
      const { output } = await runEval({
        labels: o.labels, prediction: o.pred ?? o.cells, cells: o.cells !== undefined, images: o.images, imagesIntensity: o.intensity, imagesToGrey: o.toGrey ?? false, membraneProb: o.membraneProb, polarity: givenPolarity(o, cmd),
        predIsMap: o.predIsMap ?? false, notice: noticeOnStderr,
        metrics: o.metrics, breakdown: o.breakdown ? o.smallCellArea : undefined, report: o.report, overwrite: o.overwrite ?? false, reportSections: o.reportSections,
        json: o.json ?? false, perThreshold: o.perThreshold ?? false, perSlice: o.perSlice ?? false, quiet: o.quiet ?? false,
      });
      write(output);
    });
}

/** The root program's writer: process.stdout unless a caller (a test) configured another. */
function rootWriter(cmd: Command): (s: string) => void {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
}

/** The 2-D options that mean nothing for --seg (and the 3-D ones without it): refused, never dropped in silence. */
const MAPS_ONLY = ['pred', 'cells', 'membraneProb', 'predIsMap', 'polarity', 'metrics', 'perThreshold', 'perSlice', 'breakdown', 'smallCellArea',
  'report', 'images', 'intensity', 'toGrey', 'reportSections', 'overwrite'];

function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Refuses options the user gave (not defaults) that the chosen mode does not use. */
function refuseGiven(cmd: Command, keys: readonly string[], why: string): void {
  for (const key of keys) {
    const source = cmd.getOptionValueSource(key);
    if (source === 'cli' || source === 'env') throw new EmsegError('invalid-option', flagOf(key), `${flagOf(key)} is ${why}`);
  }
}

function volumeOptions(o: Record<string, unknown>, cmd: Command): EvaluateVolumesOptions {
  refuseGiven(cmd, MAPS_ONLY, 'for 2-D map stacks (--pred), not --seg');
  return {
    seg: o.seg as string, labels: o.labels as string, borderNm: o.borderNm as number | undefined,
    voxelSize: o.voxelSize as [number, number, number] | undefined, worst: o.worst as number,
  };
}

/** `emseg eval --seg`: score with a progress bar over the z-slabs, return the text for stdout. */
export async function runEval3d(o: EvaluateVolumesOptions, json: boolean, quiet: boolean): Promise<string> {
  let bar: Progress | undefined;
  try {
    const result = await evaluateVolumes({ ...o, onProgress: (done, total) => { bar ??= progressBar('sections', total, '', quiet); bar.update(done); } });
    return json ? `${JSON.stringify(neuronEvaluationJson(result), null, 2)}\n` : formatNeuronEvaluation(result);
  } finally {
    bar?.stop();
  }
}
