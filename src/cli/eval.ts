import { InvalidArgumentError, type Command } from 'commander';
import { LABEL_POLARITIES } from '../io/index.js';
import { METRIC_NAMES, type MetricName } from '../metrics/index.js';
import { COMMON_DEFAULTS as C } from '../pipeline/defaults.js';
import { evaluateFiles, type EvaluateFilesOptions } from '../pipeline/evaluate.js';
import { DEFAULT_SMALL_CELL_AREA } from '../metrics/index.js';
import {
  formatBreakdown,
  formatPerThreshold,
  formatSections,
  formatSummary,
  toJson,
  type EvaluateFilesResult,
} from '../report/index.js';
import { PRED_IS_MAP_HELP, givenPolarity, intensityRule, labelPolarity, noticeOnStderr, positiveInt } from './options.js';
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
    .description('score a prediction against labels with the ISBI 2012 metrics (pixel, Rand, warping, V_rand, V_info)')
    .requiredOption('--labels <path>', 'label stack: folder, glob or TIFF')
    .requiredOption('--pred <path>', 'prediction stack: P(non-membrane) in [0,1] (ISBI polarity; integer images are scaled to [0,1])')
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
      const { output } = await runEval({
        labels: o.labels, prediction: o.pred, images: o.images, imagesIntensity: o.intensity, imagesToGrey: o.toGrey ?? false, membraneProb: o.membraneProb, polarity: givenPolarity(o, cmd),
        predIsMap: o.predIsMap ?? false, notice: noticeOnStderr,
        metrics: o.metrics, breakdown: o.breakdown ? o.smallCellArea : undefined, report: o.report, overwrite: o.overwrite ?? false, reportSections: o.reportSections,
        json: o.json ?? false, perThreshold: o.perThreshold ?? false, perSlice: o.perSlice ?? false, quiet: o.quiet ?? false,
      });
      // The root program's writer: process.stdout unless a caller (a test) configured another.
      let root = cmd;
      while (root.parent) root = root.parent;
      const write = root.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
      write(output);
    });
}
