import cliProgress from 'cli-progress';

/** A progress bar on stderr with ETA; on a non-terminal (logs, CI) it prints a line every few seconds. */
export interface Progress {
  update(value: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(label: string, total: number, fields = '', quiet = false): Progress {
  if (quiet) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format: `${label} |{bar}| {value}/{total} {percentage}% ${fields} | ETA {eta_formatted}`,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    etaBuffer: 50,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return {
    update: (value, f) => bar.update(value, f),
    stop: () => bar.stop(),
  };
}
