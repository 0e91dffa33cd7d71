/** The report's charts: scores against threshold, and per-section scores. */
import type { EvaluationResult } from '../metrics/index.js';
import type { SectionErrors } from './types.js';
import { lineChart, niceTicks, PALETTE, type Chart, type Series } from './svg-plot.js';

const oneMinus = (v: readonly number[] | undefined): number[] | undefined => v?.map((x) => 1 - x);

/** Scores against threshold: one chart per family of metrics that was computed. */
export function thresholdCharts(r: EvaluationResult): Chart[] {
  const pt = r.per_threshold;
  const b = r.best_threshold_index;
  const x = r.thresholds;
  const charts: Chart[] = [];
  const xLabel = 'threshold (foreground: P(non-membrane) > t)';

  const errors: Series[] = [];
  const pixel = oneMinus(pt.pixel_fscore);
  const rand = oneMinus(pt.rand_fscore);
  if (pixel) errors.push({ name: 'pixel_error', x, y: pixel, colour: PALETTE[0], mark: b.pixel_error });
  if (rand) errors.push({ name: 'rand_error', x, y: rand, colour: PALETTE[1], mark: b.rand_error });
  if (errors.length) {
    charts.push(lineChart({ title: 'Pixel and Rand error (1 − F-score) ↓', xLabel, yLabel: 'error', series: errors, yInclude: [0] }));
  }
  if (pt.warping_splits && pt.warping_mergers) {
    const wx = r.warping_thresholds;
    const total = pt.warping_splits.map((s, i) => s + pt.warping_mergers![i]!);
    charts.push(lineChart({
      title: 'Warping errors (pixels) ↓',
      xLabel,
      yLabel: 'pixels',
      series: [
        // The total last, so that it is drawn on top.
        { name: 'splits', x: wx, y: pt.warping_splits, colour: PALETTE[1], dashed: true },
        { name: 'mergers', x: wx, y: pt.warping_mergers, colour: PALETTE[0], dashed: true },
        { name: 'splits + mergers', x: wx, y: total, colour: PALETTE[6], mark: b.warping_error },
      ],
      yInclude: [0],
    }));
  }
  const info: Series[] = [];
  if (pt.v_rand) info.push({ name: 'V_rand', x, y: pt.v_rand, colour: PALETTE[2], mark: b.v_rand });
  if (pt.v_info) info.push({ name: 'V_info', x, y: pt.v_info, colour: PALETTE[3], mark: b.v_info });
  if (info.length) charts.push(lineChart({ title: 'V_rand and V_info ↑', xLabel, yLabel: 'score', series: info }));
  if (pt.rand_merge && pt.rand_split) {
    charts.push(lineChart({
      title: 'Rand precision and recall ↑',
      xLabel,
      yLabel: 'score',
      series: [
        { name: 'precision (low = mergers)', x, y: pt.rand_merge, colour: PALETTE[0] },
        { name: 'recall (low = splits)', x, y: pt.rand_split, colour: PALETTE[1] },
      ],
    }));
  }
  return charts;
}

function sectionTicks(depth: number): number[] {
  const { ticks } = niceTicks(0, Math.max(1, depth - 1), Math.min(8, Math.max(1, depth - 1)));
  return ticks.filter((t) => Number.isInteger(t) && t < depth);
}

/** Per-section scores at the best thresholds (V_rand / V_info) and the marking threshold (warping). */
export function sectionCharts(r: EvaluationResult, sections: readonly SectionErrors[], markThreshold: number): Chart[] {
  if (sections.length < 2) return [];
  const x = sections.map((s) => s.index);
  const xTicks = sectionTicks(sections.length);
  const xFormat = (v: number): string => String(v);
  const charts: Chart[] = [
    lineChart({
      title: `Warping errors per section (t = ${markThreshold.toFixed(2)}) ↓`,
      xLabel: 'section',
      yLabel: 'pixels',
      series: [
        { name: 'splits', x, y: sections.map((s) => s.splits.length), colour: PALETTE[1] },
        { name: 'mergers', x, y: sections.map((s) => s.mergers.length), colour: PALETTE[0] },
      ],
      yInclude: [0],
      xTicks,
      xFormat,
    }),
  ];
  const series: Series[] = [];
  if (r.best_threshold_index.v_rand !== undefined) series.push({ name: 'V_rand', x, y: sections.map((s) => s.v_rand), colour: PALETTE[2] });
  if (r.best_threshold_index.v_info !== undefined) series.push({ name: 'V_info', x, y: sections.map((s) => s.v_info), colour: PALETTE[3] });
  if (series.length) {
    charts.push(lineChart({ title: 'V_rand and V_info per section (best t) ↑', xLabel: 'section', yLabel: 'score', series, xTicks, xFormat }));
  }
  return charts;
}
