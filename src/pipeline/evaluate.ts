/**
 * `evaluateFiles`: the whole of `emseg eval` without the command line: load labels and prediction,
 * score them, locate each section's warping errors and write the report. The CLI only parses
 * options and prints.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_POLARITY, EmsegIoError, type LabelPolarity } from '../io/index.js';
import { MEMBRANE_POLARITY } from '../image/map-meaning.js';
import {
  DEFAULT_SMALL_CELL_AREA, evaluateStacks, warpingBreakdown, warpingErrorLocations, type MetricName,
} from '../metrics/index.js';
import { buildReport, loadInputs, reportKind, type EvaluateFilesResult, type SectionErrors } from '../report/index.js';
import { writeFileAtomic } from '../io/atomic.js';

/** Threshold for the error marks when warping_error was not computed. */
export const DEFAULT_MARK_THRESHOLD = 0.5;

export interface EvaluateFilesOptions {
  /** Label stack: file, folder, glob or list. */
  labels: string | readonly string[];
  /** Prediction stack, same forms: P(non-membrane) in [0, 1] (ISBI), or P(membrane) with `membraneProb` or as its record says. */
  prediction: string | readonly string[];
  /** Raw EM stack to show under the error marks in the report (default: the prediction). */
  images?: string | readonly string[];
  /** How the raw images become [0,1] for display (an --intensity rule; default: divided by the type's full range). */
  imagesIntensity?: string;
  /** Reduce colour raw images to their luma instead of refusing them. */
  imagesToGrey?: boolean;
  /** The prediction is a 2-D cell segmentation (label stack), scored as the map of where its cells meet. */
  cells?: boolean;
  /** The prediction holds P(membrane) (1 = membrane): flip it. */
  membraneProb?: boolean;
  /**
   * How the labels encode membrane. Omitted: the ISBI default ('membrane-0-interior-255'), and labels that then read
   * as mostly membrane are refused (code 'polarity'); given: such labels only get a warning through `notice`.
   */
  polarity?: LabelPolarity;
  /** The prediction is a membrane map even if its values are spread like a raw image's (else refused: 'not-a-map'). */
  predIsMap?: boolean;
  /** Warnings for the user (the CLI prints them on stderr). */
  notice?: (line: string) => void;
  /** Metrics to compute (default all five). */
  metrics?: MetricName[];
  /** Write a report: .html (everything), .svg (plots) or .png (error-overlay mosaic). */
  report?: string;
  /** Replace an existing report. */
  overwrite?: boolean;
  /** Locate the warping errors of every section even without a report (per-section detail). */
  analyseSections?: boolean;
  /** Most sections shown as images in a report, the worst first (default 30). */
  reportSections?: number;
  /**
   * Break the warping error down by kind of event (docs/MODELS.md, "The warping error by kind") at its best
   * threshold; the number is the area (pixels) below which a labelled cell counts as small (true:
   * DEFAULT_SMALL_CELL_AREA).
   */
  breakdown?: boolean | number;
  onProgress?: (phase: 'load' | 'metrics' | 'sections', done: number, total: number) => void;
}

function refuseExisting(path: string, overwrite: boolean): void {
  if (!overwrite && existsSync(path)) throw new EmsegIoError('exists', path, 'report already exists; pass --overwrite (overwrite: true) to replace it');
}

/** Loads, scores and (optionally) reports; see EvaluateFilesOptions. */
export async function evaluateFiles(o: EvaluateFilesOptions): Promise<EvaluateFilesResult> {
  // Cheap checks first: a bad report path should not cost a whole evaluation.
  const kind = o.report === undefined ? undefined : reportKind(o.report);
  if (o.report !== undefined) refuseExisting(o.report, o.overwrite ?? false);
  const polarity = o.polarity ?? DEFAULT_POLARITY;

  const inputs = await loadInputs({ ...o, onProgress: (d, t) => o.onProgress?.('load', d, t) });
  const { gt, proposal } = inputs;
  const result = evaluateStacks(gt, proposal, { metrics: o.metrics, onProgress: (d, t) => o.onProgress?.('metrics', d, t) });

  const out: EvaluateFilesResult = {
    labelFiles: inputs.labelFiles,
    predictionFiles: inputs.predictionFiles,
    ...(inputs.imageFiles ? { imageFiles: inputs.imageFiles } : {}),
    polarity,
    membraneProb: inputs.mapPolarity === MEMBRANE_POLARITY,
    width: gt.width,
    height: gt.height,
    depth: gt.depth,
    result,
  };

  if (o.breakdown !== undefined && o.breakdown !== false) {
    const bw = result.best_threshold_index.warping_error;
    const threshold = bw === undefined ? DEFAULT_MARK_THRESHOLD : result.warping_thresholds[bw]!;
    out.breakdown = warpingBreakdown(gt, proposal, threshold, o.breakdown === true ? DEFAULT_SMALL_CELL_AREA : o.breakdown);
  }

  if (o.report !== undefined || o.analyseSections) {
    const bw = result.best_threshold_index.warping_error;
    const threshold = bw === undefined ? DEFAULT_MARK_THRESHOLD : result.warping_thresholds[bw]!;
    const bv = result.best_threshold_index.v_rand;
    const bi = result.best_threshold_index.v_info;
    const sections: SectionErrors[] = [];
    for (let z = 0; z < gt.depth; z++) {
      const loc = warpingErrorLocations(gt, proposal, z, threshold);
      sections.push({
        index: z,
        source: inputs.sources[z]!,
        splits: loc.splits,
        mergers: loc.mergers,
        ...(bv !== undefined ? { v_rand: result.per_slice.v_rand![bv]![z]! } : {}),
        ...(bi !== undefined ? { v_info: result.per_slice.v_info![bi]![z]! } : {}),
      });
      o.onProgress?.('sections', z + 1, gt.depth);
    }
    out.sections = sections;
    out.markThreshold = threshold;
  }

  if (o.report !== undefined) {
    const bytes = buildReport(kind!, out, { gt, proposal, images: inputs.images, maxSections: o.reportSections ?? 30 });
    refuseExisting(o.report, o.overwrite ?? false); // it may have appeared while we computed
    writeFileAtomic(o.report, bytes);
    out.report = { path: o.report, kind: kind!, bytes: bytes.length };
  }
  return out;
}
