import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

/** Write a whole file under a temporary name and rename it into place: readers never see half a file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    if (existsSync(tmp)) rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Fills a new directory through `fill(tmpDir)` and moves it to `target` only once complete; an existing `target`
 * is refused unless `overwrite`, and then replaced only after the new one is whole.
 */
export function writeDirectoryAtomic(target: string, overwrite: boolean, fill: (dir: string) => void): void {
  if (existsSync(target) && !overwrite) throw new Error(`${target} exists; pass --overwrite to replace it`);
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  const old = join(dirname(target), `.${basename(target)}.${process.pid}.old`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp, { recursive: true });
    fill(tmp);
    if (existsSync(target)) renameSync(target, old);
    renameSync(tmp, target);
    rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
