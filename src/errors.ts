/**
 * One error root for the whole toolkit. Every failure a user can cause (bad input, bad option, bad file) is an
 * EmsegError with a stable `code` to branch on and, where it applies, the `path` (file, folder, layer or option
 * field) it is about, so callers never match messages and the CLI prints one clear line instead of a stack trace.
 */
/**
 * Every code an EmsegError carries: one vocabulary for the whole toolkit, so a caller branches on a code that the
 * compiler knows. A new failure reuses a code that means the same to a caller; a new code comes with its line here
 * (test/errors.test.ts checks that each is used and documented). EmsegIoError keeps the subset io throws.
 */
export type EmsegErrorCode =
  // files and folders (io; see src/io/errors.ts)
  | 'not-found' // path, folder or glob matched nothing (also the viewer's 404 for an unknown page)
  | 'empty' // folder or glob holds no image
  | 'not-image' // wrong magic bytes / not a PNG or TIFF (or Zarr, for the viewer), a folder where a file was expected
  | 'corrupt' // a file cannot be decoded as its kind: a damaged image or chunk, a digest that does not match, JSON that
  //   does not parse or lacks the form of an emseg log or eval result, a damaged .npy, YAML or ONNX file
  | 'missing-chunk' // a chunk file of a Zarr array is absent (for an input, an incomplete copy)
  | 'unsupported' // valid file, but a layout we do not read (colour, tiles + PackBits, ...)
  | 'too-large' // a size we refuse to allocate (header, option or memory estimate beyond the limits)
  | 'mismatch' // sizes/types/counts differ within a stack, between images and labels or between inputs
  | 'not-binary' // a label image holds values other than the two the polarity allows
  | 'polarity' // labels read with the default polarity are mostly membrane: almost certainly inverted
  | 'not-a-map' // a --pred input's values are spread like a raw image's, not a membrane map's
  | 'invalid-data' // values or samples the data's kind cannot hold: NaN or > 1 in a map, float labels or cells, data
  //   handed to a writer out of range
  | 'exists' // output exists and overwrite was not requested
  | 'special-file' // an output path is a device, FIFO, socket, folder or symbolic link: never replaced
  | 'is-input' // an output path is (or its folder holds) one of the command's inputs
  | 'foreign-file' // an existing file emseg did not write (not in the folder's manifest, not the kind it writes)
  | 'wrong-format' // the output path does not fit the format (o.png for a TIFF, a folder for one file, ...)
  | 'outside' // a confined reader met a link (or a request) to a place outside the folder it was given
  | 'changed' // a file the viewer serves changed or vanished while it was running
  | 'disk-full' // no space left (ENOSPC), quota exceeded (EDQUOT) or file too large for the filesystem (EFBIG)
  | 'read-only' // the filesystem is mounted read-only (EROFS), or an output names a read-only store (an http(s) URL)
  | 'permission' // the user may not read or write there (EACCES, EPERM; HTTP 401/403 for a URL)
  | 'fs-failed' // the filesystem refused a read, write or rename for another reason (I/O error, ...)
  | 'http-failed' // an http(s) volume read failed: the server answered an error status (5xx, ...) or could not be reached,
  //   after retries; names the URL (never its credentials) and the status
  | 's3-auth' // an s3:// store refused the credentials (wrong key or secret, expired token, 401/403, access denied)
  | 's3-failed' // an s3:// request failed after retries (throttling, server errors, dropped connections) or with another error
  | 'no-bucket' // an s3:// path names a bucket the store does not have (path: s3://bucket)
  // options and arguments
  | 'invalid-option' // a flag, option field or function argument has a value that cannot work (path names it): a bad
  //   flag, a region outside the volume, a tensor of the wrong shape, from another backend or used after dispose
  | 'ambiguous' // the viewer cannot tell which kind an unflagged input is; train cannot tell a mask from instance labels
  | 'nothing-to-view' // the viewer was given no layer to show
  // the viewer's HTTP refusals (sent as ApiError.error; the page turns them back into EmsegErrors)
  | 'bad-request' // a request's path or query parameter is malformed (400)
  | 'out-of-range' // a request names a section, level, tile or index beyond the data (400/404)
  | 'method-not-allowed' // a request other than GET or HEAD (405)
  | 'uri-too-long' // a request URL beyond the length the viewer reads (414)
  | 'no-layer' // a request for a layer (or error marks) the viewer was not given (404)
  | 'not-given' // a request for training or study data the viewer was not given (404)
  // file contents of emseg's own kinds
  | 'invalid-spec' // a network spec does not validate (names the layer and field)
  | 'invalid-study' // a study file does not validate, or its data / expectations do not fit it
  | 'invalid-model' // a model folder's files are missing, not JSON or not safetensors, or name an ensemble
  | 'invalid-package' // emseg's own package.json has no version (a broken install)
  | 'non-finite' // an image, a prediction or weights hold NaN or infinity
  | 'intensity-range' // image values do not fit the intensity rule; --intensity must say how to scale them
  // models, checkpoints, runs
  | 'weights-mismatch' // weights do not fit the spec (missing, extra or misshapen parameters)
  | 'checkpoint-mismatch' // a checkpoint (or --init model) does not fit the model or the settings being trained
  | 'checkpoint-corrupt' // a checkpoint cannot be read; the run must start again
  | 'resume-mismatch' // an output (or study run) was started with other settings than the resumed run's
  | 'diverged' // training's loss or weights blew up
  | 'interrupted' // a study run was stopped on request; its checkpoint is saved
  | 'run-failed' // a study run's worker process failed or died
  | 'blocks-failed' // some blocks of a blockwise run failed and are not marked done
  | 'incomplete' // a queued run's pyramid was asked for before every block was done
  | 'unsupported-export' // a model (or ensemble) cannot be exported in the asked form
  | 'insufficient-memory' // the work would need more memory than is available
  // machine and services
  | 'native-unavailable' // the oneDNN addon is missing or failed to load
  | 'native-capability' // the addon loaded, but this CPU cannot do what was asked (bf16)
  | 'redis-unreachable' // no Redis answers at --redis
  | 'redis-auth' // Redis refused the credentials of --redis
  | 'listen-failed' // the viewer cannot listen on the host:port
  | 'no-bundle' // the viewer page is not built
  | 'tile-source' // the viewer page could not load a tile
  | 'internal'; // an invariant broke: a bug in emseg, not a user error

export class EmsegError extends Error {
  /** Stable machine-readable kind, one of EmsegErrorCode. */
  readonly code: EmsegErrorCode;
  /**
   * The file, folder, spec field, layer or flag the error is about ('' when none applies). An option's error names
   * what the user typed: the pipeline (src/pipeline, whose job fields are the CLI's flags) names the flag
   * ('--block'); code that also serves study files or the API takes that name from its caller (a `flag` argument).
   */
  readonly path: string;

  constructor(code: EmsegErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(path ? `${path}: ${message}` : message, options);
    this.name = 'EmsegError';
    this.code = code;
    this.path = path;
  }
}

/** Guard: is this an EmsegError (optionally of one of these codes)? */
export function isEmsegError(err: unknown, ...codes: EmsegErrorCode[]): err is EmsegError {
  return err instanceof EmsegError && (codes.length === 0 || codes.includes(err.code));
}

/** Message of an unknown thrown value, for wrapping third-party errors. */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
