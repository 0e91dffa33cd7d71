/**
 * What an output may replace, for every writer (stacks, reports, model directories, pictures):
 * - only regular files: never a device, FIFO, socket or folder, and never a symbolic link. A link is refused
 *   rather than replaced or followed: replacing it silently cuts a link the user made, following it writes
 *   wherever it points (another volume, another user's file), and neither is what `--out` asked for;
 * - never one of the command's own inputs, compared by real path and by device + inode (so a hard link or a
 *   path through a symlink is caught too), and never into a folder that holds one of them;
 * - inside a folder output, only the files the folder's manifest (`.emseg-manifest.json`, written by emseg
 *   beside its outputs) lists: anything else there is the user's, never replaced nor removed;
 * - anything at all only with `overwrite`.
 */
import { closeSync, lstatSync, openSync, readFileSync, readSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { makeDirsSync } from '../util/mkdirs.js';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import { registerTemp, releaseTemp, replaceFileSync, sweepStaleTemps, tempPathFor } from '../util/temp-files.js';
import { typedArgs } from '../util/paths.js';
import { EmsegError } from '../errors.js';
import { EmsegIoError, describe, fromFsError } from './errors.js';
import { refuseRemoteOutput } from './stores/paths.js';

/** Hidden, so stack readers skip it like any dot-file. */
export const MANIFEST_FILE = '.emseg-manifest.json';
const MANIFEST_FORMAT = 1;
const JSON_INDENT = 2;

/** The files and folders a command reads. Paths that do not exist are ignored (they cannot be overwritten). */
export class InputSet {
  private readonly ids = new Set<string>();
  private readonly realPaths = new Set<string>();
  private readonly holders = new Set<string>();

  constructor(paths: readonly string[] = []) {
    for (const path of paths) {
      try {
        const real = realpathSync(path);
        this.ids.add(idOf(statSync(real)));
        this.realPaths.add(real);
        this.holders.add(idOf(statSync(dirname(real))));
      } catch {
        // Unreadable or missing: the command will fail on reading it, and we can write nothing over it.
      }
    }
  }

  /** Whether `path` (whose stat, links followed, is `info`) is one of the inputs. */
  has(path: string, info: Stats): boolean {
    if (this.ids.has(idOf(info))) return true;
    try {
      return this.realPaths.has(realpathSync(path));
    } catch {
      return false;
    }
  }

  /** Whether the folder `info` directly holds one of the inputs. */
  holds(info: Stats): boolean {
    return this.holders.has(idOf(info));
  }

  /** Whether one of the inputs lies anywhere inside the folder `dir` (a volume output replaced whole). */
  within(dir: string): boolean {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return false;
    }
    return [...this.realPaths].some((p) => p.startsWith(real + sep));
  }
}

const idOf = (info: Stats) => `${info.dev}:${info.ino}`;

export interface OutputGuard {
  /** Replace existing outputs (the CLI's --overwrite); still only the kinds of file above. */
  overwrite: boolean;
  inputs: InputSet;
}

export function outputGuard(overwrite = false, inputs: readonly string[] = []): OutputGuard {
  return { overwrite, inputs: new InputSet(inputs) };
}

/** File kinds checked by content before an overwrite, so `--overwrite` cannot replace, say, a script named out.tif. */
export type FileKind = 'tiff';
const MAGICS: Record<FileKind, readonly string[]> = {
  tiff: ['49492a00', '4d4d002a', '49492b00', '4d4d002b'], // II*. MM.* and BigTIFF II+. MM.+ (hex)
};
const MAGIC_BYTES = 4;

export function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new EmsegIoError('not-found', path, `output folder ${dirname(path)} is not a folder`, { cause: err });
    }
    throw fromFsError(err, path, 'checking the output');
  }
}

/** Refuses anything but a regular file: devices, FIFOs, sockets, folders and symbolic links. */
export function refuseSpecial(path: string, info: Stats): void {
  if (info.isSymbolicLink()) {
    let to = '';
    try {
      to = ` to ${readlinkSync(path)}`;
    } catch {
      // the link's target is only for the message
    }
    throw new EmsegIoError('special-file', path, `is a symbolic link${to}; emseg neither follows nor replaces links ` +
      'at an output path (give the real path, or remove the link)');
  }
  if (!info.isFile()) {
    throw new EmsegIoError('special-file', path, `is a ${fileType(info)}, not a regular file; emseg never replaces it`);
  }
}

function fileType(info: Stats): string {
  if (info.isDirectory()) return 'folder';
  if (info.isFIFO()) return 'FIFO (named pipe)';
  if (info.isSocket()) return 'socket';
  if (info.isCharacterDevice()) return 'character device';
  if (info.isBlockDevice()) return 'block device';
  return 'special file';
}

export function refuseInput(path: string, info: Stats, guard: OutputGuard): void {
  if (guard.inputs.has(path, info)) {
    throw new EmsegIoError('is-input', path, 'is one of this command\'s inputs; write the output elsewhere (--overwrite never replaces an input)');
  }
}

/**
 * Checks that a single-file output may be written at `path`: absent, or, with `overwrite`, a regular file that is
 * none of the inputs (and, when `kind` is given, holds that kind of data). Throws EmsegIoError naming `path`.
 */
export function checkFileTarget(path: string, guard: OutputGuard, kind?: FileKind): void {
  refuseRemoteOutput(path);
  const info = lstatOrUndefined(path);
  if (!info) return;
  refuseSpecial(path, info);
  refuseInput(path, info, guard);
  if (!guard.overwrite) throw new EmsegIoError('exists', path, 'output already exists; pass --overwrite (overwrite: true) to replace it');
  if (kind && info.size > 0 && !hasMagic(path, MAGICS[kind])) {
    throw new EmsegIoError('foreign-file', path, `is not a ${kind.toUpperCase()} file, so not an output emseg wrote; ` +
      '--overwrite will not replace it (move it away, or write elsewhere)');
  }
}

function hasMagic(path: string, magics: readonly string[]): boolean {
  try {
    const head = Buffer.alloc(MAGIC_BYTES);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, MAGIC_BYTES, 0);
    } finally {
      closeSync(fd);
    }
    return magics.includes(head.toString('hex'));
  } catch (err) {
    throw fromFsError(err, path, 'reading');
  }
}

/**
 * Checks a folder output before anything is written and returns the names its manifest lists. Refuses a path that
 * is not a folder, a folder that is or holds an input, and (without `overwrite`) a folder still holding files of
 * an earlier emseg output.
 */
export function checkFolderTarget(folder: string, guard: OutputGuard): Set<string> {
  refuseRemoteOutput(folder);
  let info: Stats | undefined;
  try {
    info = statSync(folder, { throwIfNoEntry: false });
  } catch (err) {
    throw fromFsError(err, folder, 'checking the output folder');
  }
  if (!info) return new Set();
  if (!info.isDirectory()) throw new EmsegIoError('exists', folder, 'exists and is not a folder; pass a folder path for slice output');
  refuseInput(folder, info, guard);
  if (guard.inputs.holds(info)) {
    throw new EmsegIoError('is-input', folder, 'holds this command\'s input images; write the output to another folder');
  }
  const listed = readManifest(folder);
  const earlier = [...listed].find((name) => lstatOrUndefined(join(folder, name)));
  if (!guard.overwrite && earlier !== undefined) {
    throw new EmsegIoError('exists', join(folder, earlier), `output already exists (an earlier emseg output, listed in ${MANIFEST_FILE}); ` +
      'pass --overwrite (overwrite: true) to replace it');
  }
  return listed;
}

/**
 * Checks that `name` may be written in a folder output: absent, or, with `overwrite`, a regular file that the
 * manifest lists (so emseg wrote it) and that is none of the inputs.
 */
export function checkFolderEntry(folder: string, name: string, listed: ReadonlySet<string>, guard: OutputGuard): void {
  const path = join(folder, name);
  const info = lstatOrUndefined(path);
  if (!info) return;
  refuseSpecial(path, info);
  refuseInput(path, info, guard);
  if (!guard.overwrite) throw new EmsegIoError('exists', path, 'output already exists; pass --overwrite (overwrite: true) to replace it');
  if (!listed.has(name)) {
    throw new EmsegIoError('foreign-file', path, `was not written by emseg (${MANIFEST_FILE} does not list it); ` +
      '--overwrite will not replace it: move it away, or write to another folder');
  }
}

/** Names (relative paths) listed in the folder's manifest; empty when there is none. */
export function readManifest(folder: string): Set<string> {
  const path = join(folder, MANIFEST_FILE);
  const info = lstatOrUndefined(path);
  if (!info) return new Set();
  refuseSpecial(path, info);
  let files: unknown;
  try {
    files = (JSON.parse(readFileSync(path, 'utf8')) as { files?: unknown }).files;
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `is not a readable emseg manifest (${describe(err)}); emseg replaces nothing in ` +
      'this folder until it is fixed or removed', { cause: err });
  }
  const valid = Array.isArray(files) && files.every((f) => typeof f === 'string' && f !== '' && !isAbsolute(f) &&
    !f.split(/[\\/]/).includes('..'));
  if (!valid) {
    throw new EmsegIoError('corrupt', path, '"files" must list relative paths inside the folder; emseg replaces nothing in ' +
      'this folder until it is fixed or removed');
  }
  return new Set(files as string[]);
}

/** Records the files emseg wrote in `folder` (replacing its manifest atomically). */
export function writeManifest(folder: string, files: Iterable<string>): void {
  const path = join(folder, MANIFEST_FILE);
  const info = lstatOrUndefined(path);
  if (info) refuseSpecial(path, info);
  const manifest = {
    format: MANIFEST_FORMAT,
    about: 'files written by emseg; --overwrite replaces or removes only these',
    command: [basename(process.argv[1] ?? 'node').replace(/\.js$/, ''), ...typedArgs(process.argv.slice(2))], // no machine paths
    written: new Date().toISOString(),
    files: [...new Set(files)].sort(),
  };
  try {
    replaceFileSync(path, `${JSON.stringify(manifest, null, JSON_INDENT)}\n`);
  } catch (err) {
    throw fromFsError(err, path, 'writing the manifest');
  }
}

/**
 * Writes a hidden, registered temporary beside `target` through `fill` and returns its path; removes it if `fill`
 * fails. Stale temporaries of killed runs in the same folder are swept first.
 */
export async function createTemp(target: string, fill: (fh: FileHandle) => Promise<void>): Promise<string> {
  sweepStaleTemps(dirname(target));
  const tmp = tempPathFor(target);
  let fh: FileHandle | undefined;
  registerTemp(tmp); // before the file exists, so no signal can land between its creation and its registration
  try {
    fh = await open(tmp, 'wx');
    await fill(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    return tmp;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    if (fh || (err as NodeJS.ErrnoException | undefined)?.code !== 'EEXIST') await discardTemp(tmp);
    else releaseTemp(tmp); // the name was taken: that file is not ours to remove
    if (err instanceof EmsegError) throw err; // a failing slice producer keeps its own error
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') {
      throw new EmsegIoError('not-found', target, `output folder ${dirname(target)} does not exist`, { cause: err });
    }
    // Only filesystem errors are rewrapped.
    throw typeof code === 'string' ? fromFsError(err, target, 'writing') : err;
  }
}

export async function discardTemp(tmp: string): Promise<void> {
  await rm(tmp, { force: true });
  releaseTemp(tmp);
}

/** Publishes a finished temporary as `target`. */
export async function publishTemp(tmp: string, target: string): Promise<void> {
  await rename(tmp, target).catch((err) => Promise.reject(fromFsError(err, target, 'renaming')));
  releaseTemp(tmp);
}

/**
 * One folder output (stack slices, pictures): files are written under temporary names by add() and published
 * together by commit(), which also removes the files of the previous output that the new one does not replace
 * (only those the manifest lists) and records the new ones in the manifest.
 */
export class FolderOutput {
  private readonly pending: [tmp: string, name: string][] = [];

  private constructor(readonly folder: string, private readonly guard: OutputGuard, private readonly listed: Set<string>,
    private readonly created: boolean) {}

  static open(folder: string, guard: OutputGuard): FolderOutput {
    const listed = checkFolderTarget(folder, guard);
    const created = ensureFolder(folder);
    sweepStaleTemps(folder);
    return new FolderOutput(folder, guard, listed, created);
  }

  /** Writes `bytes` under a temporary name; `name` appears only on commit(). Returns the final path. */
  async add(name: string, bytes: Uint8Array): Promise<string> {
    checkFolderEntry(this.folder, name, this.listed, this.guard);
    const target = join(this.folder, name);
    this.pending.push([await createTemp(target, (fh) => fh.writeFile(bytes)), name]);
    return target;
  }

  /** Publishes every added file and returns their paths, in the order they were added. */
  async commit(): Promise<string[]> {
    const names = this.pending.map(([, name]) => name);
    try {
      // Re-checked: a file may have appeared while the output was computed.
      for (const name of names) checkFolderEntry(this.folder, name, this.listed, this.guard);
      // Listed before publishing, so a run killed halfway leaves every file it wrote claimed for the next --overwrite.
      writeManifest(this.folder, [...this.listed, ...names]);
    } catch (err) {
      await this.abort();
      throw err;
    }
    for (const [tmp, name] of this.pending) await publishTemp(tmp, join(this.folder, name));
    this.pending.length = 0;
    if (this.guard.overwrite) this.removeReplaced(new Set(names));
    writeManifest(this.folder, names);
    return names.map((name) => join(this.folder, name));
  }

  /** Files of the previous output (listed, regular) that the new output does not rewrite would mix into it when read back. */
  private removeReplaced(kept: ReadonlySet<string>): void {
    for (const name of this.listed) {
      const path = join(this.folder, name);
      if (kept.has(name) || !lstatOrUndefined(path)?.isFile()) continue;
      try {
        rmSync(path);
      } catch (err) {
        throw fromFsError(err, path, 'removing a slice of the previous output');
      }
    }
  }

  /** Removes the temporaries, and the folder if this output created it and it is still empty. */
  async abort(): Promise<void> {
    await Promise.all(this.pending.map(([tmp]) => discardTemp(tmp)));
    this.pending.length = 0;
    if (this.created) {
      try {
        rmdirSync(this.folder);
      } catch {
        // not empty (someone else wrote there meanwhile): leave it
      }
    }
  }
}

/** Creates the output folder if needed; true when this call created it (so a failure can remove it). */
function ensureFolder(folder: string): boolean {
  if (statSync(folder, { throwIfNoEntry: false })?.isDirectory()) return false;
  try {
    makeDirsSync(folder);
    return true;
  } catch (err) {
    throw fromFsError(err, folder, 'creating the output folder');
  }
}
