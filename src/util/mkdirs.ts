/**
 * `mkdir -p` that reports the real reason it failed. Node's recursive mkdir (v20) answers ENOENT when a component
 * cannot be created for another reason (it stats the path after the failed mkdir and reports that stat's error):
 * a read-only mount read "ENOENT ... mkdir" instead of EROFS. On ENOENT these create the missing components one by
 * one, which either succeeds (the folder was created meanwhile, or the parent really appeared) or throws the errno
 * of the component that cannot be made (EROFS, EACCES, ENOSPC, ENOTDIR, ...), naming it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** Components of `path` that do not exist yet, outermost first. */
function missingComponents(path: string, exists: (p: string) => boolean): string[] {
  const missing: string[] = [];
  for (let p = resolve(path); !exists(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  return missing;
}

export function makeDirsSync(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
    for (const p of missingComponents(path, existsSync)) {
      try {
        mkdirSync(p);
      } catch (inner) {
        if (errnoOf(inner) !== 'EEXIST') throw inner;
      }
    }
  }
}

export async function makeDirs(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
    const missing: string[] = [];
    for (let p = resolve(path); !(await stat(p).then(() => true, () => false)); p = dirname(p)) {
      missing.unshift(p);
      if (dirname(p) === p) break;
    }
    for (const p of missing) {
      try {
        await mkdir(p);
      } catch (inner) {
        if (errnoOf(inner) !== 'EEXIST') throw inner;
      }
    }
  }
}
