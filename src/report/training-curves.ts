import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EmsegError, describeError } from '../errors.js';
import { chartGrid, lineChart, PALETTE, type Chart, type Series } from './svg-plot.js';

/** The log every `emseg train` run writes into its output folder, one JSON record per line. */
export const TRAINING_LOG = 'train-log.jsonl';

const MS_PER_HOUR = 3_600_000;

/** The validation scores of a run against the training wall time spent before them. */
export interface TrainingCurve {
  name: string;
  /** Validation points in step order: step, hours of training before it, and the scores logged there. */
  points: { step: number; hours: number; scores: Record<string, number> }[];
  /** Wall hours of the whole log (last step record). */
  hours: number;
}

interface LogRecord {
  type?: unknown;
  step?: unknown;
  elapsedMs?: unknown;
  [key: string]: unknown;
}

function parseLine(line: string, path: string, n: number): LogRecord {
  try {
    const r = JSON.parse(line) as unknown;
    if (r && typeof r === 'object' && !Array.isArray(r)) return r as LogRecord;
  } catch (err) {
    throw new EmsegError('corrupt', `${path}:${n}`, `is not a JSON record (${describeError(err)})`);
  }
  throw new EmsegError('corrupt', `${path}:${n}`, 'is not a JSON object');
}

/**
 * Reads a run's training log. A validation record carries no time of its own: it is placed at the elapsed wall time
 * of the step it validated (the run's time up to those weights, earlier validations included, as a user pays it).
 * A run continued with `--resume` goes on from the elapsed time its checkpoint saved.
 */
export function readTrainingCurve(runDir: string, name = basename(runDir)): TrainingCurve {
  const path = join(runDir, TRAINING_LOG);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new EmsegError('not-found', path, `cannot read the training log (${describeError(err)}); is ${runDir} an emseg train output?`);
  }
  const stepMs = new Map<number, number>();
  const points: TrainingCurve['points'] = [];
  let lastMs = 0;
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const r = parseLine(line, path, i + 1);
    if (typeof r.step !== 'number') return;
    if (r.type === 'step' && typeof r.elapsedMs === 'number') {
      stepMs.set(r.step, r.elapsedMs);
      lastMs = Math.max(lastMs, r.elapsedMs);
    } else if (r.type === 'validation') {
      const scores = Object.fromEntries(Object.entries(r).filter(([k, v]) => k !== 'step' && typeof v === 'number')) as Record<string, number>;
      const ms = stepMs.get(r.step);
      if (ms !== undefined && Object.keys(scores).length > 0) points.push({ step: r.step, hours: ms / MS_PER_HOUR, scores });
    }
  });
  return { name, points, hours: lastMs / MS_PER_HOUR };
}

/** Metrics a curve chart can show, with their reading direction (the validation log records these two). */
export const CURVE_METRICS = { v_rand: 'V_rand (higher is better)', pixel_error: 'pixel error (lower is better)' } as const;
export type CurveMetric = keyof typeof CURVE_METRICS;

/**
 * One chart per metric, every run a line of its validation scores against training wall time, so runs of different
 * speed can be compared at equal cost (which net is best after one CPU-hour, after two).
 */
export function trainingCurvesChart(curves: readonly TrainingCurve[], metrics: readonly CurveMetric[], title: string, timeLabel: string): Chart {
  const charts = metrics.map((m) => {
    const series: Series[] = curves.map((c, i) => ({
      name: c.name,
      x: c.points.map((p) => p.hours),
      y: c.points.map((p) => p.scores[m]),
      colour: PALETTE[i % PALETTE.length]!,
      dashed: i >= PALETTE.length,
    }));
    return lineChart({ title: CURVE_METRICS[m], xLabel: timeLabel, yLabel: m, series, width: 520, height: 340 });
  });
  return chartGrid(charts, charts.length, 12, title);
}
