/**
 * Line charts as hand-written SVG.
 *
 * Why no plotting library: the report must be one self-contained, offline, deterministic file.
 * Browser plotting libraries (Chart.js, Plotly, Vega) draw at view time with hundreds of kB of
 * inline JavaScript and cannot produce a standalone .svg from Node without a DOM; server-side
 * ones pull in a headless browser or native canvas. A chart of a dozen points with axes, ticks,
 * a legend and marked optima is ~200 lines of string building, with no new dependency.
 */

export interface Series {
  name: string;
  x: readonly number[];
  /** NaN or undefined values leave a gap in the line. */
  y: readonly (number | undefined)[];
  colour: string;
  dashed?: boolean;
  /** Index of a point to mark with a large dot (e.g. the best threshold). */
  mark?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Force the y range to include these values (e.g. 0). */
  yInclude?: number[];
  /** Tick positions on x (default: nice ticks over the x range). */
  xTicks?: readonly number[];
  /** Format x tick labels (default: shortest nice form). */
  xFormat?: (v: number) => string;
}

/** An SVG fragment with its size, so charts can be placed side by side. */
export interface Chart {
  width: number;
  height: number;
  svg: string;
}

/** Colours (Okabe-Ito palette: distinguishable with the common colour-vision deficiencies). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'] as const;

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Rounds away float noise (0.30000000000000004 -> 0.3) for display. */
export function tidy(v: number, digits = 6): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(digits)));
}

/** "Nice" tick step (1, 2 or 5 x 10^k) giving about `count` intervals over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

export function niceTicks(lo: number, hi: number, count = 5): { lo: number; hi: number; ticks: number[]; step: number } {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const start = Math.floor(lo / step + 1e-9) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start, i = 0; v <= end + step * 1e-6 && i < 100; i++, v = start + i * step) ticks.push(v);
  return { lo: start, hi: end, ticks, step };
}

/** Tick labels with the fewest digits that keep them distinct and exact; exponent form for tiny or huge steps. */
function tickLabels(ticks: number[], step: number): string[] {
  const exp = step < 1e-3 || step >= 1e6;
  let labels: string[] = [];
  for (let d = 0; d <= 12; d++) {
    labels = ticks.map((v) => (exp ? (Math.abs(v) < step * 1e-6 ? '0' : v.toExponential(d).replace('e+', 'e')) : (Math.abs(v) < step * 1e-6 ? 0 : v).toFixed(d)));
    const exact = labels.every((l, i) => Math.abs(Number(l) - ticks[i]!) <= step * 1e-3);
    if (exact && new Set(labels).size === labels.length) break;
  }
  return labels;
}

const textWidth = (s: string, px: number): number => s.length * px * 0.58;

export function lineChart(o: ChartOptions): Chart {
  const width = o.width ?? 440;
  const height = o.height ?? 280;
  const left = 64;
  const right = 14;
  const bottom = 44;
  const pw = width - left - right;
  // Legend under the title, wrapping onto more rows when the names do not fit.
  const legend: { s: Series; x: number; row: number }[] = [];
  let lx = left;
  let row = 0;
  for (const s of o.series) {
    const w = 22 + textWidth(s.name, 12) + 14;
    if (lx + w > width - right && lx > left) {
      lx = left;
      row++;
    }
    legend.push({ s, x: lx, row });
    lx += w;
  }
  const top = 48 + row * 16;
  const ph = height - top - bottom;

  const xs = o.series.flatMap((s) => s.x.filter(Number.isFinite));
  const ys = [...o.series.flatMap((s) => s.y.filter((v): v is number => v !== undefined && Number.isFinite(v))), ...(o.yInclude ?? [])];
  const xr = niceTicks(Math.min(...(xs.length ? xs : [0])), Math.max(...(xs.length ? xs : [1])), 5);
  const xlo = o.xTicks ? Math.min(...xs, ...o.xTicks) : xr.lo;
  const xhi = o.xTicks ? Math.max(...xs, ...o.xTicks) : xr.hi;
  const xTicks = o.xTicks ?? xr.ticks;
  const xFormat = o.xFormat ?? ((v: number) => tidy(v, 4));
  const yr = niceTicks(Math.min(...(ys.length ? ys : [0])), Math.max(...(ys.length ? ys : [1])), 5);
  const yLabels = tickLabels(yr.ticks, yr.step);
  const sx = (v: number): number => left + (xhi > xlo ? ((v - xlo) / (xhi - xlo)) * pw : pw / 2);
  const sy = (v: number): number => top + ph - ((v - yr.lo) / (yr.hi - yr.lo)) * ph;
  const f = (v: number): string => v.toFixed(1);

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${left}" y="18" font-size="14" font-weight="600" fill="#222">${escapeXml(o.title)}</text>`);

  for (const { s, x, row: r } of legend) {
    const ly = 36 + r * 16;
    parts.push(`<line x1="${f(x)}" y1="${ly - 4}" x2="${f(x + 18)}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${f(x + 22)}" y="${ly}" fill="#333">${escapeXml(s.name)}</text>`);
  }

  // Grid and axes.
  parts.push(`<g stroke="#e4e4e4" stroke-width="1">`);
  for (const t of yr.ticks) parts.push(`<line x1="${left}" y1="${f(sy(t))}" x2="${left + pw}" y2="${f(sy(t))}"/>`);
  for (const t of xTicks) parts.push(`<line x1="${f(sx(t))}" y1="${top}" x2="${f(sx(t))}" y2="${top + ph}"/>`);
  parts.push(`</g>`);
  parts.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  parts.push(`<g fill="#444" font-size="11">`);
  yr.ticks.forEach((t, i) => parts.push(`<text x="${left - 5}" y="${f(sy(t) + 4)}" text-anchor="end">${escapeXml(yLabels[i]!)}</text>`));
  for (const t of xTicks) parts.push(`<text x="${f(sx(t))}" y="${top + ph + 15}" text-anchor="middle">${escapeXml(xFormat(t))}</text>`);
  parts.push(`</g>`);
  parts.push(`<text x="${left + pw / 2}" y="${height - 6}" text-anchor="middle" fill="#333">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${escapeXml(o.yLabel)}</text>`);

  // Lines (split at gaps), points, then the marked optima on top.
  for (const s of o.series) {
    let path = '';
    let pen = false;
    const dots: string[] = [];
    s.x.forEach((xv, i) => {
      const yv = s.y[i];
      if (yv === undefined || !Number.isFinite(yv) || !Number.isFinite(xv)) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${f(sx(xv))} ${f(sy(yv))}`;
      pen = true;
      dots.push(`<circle cx="${f(sx(xv))}" cy="${f(sy(yv))}" r="2.2"><title>${escapeXml(`${s.name} ${tidy(yv)} at ${xFormat(xv)}`)}</title></circle>`);
    });
    parts.push(`<path d="${path}" fill="none" stroke="${s.colour}" stroke-width="2" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<g fill="${s.colour}">${dots.join('')}</g>`);
  }
  for (const s of o.series) {
    const i = s.mark;
    const yv = i === undefined ? undefined : s.y[i];
    if (i === undefined || yv === undefined || !Number.isFinite(yv)) continue;
    parts.push(`<circle cx="${f(sx(s.x[i]!))}" cy="${f(sy(yv))}" r="5.5" fill="${s.colour}" stroke="#fff" stroke-width="1.5"><title>${escapeXml(`best ${s.name}: ${tidy(yv)} at ${xFormat(s.x[i]!)}`)}</title></circle>`);
  }
  parts.push('</svg>');
  return { width, height, svg: parts.join('\n') };
}

/** Places charts on a grid in one SVG document (for the .svg report). */
export function chartGrid(charts: Chart[], columns: number, gap = 12, title?: string): Chart {
  if (charts.length === 0) {
    const empty = `<svg xmlns="http://www.w3.org/2000/svg" width="440" height="60" viewBox="0 0 440 60" ${FONT}><text x="12" y="36" font-size="14" fill="#555">no metric computed: nothing to plot</text></svg>`;
    return { width: 440, height: 60, svg: empty };
  }
  const cols = Math.max(1, Math.min(columns, charts.length));
  const cellW = Math.max(...charts.map((c) => c.width));
  const cellH = Math.max(...charts.map((c) => c.height));
  const rows = Math.ceil(charts.length / cols);
  const head = title ? 30 : 0;
  const width = cols * cellW + (cols + 1) * gap;
  const height = head + rows * cellH + (rows + 1) * gap;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`];
  parts.push(`<rect width="${width}" height="${height}" fill="#f6f6f6"/>`);
  if (title) parts.push(`<text x="${gap}" y="22" font-size="15" font-weight="600" fill="#222">${escapeXml(title)}</text>`);
  charts.forEach((c, i) => {
    const x = gap + (i % cols) * (cellW + gap);
    const y = head + gap + Math.floor(i / cols) * (cellH + gap);
    // A nested <svg> keeps each chart's own coordinate system.
    parts.push(c.svg.replace('<svg xmlns="http://www.w3.org/2000/svg"', `<svg x="${x}" y="${y}"`));
  });
  parts.push('</svg>');
  return { width, height, svg: parts.join('\n') };
}
