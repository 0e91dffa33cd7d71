import cliProgress from 'cli-progress';

import { silentProgress, type Progress, type ProgressFactory } from '../pipeline/progress.js';

export type { Progress } from '../pipeline/progress.js';

const LOG_EVERY_MS = 5000;

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * Non-terminal output is written from update() itself: cli-progress redraws there on a timer, which never fires
 * while a long synchronous loop (a training step, a prediction) holds the event loop.
 */
function lineProgress(label: string, total: number, fields: string): Progress {
  const started = Date.now();
  let last = 0;
  let current = 0;
  let first: number | undefined; // a resumed run starts part-way: rates count from here
  let values: Record<string, string | number> = {};
  const print = () => {
    const elapsed = (Date.now() - started) / 1000;
    const done = current - (first ?? 0);
    const eta = done > 0 ? (elapsed * (total - current)) / done : NaN;
    const extra = fields.replace(/\{(\w+)\}/g, (_, k: string) => String(values[k] ?? ''));
    process.stderr.write(`${label} ${current}/${total} ${Math.floor((100 * current) / total)}% ${extra} | ` +
      `elapsed ${formatSeconds(elapsed)} | ETA ${formatSeconds(eta)}\n`);
  };
  return {
    update(value, f) {
      first ??= value;
      current = value;
      values = { ...values, ...f };
      if (Date.now() - last >= LOG_EVERY_MS || value === total) {
        last = Date.now();
        print();
      }
    },
    stop() {},
  };
}

/** A progress bar on stderr with ETA; on a non-terminal (logs, CI) a plain line every few seconds. */
export function progressBar(label: string, total: number, fields = '', quiet = false): Progress {
  if (quiet) return { update() {}, stop() {} };
  if (!process.stderr.isTTY) return lineProgress(label, total, fields);
  const bar = new cliProgress.SingleBar({
    format: `${label} |{bar}| {value}/{total} {percentage}% ${fields} | ETA {eta_formatted}`,
    stream: process.stderr,
    etaBuffer: 50,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0, Object.fromEntries([...fields.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], ''])));
  return {
    update: (value, f) => bar.update(value, f),
    stop: () => bar.stop(),
  };
}

/** The progress factory pipeline jobs take: bars on stderr, or silence with --quiet. */
export function barFactory(quiet: boolean): ProgressFactory {
  return quiet ? silentProgress : (label, total, fields) => progressBar(label, total, fields);
}
