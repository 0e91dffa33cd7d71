/**
 * Volume paths with a scheme, as every layer of io/ names them: which are URLs, how messages show them, and which
 * outputs a URL may name. Apart from the store registry (index.ts), so that io/'s output guards can ask without
 * importing the stores (which write through io/atomic.ts).
 */
import { EmsegIoError } from '../errors.js';
import { isHttpUrl, safeHttpUrl } from './http.js';
import { isS3Url } from './s3-url.js';

/** A path with a scheme (`s3://`, `http://`): never a local file name, never resolve()d. */
export const isUrl = (path: string): boolean => /^[a-z][a-z0-9+.-]+:\/\//i.test(path);

/** Is this path read through a store other than the local file system? */
export const isRemote = (path: string): boolean => isUrl(path);

/** The path as messages and metadata show it: a URL without user:password. */
export function displayPath(path: string): string {
  return isHttpUrl(path) ? safeHttpUrl(path) : path.replace(/^([a-z][a-z0-9+.-]+:\/\/)[^/@]*@/i, '$1');
}

/**
 * Refuses an output at a URL that cannot take it: http(s) is read-only; s3:// takes OME-Zarr volume outputs
 * (`volume`: written chunk by chunk through the store) but not the outputs written as local files (stacks, reports).
 */
export function refuseRemoteOutput(path: string, volume = false): void {
  if (!isUrl(path)) return;
  if (isS3Url(path)) {
    if (volume) return;
    throw new EmsegIoError('unsupported', displayPath(path), 'an s3:// output is an OME-Zarr volume (x.zarr, written chunk by chunk); stacks, images and reports are written to local (or shared) folders');
  }
  throw new EmsegIoError('read-only', displayPath(path), 'an output cannot be written to a URL: http(s) is a read-only store; write to a local (or shared) folder, or to s3://');
}
