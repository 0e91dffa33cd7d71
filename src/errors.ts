/**
 * One error root for the whole toolkit. Every failure a user can cause (bad input, bad option, bad file) is an
 * EmsegError with a stable `code` to branch on and, where it applies, the `path` (file, folder, layer or option
 * field) it is about, so callers never match messages and the CLI prints one clear line instead of a stack trace.
 */
export class EmsegError extends Error {
  /** Stable machine-readable kind, e.g. 'not-found', 'invalid-option', 'diverged'. */
  readonly code: string;
  /**
   * The file, folder, spec field, layer or flag the error is about ('' when none applies). An option's error names
   * what the user typed: the pipeline (src/pipeline, whose job fields are the CLI's flags) names the flag
   * ('--block'); code that also serves study files or the API takes that name from its caller (a `flag` argument).
   */
  readonly path: string;

  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(path ? `${path}: ${message}` : message, options);
    this.name = 'EmsegError';
    this.code = code;
    this.path = path;
  }
}

/** Guard: is this an EmsegError (optionally of one of these codes)? */
export function isEmsegError(err: unknown, ...codes: string[]): err is EmsegError {
  return err instanceof EmsegError && (codes.length === 0 || codes.includes(err.code));
}

/** Message of an unknown thrown value, for wrapping third-party errors. */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
