/** Plain-text tables and the JSON document of `emseg eval`. */
import { BREAKDOWN_KINDS, METRIC_NAMES, type BreakdownCounts, type EvaluationResult, type MetricName } from '../metrics/index.js';
import type { EvaluateFilesResult, SectionErrors } from './types.js';
import { tidy } from './svg-plot.js';

/** Whether a higher value of the metric is better. */
export const HIGHER_IS_BETTER: Record<MetricName, boolean> = {
  pixel_error: false,
  rand_error: false,
  warping_error: false,
  v_rand: true,
  v_info: true,
};

export function computedMetrics(r: EvaluationResult): MetricName[] {
  return METRIC_NAMES.filter((m) => r[m] !== undefined);
}

/** The threshold a metric's best value is reached at. */
export function bestThreshold(r: EvaluationResult, m: MetricName): number | undefined {
  const i = r.best_threshold_index[m];
  if (i === undefined) return undefined;
  return (m === 'warping_error' ? r.warping_thresholds : r.thresholds)[i];
}

export function table(header: string[], rows: string[][], rightAlign: (col: number) => boolean): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, c) => (rightAlign(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

const num = (v: number | undefined, digits = 6): string => (v === undefined ? '' : Number.isNaN(v) ? 'NaN' : v.toFixed(digits));

function files(list: readonly string[]): string {
  return list.length === 1 ? list[0]! : `${list[0]} .. ${list.at(-1)} (${list.length} files)`;
}

/** "file" or "file, page N" (when the prediction's files hold several sections each). */
export function sectionSource(e: EvaluateFilesResult, s: SectionErrors): string {
  return e.predictionFiles.length < e.depth ? `${s.source.file}, page ${s.source.page + 1}` : s.source.file;
}

/** The summary table: each metric, its value, the best threshold and which way is better. */
export function formatSummary(e: EvaluateFilesResult): string {
  const r = e.result;
  const head = [
    `labels      ${files(e.labelFiles)} (${e.polarity})`,
    `prediction  ${files(e.predictionFiles)} (${e.membraneProb ? 'P(membrane), flipped' : 'P(non-membrane)'})`,
    `size        ${e.width}x${e.height}, ${e.depth} section${e.depth === 1 ? '' : 's'}`,
    '',
  ].join('\n');
  const rows = computedMetrics(r).map((m) => {
    let note = '';
    const bw = r.best_threshold_index.warping_error;
    if (m === 'warping_error' && bw !== undefined) {
      note = `${r.per_threshold.warping_splits![bw]} splits, ${r.per_threshold.warping_mergers![bw]} mergers`;
    }
    return [m, num(r[m]), tidy(bestThreshold(r, m)!, 4), HIGHER_IS_BETTER[m] ? 'higher' : 'lower', note];
  });
  return `${head}\n${table(['metric', 'value', 'best threshold', 'better', 'notes'], rows, (c) => c === 1 || c === 2)}`;
}

/** The warping error by kind of event: one row per section and the total (docs/MODELS.md, "The warping error by kind"). */
export function formatBreakdown(e: EvaluateFilesResult): string {
  const b = e.breakdown;
  if (!b) return '';
  const row = (name: string, c: BreakdownCounts) => [name, ...BREAKDOWN_KINDS.map((k) => String(c[k]))];
  const rows = [...b.sections.map((c, z) => row(String(z), c)), row('total', b.total)];
  const head = `warping error by kind at threshold ${tidy(b.threshold, 4)} (small cell: < ${b.small_cell_area} px); `
    + 'pixels for gap, small_cell, false_boundary, small_piece (the counted mergers and splits); events for the rest\n';
  return head + table(['section', ...BREAKDOWN_KINDS], rows, (c) => c >= 1);
}

/** One row per threshold: each computed metric's value there (pixel/Rand as 1 - F-score, like the final values). */
export function formatPerThreshold(r: EvaluationResult): string {
  const pt = r.per_threshold;
  const cols: [string, (t: number) => number | undefined][] = [];
  const at = (values: number[] | undefined, t: number, f = (v: number) => v): number | undefined => (values && t < values.length ? f(values[t]!) : undefined);
  if (pt.pixel_fscore) cols.push(['pixel_error', (t) => at(pt.pixel_fscore, t, (v) => 1 - v)]);
  if (pt.rand_fscore) cols.push(['rand_error', (t) => at(pt.rand_fscore, t, (v) => 1 - v)], ['rand_merge', (t) => at(pt.rand_merge, t)], ['rand_split', (t) => at(pt.rand_split, t)]);
  // Warping thresholds are the sweep thresholds without the last; rows align by index.
  if (pt.warping_error) cols.push(['warping_error', (t) => at(pt.warping_error, t)], ['splits', (t) => at(pt.warping_splits, t)], ['mergers', (t) => at(pt.warping_mergers, t)]);
  if (pt.v_rand) cols.push(['v_rand', (t) => at(pt.v_rand, t)]);
  if (pt.v_info) cols.push(['v_info', (t) => at(pt.v_info, t)]);
  const rows = r.thresholds.map((th, t) => [
    tidy(th, 4),
    ...cols.map(([name, get]) => {
      const v = get(t);
      if (v === undefined) return '';
      return name === 'splits' || name === 'mergers' ? String(v) : num(v);
    }),
  ]);
  return table(['threshold', ...cols.map(([n]) => n)], rows, (c) => c > 0);
}

/** One row per section: V_rand / V_info at their best thresholds, warping splits/mergers at the marking threshold. */
export function formatSections(e: EvaluateFilesResult): string {
  const r = e.result;
  const hasVr = r.best_threshold_index.v_rand !== undefined;
  const hasVi = r.best_threshold_index.v_info !== undefined;
  const header = ['section', 'file', ...(hasVr ? ['v_rand'] : []), ...(hasVi ? ['v_info'] : [])];
  if (e.sections) header.push('splits', 'mergers');
  const rows: string[][] = [];
  for (let z = 0; z < e.depth; z++) {
    const s = e.sections?.[z];
    const row = [String(z), s ? sectionSource(e, s) : ''];
    if (hasVr) row.push(num(r.per_slice.v_rand![r.best_threshold_index.v_rand!]![z]));
    if (hasVi) row.push(num(r.per_slice.v_info![r.best_threshold_index.v_info!]![z]));
    if (s) row.push(String(s.splits.length), String(s.mergers.length));
    rows.push(row);
  }
  const notes: string[] = [];
  if (hasVr) notes.push(`v_rand at t = ${tidy(bestThreshold(r, 'v_rand')!, 4)}`);
  if (hasVi) notes.push(`v_info at t = ${tidy(bestThreshold(r, 'v_info')!, 4)}`);
  if (e.markThreshold !== undefined) notes.push(`warping splits/mergers at t = ${tidy(e.markThreshold, 4)}`);
  return `${table(header, rows, (c) => c !== 1)}${notes.length ? `(${notes.join('; ')})\n` : ''}`;
}

export interface JsonOptions {
  perThreshold?: boolean;
  perSlice?: boolean;
}

/**
 * The JSON document: the final values, best_threshold_index and thresholds in the layout of one
 * proposal of the reference expected.json, plus inputs, best thresholds, and details on request.
 */
export function toJson(e: EvaluateFilesResult, o: JsonOptions = {}): Record<string, unknown> {
  const r = e.result;
  const metrics = computedMetrics(r);
  const doc: Record<string, unknown> = {
    labels: e.labelFiles,
    prediction: e.predictionFiles,
    polarity: e.polarity,
    membrane_prob: e.membraneProb,
    width: e.width,
    height: e.height,
    depth: e.depth,
    metrics,
  };
  for (const m of metrics) doc[m] = r[m];
  doc.best_threshold_index = r.best_threshold_index;
  doc.best_threshold = Object.fromEntries(metrics.map((m) => [m, bestThreshold(r, m)]));
  doc.thresholds = r.thresholds;
  doc.warping_thresholds = r.warping_thresholds;
  if (o.perThreshold) doc.per_threshold = r.per_threshold;
  if (e.breakdown) doc.breakdown = e.breakdown;
  if (o.perSlice) {
    doc.per_slice = r.per_slice;
    if (e.sections) {
      doc.sections = e.sections.map((s) => ({
        index: s.index,
        file: s.source.file,
        page: s.source.page,
        ...(s.v_rand !== undefined ? { v_rand: s.v_rand } : {}),
        ...(s.v_info !== undefined ? { v_info: s.v_info } : {}),
        warping_splits: s.splits.length,
        warping_mergers: s.mergers.length,
      }));
      doc.sections_threshold = e.markThreshold;
    }
  }
  if (e.report) doc.report = e.report.path;
  return doc;
}
