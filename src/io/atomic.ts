import { lstatSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError, fromFsError } from './errors.js';
import { MANIFEST_FILE, checkFileTarget, outputGuard, readManifest, writeManifest } from './output-guard.js';
import { makeDirsSync } from '../util/mkdirs.js';
import { registerTemp, releaseTemp, replaceFileSync, sweepStaleTemps, tempPathFor } from '../util/temp-files.js';

/**
 * Write a whole file under a temporary name and rename it into place: readers never see half a file. Callers decide
 * whether an existing file may be replaced; a device, FIFO, socket, folder or symbolic link at `path` never is.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const folder = dirname(path);
  try {
    makeDirsSync(folder);
  } catch (err) {
    throw fromFsError(err, folder, 'creating the folder');
  }
  sweepStaleTemps(folder);
  checkFileTarget(path, outputGuard(true));
  try {
    replaceFileSync(path, data);
  } catch (err) {
    throw fromFsError(err, path, 'writing');
  }
}

/**
 * Fills a new directory through `fill(tmpDir)` and moves it to `target` only once complete; an existing `target`
 * is refused unless `overwrite`, and then replaced only after the new one is whole, and only if every file in it
 * was written by emseg (listed in its manifest), so `--out ~ --overwrite` cannot delete a home folder.
 */
export function writeDirectoryAtomic(target: string, overwrite: boolean, fill: (dir: string) => void): void {
  const existing = checkDirectoryTarget(target, overwrite);
  sweepStaleTemps(dirname(target));
  const tmp = tempPathFor(target);
  // Not registered for signal cleanup: the previous directory's only copy lives here between the two renames.
  const old = tmp.replace(/\.tmp$/, '.old');
  try {
    registerTemp(tmp);
    makeDirsSync(tmp);
    fill(tmp);
    writeManifest(tmp, filesUnder(tmp));
    if (existing) renameSync(target, old);
    renameSync(tmp, target);
    releaseTemp(tmp);
    rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    releaseTemp(tmp);
    if (existing && !lstatSync(target, { throwIfNoEntry: false })) renameSync(old, target); // put the previous one back
    // fill's own errors pass through; only filesystem errors are rewrapped with the target named.
    throw err instanceof EmsegError || typeof (err as NodeJS.ErrnoException).code !== 'string' ? err : fromFsError(err, target, 'writing');
  }
}

/** Whether `target` exists (as a folder emseg may replace); throws when it may not be replaced. */
function checkDirectoryTarget(target: string, overwrite: boolean): boolean {
  const info = lstatSync(target, { throwIfNoEntry: false });
  if (!info) return false;
  if (!info.isDirectory()) {
    throw new EmsegIoError('special-file', target, `exists and is not a folder${info.isSymbolicLink() ? ' (a symbolic link)' : ''}; ` +
      'emseg replaces only folders it wrote');
  }
  if (!overwrite) throw new EmsegIoError('exists', target, 'exists; pass --overwrite to replace it');
  const listed = readManifest(target);
  const foreign = filesUnder(target).find((f) => !listed.has(f));
  if (foreign !== undefined) {
    throw new EmsegIoError('foreign-file', join(target, foreign), `was not written by emseg (${MANIFEST_FILE} in ${target} does not list it); ` +
      `--overwrite will not delete ${target}: move it away, or write to another folder`);
  }
  return true;
}

/** Every non-folder entry under `dir` (relative paths, the manifest itself left out). */
function filesUnder(dir: string, root = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(path, root));
    else if (relative(root, path) !== MANIFEST_FILE) out.push(relative(root, path));
  }
  return out;
}
