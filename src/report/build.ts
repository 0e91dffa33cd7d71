/** Builds the report file's bytes for each kind: .html (everything), .svg (plots), .png (overlay mosaic). */
import { basename } from 'node:path';
import { sliceOf, type ImageStack } from '../image/stack.js';
import { sectionCharts, thresholdCharts } from './charts.js';
import type { EvaluateFilesResult, ReportKind, SectionErrors } from './types.js';
import { renderHtml, type SectionFigure } from './html.js';
import { errorOverlay, mosaic, mosaicColumns, type RgbaImage } from './overlay.js';
import { encodeRgbaPng } from './png.js';
import { chartGrid, tidy } from './svg-plot.js';
import { EmsegError } from '../errors.js';


export interface ReportData {
  gt: ImageStack<Uint8Array>;
  /** P(non-membrane), the overlays' background when there are no raw images. */
  proposal: ImageStack<Float32Array>;
  images?: ImageStack<Float32Array>;
  /** Most sections drawn, the worst first. */
  maxSections: number;
}

/** Sections ordered worst first: most warping errors, then lowest V_rand, then lowest index. */
export function worstSections(sections: readonly SectionErrors[], max: number): SectionErrors[] {
  const errors = (s: SectionErrors): number => s.splits.length + s.mergers.length;
  const vr = (s: SectionErrors): number => (s.v_rand === undefined || Number.isNaN(s.v_rand) ? 1 : s.v_rand);
  return [...sections].sort((a, b) => errors(b) - errors(a) || vr(a) - vr(b) || a.index - b.index).slice(0, Math.max(0, max));
}

/** A section's background in [0, 1]: raw EM stretched to its own min..max, or the prediction as is. */
function background(data: ReportData, z: number): Float32Array {
  if (!data.images) return sliceOf(data.proposal, z);
  const s = sliceOf(data.images, z);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of s) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) return s;
  return Float32Array.from(s, (v) => (v - lo) / (hi - lo));
}

export function sectionOverlay(data: ReportData, s: SectionErrors): RgbaImage {
  const { width, height } = data.proposal;
  return errorOverlay({ base: background(data, s.index), width, height, splits: s.splits, mergers: s.mergers });
}

function legendText(e: EvaluateFilesResult, shown: readonly SectionErrors[]): Record<string, string> {
  const bg = e.imageFiles ? 'raw EM image' : 'prediction P(non-membrane)';
  return {
    Title: 'emseg eval: warping errors per section',
    Description: `Sections ${shown.map((s) => s.index).join(', ')} (worst first, left to right, top to bottom) on the ${bg} in grey; `
      + `split pixels in orange-red, merger pixels in sky blue, each ringed; threshold ${tidy(e.markThreshold ?? NaN, 4)}.`,
    Labels: e.labelFiles.join(', '),
    Prediction: e.predictionFiles.join(', '),
  };
}

export function buildReport(kind: ReportKind, e: EvaluateFilesResult, data: ReportData): Uint8Array {
  const sections = e.sections ?? [];
  const charts = { threshold: thresholdCharts(e.result), section: sectionCharts(e.result, sections, e.markThreshold ?? NaN) };
  const shown = worstSections(sections, data.maxSections);
  if (kind === 'svg') {
    return new TextEncoder().encode(chartGrid([...charts.threshold, ...charts.section], 2, 12, `emseg eval: ${basename(e.predictionFiles[0]!)} against ${basename(e.labelFiles[0]!)}`).svg + '\n');
  }
  if (kind === 'png') {
    if (shown.length === 0) throw new EmsegError('invalid-option', 'reportSections', 'is 0: no section to draw');
    const tiles = shown.map((s) => sectionOverlay(data, s));
    // Latin-1 only in tEXt chunks.
    const text = Object.fromEntries(Object.entries(legendText(e, shown)).map(([k, v]) => [k, v.replace(/[^\x20-\xff]/g, '?')]));
    return encodeRgbaPng(mosaic(tiles, mosaicColumns(tiles.length)), text);
  }
  const figures: SectionFigure[] = shown.map((s) => ({ section: s, png: encodeRgbaPng(sectionOverlay(data, s)) }));
  return new TextEncoder().encode(renderHtml(e, charts, figures));
}
