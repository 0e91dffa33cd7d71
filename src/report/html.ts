/** A self-contained HTML report: inline CSS, inline SVG charts, overlay PNGs as data URIs; no scripts, no external files. */
import type { EvaluateFilesResult, SectionErrors } from './types.js';
import { MERGER_CSS, SPLIT_CSS } from './overlay.js';
import { pngDataUri } from './png.js';
import { escapeXml as esc, tidy, type Chart } from './svg-plot.js';
import { typedPath } from '../util/paths.js';
import { bestThreshold, computedMetrics, formatPerThreshold, HIGHER_IS_BETTER, sectionSource } from './text.js';

export interface SectionFigure {
  section: SectionErrors;
  png: Uint8Array;
}

const DESCRIPTIONS: Record<string, string> = {
  pixel_error: '1 − best pixel F-score (membrane vs. interior)',
  rand_error: '1 − best foreground-restricted Rand F-score',
  warping_error: 'lowest (splits + mergers) / pixels, topology-aware',
  v_rand: 'best mean per-section Rand score of the thinned segmentation',
  v_info: 'best mean per-section information-theoretic score',
};

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 6px 0; } th, td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f4f4f4; }
table.inputs td:first-child { color: #666; } code { font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts svg { border: 1px solid #e2e2e2; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; } figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ccc; image-rendering: pixelated; }
figcaption { font-size: 13px; margin-top: 4px; max-width: 520px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 50%; vertical-align: -1px; margin: 0 3px 0 8px; }
.note { color: #555; } details { margin: 8px 0; } summary { cursor: pointer; color: #333; }
pre { background: #f8f8f8; padding: 8px; overflow-x: auto; font-size: 12px; }
`;

/** A file as the report names it: as typed, an absolute path relative to the working folder (util/paths.ts). */
const file = (path: string): string => esc(typedPath(path));
const list = (files: readonly string[]): string =>
  files.length === 1 ? file(files[0]!) : `${file(files[0]!)} … ${file(files.at(-1)!)} (${files.length} files)`;
const num = (v: number | undefined): string => (v === undefined ? '' : Number.isNaN(v) ? 'n/a' : v.toFixed(6));

function summary(e: EvaluateFilesResult): string {
  const r = e.result;
  const rows = computedMetrics(r).map((m) => {
    const th = bestThreshold(r, m)!;
    return `<tr><td><code>${m}</code></td><td class="n"><b>${num(r[m])}</b></td><td class="n">${tidy(th, 4)}</td><td>${HIGHER_IS_BETTER[m] ? 'higher' : 'lower'}</td><td class="note">${esc(DESCRIPTIONS[m]!)}</td></tr>`;
  });
  return `<table><tr><th>metric</th><th class="n">value</th><th class="n">best threshold</th><th>better</th><th></th></tr>${rows.join('')}</table>`;
}

function sectionTable(e: EvaluateFilesResult, shown: ReadonlySet<number>): string {
  const sections = e.sections ?? [];
  const hasVr = sections.some((s) => s.v_rand !== undefined);
  const hasVi = sections.some((s) => s.v_info !== undefined);
  const head = `<tr><th class="n">section</th><th>file</th>${hasVr ? '<th class="n">V_rand</th>' : ''}${hasVi ? '<th class="n">V_info</th>' : ''}<th class="n">splits</th><th class="n">mergers</th></tr>`;
  const rows = sections.map((s) => {
    const name = shown.has(s.index) ? `<a href="#section-${s.index}">${s.index}</a>` : String(s.index);
    return `<tr><td class="n">${name}</td><td>${file(sectionSource(e, s))}</td>${hasVr ? `<td class="n">${num(s.v_rand)}</td>` : ''}${hasVi ? `<td class="n">${num(s.v_info)}</td>` : ''}<td class="n">${s.splits.length}</td><td class="n">${s.mergers.length}</td></tr>`;
  });
  return `<table>${head}${rows.join('')}</table>`;
}

function figure(e: EvaluateFilesResult, f: SectionFigure, width: number, height: number): string {
  const s = f.section;
  const scores = [s.v_rand !== undefined ? `V_rand ${num(s.v_rand)}` : '', s.v_info !== undefined ? `V_info ${num(s.v_info)}` : ''].filter(Boolean).join(', ');
  const alt = `section ${s.index}: ${s.splits.length} split and ${s.mergers.length} merger pixels marked`;
  return `<figure id="section-${s.index}"><img src="${pngDataUri(f.png)}" width="${width}" height="${height}" alt="${esc(alt)}">`
    + `<figcaption><b>section ${s.index}</b> <span class="note">(${file(sectionSource(e, s))})</span><br>`
    + `<span class="swatch" style="background:${SPLIT_CSS}"></span>${s.splits.length} splits`
    + `<span class="swatch" style="background:${MERGER_CSS}"></span>${s.mergers.length} mergers${scores ? `; ${scores}` : ''}</figcaption></figure>`;
}

/** PNG width and height from its IHDR (to size the <img> before it loads). */
function pngSize(png: Uint8Array): [number, number] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
}

export interface ReportCharts {
  /** Scores against threshold. */
  threshold: readonly Chart[];
  /** Scores per section. */
  section: readonly Chart[];
}

export function renderHtml(e: EvaluateFilesResult, charts: ReportCharts, figures: readonly SectionFigure[]): string {
  const r = e.result;
  const sections = e.sections ?? [];
  const bw = r.best_threshold_index.warping_error;
  const markNote = bw !== undefined
    ? `at the best warping threshold t = ${tidy(e.markThreshold!, 4)}`
    : `at t = ${tidy(e.markThreshold ?? NaN, 4)} (warping_error was not computed, so there is no best warping threshold)`;
  const bg = e.imageFiles ? `the raw EM image (${list(e.imageFiles)})` : 'the prediction P(non-membrane) (dark = membrane)';
  const shown = new Set(figures.map((f) => f.section.index));
  const capped = figures.length < sections.length
    ? ` Showing the ${figures.length} sections with the most errors of ${sections.length}; the table lists all.`
    : '';

  const parts = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>emseg eval: ${file(e.predictionFiles[0]!)}</title>`,
    `<style>${CSS}</style></head><body>`,
    '<h1>Membrane segmentation evaluation</h1>',
    '<table class="inputs">',
    `<tr><td>labels</td><td>${list(e.labelFiles)} <span class="note">(${esc(e.polarity)})</span></td></tr>`,
    `<tr><td>prediction</td><td>${list(e.predictionFiles)} <span class="note">(${e.membraneProb ? 'P(membrane), flipped to P(non-membrane)' : 'P(non-membrane)'})</span></td></tr>`,
    ...(e.imageFiles ? [`<tr><td>images</td><td>${list(e.imageFiles)}</td></tr>`] : []),
    `<tr><td>size</td><td>${e.width} × ${e.height}, ${e.depth} section${e.depth === 1 ? '' : 's'}</td></tr>`,
    '</table>',
    '<h2>Scores</h2>',
    summary(e),
    '<p class="note">ISBI 2012 challenge metrics. Each is computed at every threshold; the value is the best over thresholds. '
      + 'A pixel is foreground (non-membrane) when P(non-membrane) &gt; t.</p>',
    '<h2>Scores against threshold</h2>',
    `<div class="charts">${charts.threshold.map((c) => c.svg).join('\n')}</div>`,
    `<details><summary>Values per threshold</summary><pre>${esc(formatPerThreshold(r))}</pre></details>`,
  ];
  if (sections.length) {
    parts.push(
      '<h2>Sections</h2>',
      ...(charts.section.length ? [`<div class="charts">${charts.section.map((c) => c.svg).join('\n')}</div>`] : []),
      `<details${sections.length <= 40 ? ' open' : ''}><summary>Scores per section</summary>${sectionTable(e, shown)}`
        + `<p class="note">V_rand and V_info at their best thresholds; warping splits and mergers ${markNote}.</p></details>`,
      '<h2>Where the errors are</h2>',
      `<p>Each section on ${bg} in grey, with the pixels the warping error counts ${markNote}:`
        + `<span class="swatch" style="background:${SPLIT_CSS}"></span>splits (a true segment cut in two)`
        + `<span class="swatch" style="background:${MERGER_CSS}"></span>mergers (two true segments joined). `
        + `Each cluster of marked pixels is ringed so that single pixels stand out. Worst sections first.${capped}</p>`,
      `<div class="figures">${figures.map((f) => figure(e, f, ...pngSize(f.png))).join('\n')}</div>`,
    );
  }
  parts.push('<p class="note" style="margin-top:32px">Generated by <code>emseg eval</code>.</p>', '</body></html>', '');
  return parts.join('\n');
}

