/**
 * How a pipeline job reports progress without knowing who shows it: the CLI passes a factory that draws bars
 * (cli/progress.ts), the library API and the tests pass nothing and get silence.
 */
export interface Progress {
  update(value: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/** Makes one progress reporter for `total` units; `fields` names the extra values shown, e.g. '{section}'. */
export type ProgressFactory = (label: string, total: number, fields?: string) => Progress;

export const silentProgress: ProgressFactory = () => ({ update() {}, stop() {} });

/** A run is taken as not progressing once no block finished for this long (s) ... */
const STALLED_MIN_S = 120;
/** ... and for this many times the mean interval between finished blocks (slow blocks are not a stall). */
const STALLED_INTERVALS = 5;

/**
 * Whether a blockwise run has stopped progressing: no block finished for `idleSeconds`, more than STALLED_MIN_S and
 * STALLED_INTERVALS mean intervals. An ETA is then meaningless (nothing runs, or what runs is stuck) and not shown.
 * `meanIntervalSeconds` is undefined before two blocks finished.
 */
export function isStalled(idleSeconds: number, meanIntervalSeconds: number | undefined): boolean {
  return idleSeconds > Math.max(STALLED_MIN_S, STALLED_INTERVALS * (meanIntervalSeconds ?? 0));
}
