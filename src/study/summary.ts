import type { MetricName } from '../metrics/index.js';
import type { RunResult } from './run.js';
import type { ResolvedStudy } from './schema.js';
import type { VariantPlan } from './variants.js';

/** Mean and spread over seeds. `sd` is the sample standard deviation (n - 1); null with fewer than two runs. */
export interface Stat {
  mean: number;
  sd: number | null;
  min: number;
  max: number;
  n: number;
}

export interface RunRecord {
  variant: string;
  seed: number;
  dir: string;
  status: 'done' | 'failed' | 'interrupted' | 'pending';
  /** true when the result was found from an earlier invocation. */
  reused?: boolean;
  error?: string;
  result?: RunResult;
}

export interface VariantSummary {
  name: string;
  description: string;
  model: string;
  error?: string;
  params?: number;
  /** Dense whole-image inference, forward FLOPs per output pixel. */
  flopsPerPixel?: number;
  receptiveField?: number;
  window?: number | null;
  runs: { done: number; failed: number; total: number };
  trainingMs?: Stat;
  steps?: Stat;
  metrics: Partial<Record<MetricName, Stat>>;
}

export interface StudySummary {
  study: string;
  description: string;
  file: string | null;
  spread: string;
  budget: ResolvedStudy['budget'];
  seeds: number[];
  metrics: MetricName[];
  training: ResolvedStudy['training'];
  data: ResolvedStudy['data'];
  expectations: string[];
  variants: VariantSummary[];
  runs: RunRecord[];
  updatedAt: string;
}

/** Lower is better for the error metrics, higher for V_rand / V_info. */
export const HIGHER_IS_BETTER: Record<MetricName, boolean> = {
  pixel_error: false, rand_error: false, warping_error: false, v_rand: true, v_info: true,
};

export const SPREAD = 'mean ± sample standard deviation over seeds (n - 1 in the denominator); min and max also given';

export function stat(values: readonly number[]): Stat | undefined {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return undefined;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : null;
  return { mean, sd, min: Math.min(...v), max: Math.max(...v), n: v.length };
}

export function summarizeStudy(study: ResolvedStudy, file: string | null, plans: readonly VariantPlan[], runs: readonly RunRecord[],
  expectations: string[]): StudySummary {
  const variants = plans.map((p): VariantSummary => {
    const mine = runs.filter((r) => r.variant === p.name);
    const done = mine.filter((r) => r.status === 'done' && r.result).map((r) => r.result!);
    const metrics: Partial<Record<MetricName, Stat>> = {};
    for (const m of study.metrics) {
      const s = stat(done.map((r) => r.metrics[m] ?? NaN));
      if (s) metrics[m] = s;
    }
    return {
      name: p.name, description: p.description, model: p.model, ...(p.error ? { error: p.error } : {}),
      ...(p.summary ? { params: p.summary.params, flopsPerPixel: p.summary.flopsPerPixel, receptiveField: p.summary.receptiveField,
        window: p.summary.window } : {}),
      runs: { done: done.length, failed: mine.filter((r) => r.status === 'failed').length, total: mine.length },
      trainingMs: stat(done.map((r) => r.trainingMs)), steps: stat(done.map((r) => r.steps)), metrics,
    };
  });
  return { study: study.name, description: study.description ?? '', file, spread: SPREAD, budget: study.budget, seeds: study.seeds,
    metrics: study.metrics, training: study.training, data: study.data, expectations, variants, runs: [...runs],
    updatedAt: new Date().toISOString() };
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 0.01 ? v.toFixed(4) : v.toExponential(2);
}

export function formatStat(s: Stat | undefined): string {
  if (!s) return '–';
  const sd = s.sd === null ? '' : ` ± ${fmt(s.sd)}`;
  const range = s.n > 1 ? ` (${fmt(s.min)}–${fmt(s.max)})` : '';
  return `${fmt(s.mean)}${sd}${range}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function studyMarkdown(s: StudySummary, plotFiles: { metric: MetricName; byVariant: string; vsFlops: string }[]): string {
  const lines: string[] = [];
  lines.push(`# Study: ${s.study}`, '');
  if (s.description) lines.push(s.description, '');
  const budget = [s.budget.steps !== undefined ? `${s.budget.steps} steps` : '', s.budget.minutes !== undefined ? `${s.budget.minutes} min` : '']
    .filter(Boolean).join(' or ');
  const t = s.training;
  lines.push(`- Budget per run: ${budget}${s.budget.steps !== undefined && s.budget.minutes !== undefined ? ' (whichever comes first)' : ''}; seeds ${s.seeds.join(', ')}.`);
  lines.push(`- Training: tile ${t.tile}, batch ${t.batch}, ${t.optimizer} lr ${t.lr} (${t.schedule}, warm-up ${t.warmup}), balance ${t.balance}` +
    `${t.borderWeight ? `, border weight ${t.borderWeight} (sigma ${t.borderSigma} px)` : ''}${t.malisWeight ? `, MALIS weight ${t.malisWeight}` : ''}${t.elastic ? ', elastic' : ''}${t.jitter ? ', jitter' : ''}${t.bf16 ? ', bf16' : ''}.`);
  lines.push(`- Data: ${s.data.images} / ${s.data.labels} (${s.data.polarity}); scored on sections ${s.data.validation.join(', ')} ` +
    '(final weights, no model selection).');
  lines.push(`- Cells: ${s.spread}. FLOPs/px: forward FLOPs per output pixel of dense whole-image inference. ` +
    'Field: receptive field (pixels); window: the patch classifier\'s input window.');
  lines.push('');
  for (const e of s.expectations) lines.push(`> **Expectation not met:** ${e}`, '');

  const header = ['variant', 'params', 'MFLOP/px', 'field', 'window', 'runs', 'train time', 'steps', ...s.metrics.map((m) =>
    `${m} ${HIGHER_IS_BETTER[m] ? '↑' : '↓'}`)];
  lines.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`);
  const best = new Map<MetricName, string>();
  for (const m of s.metrics) {
    const ranked = s.variants.filter((v) => v.metrics[m]).sort((a, b) => (HIGHER_IS_BETTER[m] ? -1 : 1) * (a.metrics[m]!.mean - b.metrics[m]!.mean));
    if (ranked.length > 1 && ranked[0]!.metrics[m]!.mean !== ranked[1]!.metrics[m]!.mean) best.set(m, ranked[0]!.name);
  }
  for (const v of s.variants) {
    if (v.error) {
      lines.push(`| ${cell(v.name)} | invalid | | | | | | | ${s.metrics.map(() => '').join(' | ')} |`);
      continue;
    }
    const row = [v.name, (v.params ?? 0).toLocaleString('en-US'), ((v.flopsPerPixel ?? 0) / 1e6).toFixed(3), String(v.receptiveField ?? '–'),
      String(v.window ?? '–'), `${v.runs.done}/${v.runs.total}${v.runs.failed ? ` (${v.runs.failed} failed)` : ''}`,
      v.trainingMs ? formatDuration(v.trainingMs.mean) : '–', v.steps ? String(Math.round(v.steps.mean)) : '–',
      ...s.metrics.map((m) => (best.get(m) === v.name ? `**${formatStat(v.metrics[m])}**` : formatStat(v.metrics[m])))];
    lines.push(`| ${row.map(cell).join(' | ')} |`);
  }
  lines.push('', 'Bold: the best mean of each metric (when not tied).', '');

  lines.push('## Variants', '');
  for (const v of s.variants) {
    lines.push(`- **${v.name}**: ${v.model}${v.description ? ` — ${v.description}` : ''}${v.error ? `  \n  **invalid:** ${v.error}` : ''}`);
  }
  const failed = s.runs.filter((r) => r.status === 'failed' || r.status === 'interrupted');
  if (failed.length) {
    lines.push('', '## Runs without a result', '');
    for (const r of failed) lines.push(`- ${r.variant} seed ${r.seed} (${r.status}): ${r.error ?? ''}`);
  }
  if (plotFiles.length) {
    lines.push('', '## Plots', '');
    for (const p of plotFiles) lines.push(`![${p.metric} by variant](${p.byVariant}) ![${p.metric} vs FLOPs per pixel](${p.vsFlops})`);
  }
  lines.push('');
  return lines.join('\n');
}
