import { OP_PREFIX } from '../backend/profile.js';
import type { Profile } from '../util/profile.js';
import { PREDICT_STEPS } from './predict.js';

/** Whole sections' gap closing, timed by the prediction jobs. */
export const CLOSE_GAPS_STEP = 'predict:close-gaps';

export interface BreakdownRow {
  /** What the time went to; ops are the backend's kernels inside the network step. */
  step: string;
  ms: number;
  /** Of the wall time. */
  share: number;
  calls: number;
  /** Rows inside this one (the network's ops). */
  parts?: BreakdownRow[];
}

const STEP_LABELS: Readonly<Record<string, string>> = {
  [PREDICT_STEPS.read]: 'read tile windows (mirrored, transformed)',
  [PREDICT_STEPS.network]: 'network forward passes',
  [PREDICT_STEPS.place]: 'place kept outputs (transform undone)',
  [PREDICT_STEPS.average]: 'average ensemble / TTA',
  [CLOSE_GAPS_STEP]: 'close gaps (watershed)',
};

/**
 * Where a prediction's wall time went: the tile steps, the network's ops inside them (the rest of the network step
 * is JS between ops), and what is left: decoding, writing and scheduling, measured as the remainder of `wallMs`.
 */
export function predictBreakdown(profile: Profile, wallMs: number): BreakdownRow[] {
  const row = (step: string, ms: number, calls: number): BreakdownRow => ({ step, ms, calls, share: wallMs > 0 ? ms / wallMs : 0 });
  const steps = Object.keys(STEP_LABELS).flatMap((name) => profile.entries(name).filter((e) => e.name === name));
  const rows = steps.map((e) => row(STEP_LABELS[e.name]!, e.ms, e.calls));
  const network = steps.find((e) => e.name === PREDICT_STEPS.network);
  const ops = profile.entries(OP_PREFIX);
  if (network) {
    const parts = ops.map((e) => row(e.name.slice(OP_PREFIX.length), e.ms, e.calls));
    const inOps = ops.reduce((s, e) => s + e.ms, 0);
    parts.push(row('between ops (JS)', Math.max(0, network.ms - inOps), network.calls));
    rows[steps.indexOf(network)]!.parts = parts;
  }
  const counted = steps.reduce((s, e) => s + e.ms, 0);
  rows.push(row('other: decode, write, scheduling', Math.max(0, wallMs - counted), 1));
  return rows;
}

/** The breakdown as text, one row a line, the network's ops indented under it. */
export function formatBreakdown(rows: readonly BreakdownRow[], wallMs: number): string {
  const line = (r: BreakdownRow, indent: string) =>
    `${indent}${r.step.padEnd(44 - indent.length)} ${(r.ms / 1e3).toFixed(3).padStart(9)} s ${(100 * r.share).toFixed(1).padStart(5)} %  (${r.calls} calls)\n`;
  let text = `wall time ${(wallMs / 1e3).toFixed(3)} s\n`;
  for (const r of rows) {
    text += line(r, '  ');
    for (const p of r.parts ?? []) text += line(p, '      ');
  }
  return text;
}
