import type { MetricName } from '../metrics/index.js';
import { chartGrid, lineChart, PALETTE, type Chart, type Series } from '../report/svg-plot.js';
import { HIGHER_IS_BETTER, type StudySummary } from './summary.js';

/**
 * The study's SVG plots (drawn with the report's hand-written line charts): per metric, the mean over seeds with
 * its min/max band by variant, and the mean against compute (dense FLOPs per pixel), one coloured point per variant.
 */
export function renderPlots(s: StudySummary): { files: Map<string, string>; index: { metric: MetricName; byVariant: string; vsFlops: string }[] } {
  const files = new Map<string, string>();
  const index: { metric: MetricName; byVariant: string; vsFlops: string }[] = [];
  const valid = s.variants.filter((v) => !v.error);
  if (valid.length === 0) return { files, index };
  const charts: Chart[] = [];
  for (const m of s.metrics) {
    const dir = HIGHER_IS_BETTER[m] ? 'higher is better' : 'lower is better';
    const x = valid.map((_, i) => i);
    const byVariant = lineChart({
      title: `${m} by variant`, xLabel: 'variant', yLabel: `${m} (${dir})`,
      // Half a step of margin each side (unlabelled ticks), so the end points are not on the frame.
      xTicks: [-0.5, ...x, valid.length - 0.5], xFormat: (i) => (Number.isInteger(i) ? valid[i]?.name ?? '' : ''),
      width: Math.max(440, 90 * valid.length),
      series: [
        { name: `mean over seeds`, x, y: valid.map((v) => v.metrics[m]?.mean), colour: PALETTE[0] },
        { name: 'min', x, y: valid.map((v) => v.metrics[m]?.min), colour: PALETTE[5], dashed: true },
        { name: 'max', x, y: valid.map((v) => v.metrics[m]?.max), colour: PALETTE[5], dashed: true },
      ],
    });
    const series: Series[] = valid.map((v, i) => ({
      name: v.name, x: [(v.flopsPerPixel ?? NaN) / 1e6], y: [v.metrics[m]?.mean], colour: PALETTE[i % PALETTE.length]!, mark: 0,
    }));
    const vsFlops = lineChart({ title: `${m} vs compute`, xLabel: 'MFLOP per pixel (dense inference)', yLabel: `${m} (${dir})`, series });
    const a = `plots/${m}-by-variant.svg`;
    const b = `plots/${m}-vs-flops.svg`;
    files.set(a, `${byVariant.svg}\n`);
    files.set(b, `${vsFlops.svg}\n`);
    index.push({ metric: m, byVariant: a, vsFlops: b });
    charts.push(byVariant, vsFlops);
  }
  files.set('study.svg', `${chartGrid(charts, 2, 12, `Study ${s.study}`).svg}\n`);
  return { files, index };
}
