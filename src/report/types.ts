/** What an evaluation produced, as the report builders and the text/JSON formatters read it. */
import { extname } from 'node:path';
import { EmsegIoError, type LabelPolarity } from '../io/index.js';
import type { EvaluationResult, PixelPosition, WarpingBreakdown } from '../metrics/index.js';
import type { SectionSource } from './load.js';

export type ReportKind = 'html' | 'svg' | 'png';

export const REPORT_KINDS: Record<string, ReportKind> = { '.html': 'html', '.htm': 'html', '.svg': 'svg', '.png': 'png' };

/** One section's errors at the marking threshold, and its V_rand / V_info at their best thresholds. */
export interface SectionErrors {
  index: number;
  source: SectionSource;
  splits: PixelPosition[];
  mergers: PixelPosition[];
  v_rand?: number;
  v_info?: number;
}

export interface EvaluateFilesResult {
  labelFiles: string[];
  predictionFiles: string[];
  imageFiles?: string[];
  polarity: LabelPolarity;
  membraneProb: boolean;
  width: number;
  height: number;
  depth: number;
  result: EvaluationResult;
  /** Per-section warping errors (with a report or `analyseSections`). */
  sections?: SectionErrors[];
  /** Threshold the section errors are located at: the best warping threshold, else 0.5. */
  markThreshold?: number;
  /** The warping error by kind of event (with `breakdown`), at the best warping threshold. */
  breakdown?: WarpingBreakdown;
  /** The report written, if any. */
  report?: { path: string; kind: ReportKind; bytes: number };
}

export function reportKind(path: string): ReportKind {
  const kind = REPORT_KINDS[extname(path).toLowerCase()];
  if (!kind) throw new EmsegIoError('unsupported', path, 'report must end in .html (everything), .svg (threshold plots) or .png (error-overlay mosaic)');
  return kind;
}

