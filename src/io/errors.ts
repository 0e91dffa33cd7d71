import { EmsegError, describeError } from '../errors.js';

/**
 * Every failure of the io module is an EmsegIoError that names the file involved, so the CLI can print
 * one clear line instead of a stack trace. `code` lets callers branch without parsing the message.
 */
export type EmsegIoErrorCode =
  | 'not-found' // path, folder or glob matched nothing
  | 'empty' // folder or glob holds no image
  | 'not-image' // wrong magic bytes / not a PNG or TIFF
  | 'corrupt' // decoder failed: truncated or damaged data
  | 'missing-chunk' // a chunk file of a Zarr array is absent (Zarr reads the fill value; for an input, an incomplete copy)
  | 'unsupported' // valid file, but a layout we do not read (colour, tiles + PackBits, ...)
  | 'too-large' // header claims a size we refuse to allocate
  | 'mismatch' // sizes/types/counts differ within a stack or between images and labels
  | 'not-binary' // a label image holds values other than the two the polarity allows
  | 'polarity' // labels read with the default polarity are mostly membrane: almost certainly inverted
  | 'not-a-map' // a --pred input's values are spread like a raw image's, not a membrane map's
  | 'invalid-data' // data handed to a writer is out of range (NaN, > 1, ...)
  | 'exists' // output exists and overwrite was not requested
  | 'special-file' // an output path is a device, FIFO, socket, folder or symbolic link: never replaced
  | 'is-input' // an output path is (or its folder holds) one of the command's inputs
  | 'foreign-file' // an existing file emseg did not write (not in the folder's manifest, not the kind it writes)
  | 'wrong-format' // the output path does not fit the format (o.png for a TIFF, a folder for one file, ...)
  | 'outside' // a confined reader met a link to a place outside the folder it was given
  | 'fs-failed'; // the filesystem refused a read, write or rename (permissions, disk full...)

export class EmsegIoError extends EmsegError {
  declare readonly code: EmsegIoErrorCode;

  constructor(code: EmsegIoErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, path, message, options);
    this.name = 'EmsegIoError';
  }
}

/** Message of an unknown thrown value, for wrapping third-party decoder errors. */
export const describe = describeError;

/** Turns a Node fs error into an EmsegIoError naming `path`; passes EmsegIoErrors through. */
export function fromFsError(err: unknown, path: string, doing: string): EmsegIoError {
  if (err instanceof EmsegIoError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new EmsegIoError('not-found', path, 'no such file or folder', { cause: err });
  if (code === 'EISDIR') return new EmsegIoError('not-image', path, 'is a folder, expected a file', { cause: err });
  return new EmsegIoError('fs-failed', path, `${doing} failed: ${describe(err)}`, { cause: err });
}
