/** Evaluation reports: text/JSON output, SVG charts, RGBA overlays, HTML; `emseg eval`'s job is pipeline/evaluate.ts. */
export { reportKind, REPORT_KINDS } from './types.js';
export type { EvaluateFilesResult, SectionErrors } from './types.js';
export { buildReport, worstSections } from './build.js';
export type { ReportKind } from './types.js';
export { formatBreakdown, formatPerThreshold, formatSections, formatSummary, table, toJson, HIGHER_IS_BETTER } from './text.js';
export type { JsonOptions } from './text.js';
export { lineChart, chartGrid } from './svg-plot.js';
export type { Chart, ChartOptions, Series } from './svg-plot.js';
export { errorOverlay, mosaic, SPLIT_COLOUR, MERGER_COLOUR } from './overlay.js';
export type { RgbaImage } from './overlay.js';
export { encodeRgbaPng } from './png.js';
export { loadInputs } from './load.js';
export { formatNeuronEvaluation, neuronEvaluationJson } from './neuron-text.js';
export type { NeuronEvaluation } from './neuron-text.js';
