/** Evaluation reports: `evaluateFiles` (load, score, locate errors, write a report), text/JSON output, SVG charts, RGBA overlays. */
export { evaluateFiles, reportKind, DEFAULT_MARK_THRESHOLD, REPORT_KINDS } from './evaluate-files.js';
export type { EvaluateFilesOptions, EvaluateFilesResult, SectionErrors } from './evaluate-files.js';
export { buildReport, worstSections } from './build.js';
export type { ReportKind } from './build.js';
export { formatPerThreshold, formatSections, formatSummary, table, toJson, HIGHER_IS_BETTER } from './text.js';
export type { JsonOptions } from './text.js';
export { lineChart, chartGrid } from './svg-plot.js';
export type { Chart, ChartOptions, Series } from './svg-plot.js';
export { errorOverlay, mosaic, SPLIT_COLOUR, MERGER_COLOUR } from './overlay.js';
export type { RgbaImage } from './overlay.js';
export { encodeRgbaPng } from './png.js';
export { loadInputs } from './load.js';
