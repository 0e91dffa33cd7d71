/**
 * Temporary files of atomic writes, in one place: their naming (`.<name>.<pid>.<hex>.tmp` beside the target, so
 * the rename that publishes them never crosses a filesystem), a process-wide registry of the live ones that is
 * emptied on SIGINT/SIGTERM/SIGHUP and at exit, and a sweep of those that a killed run (SIGKILL, power loss) left
 * behind. A temporary is stale only when the pid in its name is no longer alive on this machine; a folder shared
 * over NFS with a writer on another host could see that writer's live temporary removed (its rename then fails,
 * no output is lost).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

const RANDOM_BYTES = 4;
/** `.<name>.<pid>.<8 hex>.tmp`: the name tempPathFor gives, and so the only one the sweep ever removes. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;
/** Signals that end a run from outside; each gets the conventional exit status 128 + its number. */
const CLEANED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const live = new Set<string>();
const swept = new Set<string>();
let exitHookInstalled = false;
let reportStale: ((path: string, pid: number) => void) | undefined;

/** Whether `name` is a temporary's name (a live one or one a killed run left), never a user's file. */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** A fresh hidden temporary path beside `target` (file or folder). */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(RANDOM_BYTES).toString('hex')}.tmp`);
}

/** Records a temporary that now exists, so a signal or exit removes it. */
export function registerTemp(path: string): void {
  if (!exitHookInstalled) {
    process.on('exit', cleanupTempFiles);
    exitHookInstalled = true;
  }
  if (live.size === 0) for (const s of CLEANED_SIGNALS) process.on(s, onSignal);
  live.add(path);
}

/** The temporary was renamed into place or removed: nothing left to clean. */
export function releaseTemp(path: string): void {
  if (!live.delete(path)) return;
  // With no temporary alive, the signals get Node's default behaviour back.
  if (live.size === 0) for (const s of CLEANED_SIGNALS) process.removeListener(s, onSignal);
}

/**
 * Removes every live temporary (synchronously, so it is safe in signal and exit handlers) and returns their paths.
 * Exported for commands with their own signal handling (e.g. `emseg train`'s graceful Ctrl-C) to call before exiting.
 */
export function cleanupTempFiles(): string[] {
  const removed = [...live];
  for (const path of removed) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Best effort while exiting: a temporary we cannot remove is reported by the next run's sweep.
    }
    releaseTemp(path);
  }
  return removed;
}

function onSignal(signal: NodeJS.Signals): void {
  // Another listener (e.g. train's "stop after this step") owns the signal; our exit hook still cleans up.
  if (process.listenerCount(signal) > 1) return;
  cleanupTempFiles();
  process.exit(128 + constants.signals[signal]);
}

/** Who hears about stale temporaries removed by sweepStaleTemps (the CLI prints them); silent by default. */
export function onStaleTemp(reporter: ((path: string, pid: number) => void) | undefined): void {
  reportStale = reporter;
}

/**
 * Removes the temporaries in `folder` whose writer process is gone (a killed run), once per folder and process;
 * returns their paths. Files of any other name, and temporaries of live processes, are never touched.
 */
export function sweepStaleTemps(folder: string): string[] {
  const key = resolve(folder);
  if (swept.has(key)) return [];
  swept.add(key);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return []; // a missing or unreadable folder has nothing of ours to sweep
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    const pid = Number(m?.[1]);
    const path = join(folder, name);
    if (!m || processAlive(pid) || live.has(path)) continue;
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      continue; // not ours to force (permissions): leave it
    }
    removed.push(path);
    reportStale?.(path, pid);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Writes `data` to a registered temporary beside `path`, flushes it and renames it over `path`: readers see the
 * old file or the new one, never half of one. Callers check first that `path` may be replaced.
 */
export function replaceFileSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  registerTemp(tmp);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx');
  } catch (err) {
    releaseTemp(tmp); // nothing of ours was created (an EEXIST file is someone else's)
    throw err;
  }
  try {
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    releaseTemp(tmp);
  }
}
