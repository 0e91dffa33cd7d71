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
