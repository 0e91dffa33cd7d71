/**
 * Small real file systems for fault tests: a tmpfs of a few hundred KiB (a disk that fills up) and a read-only bind
 * mount. Mounting needs privileges (root, or a user namespace); where the machine refuses, `mount*` return the
 * reason so the test can skip with it. Every mount is unmounted by unmountAll (call it in an `after` hook).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const mounted: string[] = [];

function run(args: string[]): string | undefined {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.error) return `mount is not available (${r.error.message})`;
  return r.status === 0 ? undefined : `mount ${args.join(' ')} was refused (${(r.stderr || r.stdout).trim()})`;
}

/** A tmpfs of `kib` KiB at DIR/name; returns its path, or why it could not be mounted. */
export function mountTinyTmpfs(dir: string, name: string, kib: number): { path: string } | { skip: string } {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  const refused = run(['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', path]);
  if (refused) return { skip: refused };
  mounted.push(path);
  return { path };
}

/** A read-only view of `source` at DIR/name (bind mount, then remounted read-only); or why it could not be made. */
export function mountReadOnly(source: string, dir: string, name: string): { path: string } | { skip: string } {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  const refused = run(['--bind', source, path]);
  if (refused) return { skip: refused };
  mounted.push(path);
  // Older mount(8) ignores "ro" on the first bind; the remount applies it.
  const ro = run(['-o', 'remount,bind,ro', path]);
  return ro ? { skip: ro } : { path };
}

/** Unmounts everything mounted here, innermost (latest) first; lazily if still busy, so a test never leaves one. */
export function unmountAll(): void {
  for (const path of mounted.splice(0).reverse()) {
    if (spawnSync('umount', [path]).status !== 0) spawnSync('umount', ['-l', path]);
  }
}
