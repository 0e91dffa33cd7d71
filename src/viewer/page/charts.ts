/** Training curves and study bars as SVG, drawn from the numbers (no pictures pasted in). Text goes in as text. */
import type { StudyChart, TrainingCurves } from '../protocol.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 150;
const PAD = 28;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function chart(title: string): SVGSVGElement {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  svg.append(el('text', { x: PAD, y: 11 }, title));
  svg.append(el('line', { x1: PAD, y1: H - PAD, x2: W - 4, y2: H - PAD, class: 'axis' }));
  svg.append(el('line', { x1: PAD, y1: 16, x2: PAD, y2: H - PAD, class: 'axis' }));
  return svg;
}

function range(values: number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return finite.length === 0 ? [0, 1] : hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
}

/** One polyline of (x, y) points scaled into the chart; returns the y range for the axis labels. */
function line(svg: SVGSVGElement, pts: [number, number][], xr: [number, number], yr: [number, number], cls: string): void {
  const sx = (x: number) => PAD + ((x - xr[0]) / (xr[1] - xr[0] || 1)) * (W - PAD - 4);
  const sy = (y: number) => H - PAD - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * (H - PAD - 16);
  const points = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  svg.append(el('polyline', { points, class: cls, 'data-points': pts.length }));
}

function axisLabels(svg: SVGSVGElement, xr: [number, number], yr: [number, number], xName: string): void {
  svg.append(el('text', { x: 2, y: 20 }, yr[1].toPrecision(3)));
  svg.append(el('text', { x: 2, y: H - PAD }, yr[0].toPrecision(3)));
  svg.append(el('text', { x: PAD, y: H - PAD + 12 }, String(xr[0])));
  svg.append(el('text', { x: W - 40, y: H - PAD + 12 }, String(xr[1])));
  svg.append(el('text', { x: W / 2 - 10, y: H - 4 }, xName));
}

export function drawTraining(box: HTMLElement, t: TrainingCurves): void {
  box.replaceChildren();
  const steps = t.steps.map((s) => s.step);
  const xr = range([...steps, ...t.validation.map((v) => v.step)]);
  const loss = chart(`loss (${t.steps.length} steps)`);
  const yr = range(t.steps.map((s) => s.loss));
  line(loss, t.steps.map((s) => [s.step, s.loss]), xr, yr, 'loss');
  axisLabels(loss, xr, yr, 'step');
  loss.id = 'loss-chart';
  box.append(loss);
  if (t.validation.length === 0) return;
  const val = chart('validation: pixel error (blue), V_rand (green)');
  val.id = 'validation-chart';
  const vr: [number, number] = [0, 1];
  for (const m of ['pixel_error', 'v_rand'] as const) {
    const pts = t.validation.filter((v) => v[m] !== undefined).map((v): [number, number] => [v.step, v[m]!]);
    if (pts.length) line(val, pts, xr, vr, m);
  }
  axisLabels(val, xr, vr, 'step');
  box.append(val);
}

/** One bar chart per metric: each variant's mean, with a whisker of one standard deviation. */
export function drawStudy(box: HTMLElement, s: StudyChart): void {
  box.replaceChildren();
  const title = document.createElement('p');
  title.textContent = s.study;
  box.append(title);
  for (const metric of s.metrics) {
    const svg = chart(metric);
    svg.dataset.metric = metric;
    const stats = s.variants.map((v) => v.metrics[metric]);
    const yr = range(stats.flatMap((st) => (st ? [0, st.mean + (st.sd ?? 0)] : [])));
    const slot = (W - PAD - 4) / Math.max(1, s.variants.length);
    const sy = (y: number) => H - PAD - ((y - yr[0]) / (yr[1] - yr[0] || 1)) * (H - PAD - 16);
    s.variants.forEach((v, i) => {
      const st = stats[i];
      const x = PAD + i * slot + slot * 0.15;
      if (st) {
        svg.append(el('rect', { x, y: sy(st.mean), width: slot * 0.7, height: Math.max(0, sy(yr[0]) - sy(st.mean)), class: 'bar' }));
        if (st.sd !== null) svg.append(el('line', { x1: x + slot * 0.35, x2: x + slot * 0.35, y1: sy(st.mean - st.sd), y2: sy(st.mean + st.sd), class: 'whisker' }));
      }
      svg.append(el('text', { x, y: H - PAD + 12 }, v.name));
    });
    svg.append(el('text', { x: 2, y: 20 }, yr[1].toPrecision(3)));
    box.append(svg);
  }
}
