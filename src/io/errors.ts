import { EmsegError, describeError, type EmsegErrorCode } from '../errors.js';

/**
 * Every failure of the io module is an EmsegIoError that names the file involved, so the CLI can print
 * one clear line instead of a stack trace. `code` lets callers branch without parsing the message; the io codes are a
 * subset of EmsegErrorCode, each documented there.
 */
/** `T` itself, refused by the compiler unless every member of T is one of `All` (unlike Extract, which drops typos). */
type SubsetOf<All, T extends All> = T;
export type EmsegIoErrorCode = SubsetOf<EmsegErrorCode,
  | 'not-found'
  | 'empty'
  | 'not-image'
  | 'corrupt'
  | 'missing-chunk'
  | 'unsupported'
  | 'too-large'
  | 'mismatch'
  | 'not-binary'
  | 'polarity'
  | 'not-a-map'
  | 'invalid-data'
  | 'invalid-option'
  | 'exists'
  | 'special-file'
  | 'is-input'
  | 'foreign-file'
  | 'wrong-format'
  | 'outside'
  | 'disk-full'
  | 'read-only'
  | 'permission'
  | 'fs-failed'
  | 'http-failed'
  | 's3-auth'
  | 's3-failed'
  | 'no-bucket'>;

export class EmsegIoError extends EmsegError {
  declare readonly code: EmsegIoErrorCode;

  constructor(code: EmsegIoErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, path, message, options);
    this.name = 'EmsegIoError';
  }
}

/** Message of an unknown thrown value, for wrapping third-party decoder errors. */
export const describe = describeError;

/**
 * The filesystem's refusals that no retry fixes, by errno: what the user is told, and the code. A full disk stays
 * full and a read-only mount stays read-only while a run retries, so these stop a run at once (see worthRetrying).
 */
const LASTING_FS_ERRORS: Record<string, { code: EmsegIoErrorCode; what: string; fix: string }> = {
  ENOSPC: { code: 'disk-full', what: 'disk full (no space left on the device)', fix: 'free some space or write elsewhere' },
  EDQUOT: { code: 'disk-full', what: 'disk quota exceeded', fix: 'free some space within your quota or write elsewhere' },
  EFBIG: { code: 'disk-full', what: 'file too large for this filesystem', fix: 'write elsewhere or use smaller chunks' },
  EROFS: { code: 'read-only', what: 'read-only file system', fix: 'write to a writable folder' },
  EACCES: { code: 'permission', what: 'permission denied', fix: 'check the permissions or write elsewhere' },
  EPERM: { code: 'permission', what: 'operation not permitted', fix: 'check the permissions or write elsewhere' },
};

/** Turns a Node fs error into an EmsegIoError naming `path`; passes EmsegIoErrors through. */
export function fromFsError(err: unknown, path: string, doing: string): EmsegIoError {
  if (err instanceof EmsegIoError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new EmsegIoError('not-found', path, 'no such file or folder', { cause: err });
  if (code === 'EISDIR') return new EmsegIoError('not-image', path, 'is a folder, expected a file', { cause: err });
  const lasting = code === undefined ? undefined : LASTING_FS_ERRORS[code];
  if (lasting) return new EmsegIoError(lasting.code, path, `${lasting.what} while ${doing} (${code}); ${lasting.fix}`, { cause: err });
  return new EmsegIoError('fs-failed', path, `${doing} failed: ${describe(err)}`, { cause: err });
}

/** Error codes (emseg's) of failures a retry cannot fix: the disk, the mount or the permissions have to change first. */
const LASTING_CODES: ReadonlySet<string> = new Set<EmsegIoErrorCode>(['disk-full', 'read-only', 'permission', 's3-auth', 'no-bucket']);
/** How deep worthRetrying follows `cause` links (a wrapped error wraps few times; a cycle must not hang it). */
const MAX_CAUSE_DEPTH = 8;

/**
 * The one decision of the block runner (src/pipeline/engine/run.ts: in-process, by shard and in the queue's processor)
 * makes: is another attempt worth it? Not for a full disk, a read-only file system or a refused permission, raw
 * (errno) or already mapped, also when wrapped as another error's `cause`: every block after it would fail the same
 * way, so the run stops at once and says why. Anything else (a flaky network mount, a damaged chunk read, a
 * crash) may be transient and is retried.
 */
export function worthRetrying(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (LASTING_CODES.has(code) || code in LASTING_FS_ERRORS)) return false;
    e = (e as { cause?: unknown }).cause;
  }
  return true;
}

/**
 * The error a run stops with when worthRetrying said no: a mapped EmsegIoError as it is; a raw errno error (or an
 * error wrapping one) mapped with `path` named, so the user reads "disk full", not ENOSPC deep in a stack.
 */
export function lastingError(err: unknown, path: string, doing: string): EmsegIoError {
  let e: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && e && typeof e === 'object'; depth++) {
    if (e instanceof EmsegIoError && LASTING_CODES.has(e.code)) return e;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in LASTING_FS_ERRORS) return fromFsError(e, (e as { path?: string }).path ?? path, doing);
    e = (e as { cause?: unknown }).cause;
  }
  return fromFsError(err, path, doing);
}
