/**
 * What a volume output (an OME-Zarr folder: `predict --out maps.zarr`, `segment --out cells.zarr`, `convert`) may
 * replace. The rules of output-guard.ts, for a folder replaced whole:
 * - never a symbolic link, device, FIFO or socket at the path, and never a file (emseg does not turn a file into a
 *   folder: `convert vol.h5:/raw vol.h5 --overwrite` would have turned an HDF5 file into a Zarr folder);
 * - never one of the command's inputs, a folder that holds one, or a folder that has one anywhere inside it
 *   (`vol.zarr/0` read, `vol.zarr` written);
 * - with `overwrite`, only a folder emseg wrote (its root attributes carry emseg's own "emseg" key) that holds
 *   nothing but Zarr files: metadata, chunk keys, emseg's hidden `.emseg/` records and temporaries. Anything else
 *   there (notes.txt, a link, another program's Zarr) is the user's: the write is refused, naming it;
 * - resuming (`predict` rerun without --overwrite) keeps every file, but only in a folder that is emseg's or still
 *   being created by another shard, never in a folder of other files.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { Dirent } from 'node:fs';
import { join, relative } from 'node:path';
import { isTempName } from '../util/temp-files.js';
import { EmsegIoError, fromFsError } from './errors.js';
import { lstatOrUndefined, refuseInput, refuseSpecial } from './output-guard.js';
import type { OutputGuard } from './output-guard.js';
import { displayPath, isUrl, refuseRemoteOutput } from './stores/paths.js';
import { isS3Url, parseS3Url, s3Url } from './stores/s3-url.js';

/** What checkStoredVolumeTarget needs of a store without local folders (stores/index.ts's VolumeStore). */
interface StoredFiles {
  read(loc: string): Promise<Uint8Array | undefined>;
  list(loc: string): Promise<string[]>;
  join(loc: string, ...parts: string[]): string;
}

/** emseg's hidden records inside its outputs (done markers, run records, segmentation work). */
export const RECORDS_DIR = '.emseg';
/** emseg's record in an output built in place whose group metadata is not written yet (ome-zarr-write.ts, unpublished). */
export const UNPUBLISHED_RECORD = 'unpublished.json';
/** Metadata files of Zarr v2 and v3 (and consolidated v2 metadata). */
const ZARR_METADATA = new Set(['.zarray', '.zattrs', '.zgroup', '.zmetadata', 'zarr.json']);
/** Chunk keys: numbers joined by '.' (v2's default separator); '/'-separated keys are folders of numbers. */
const CHUNK_KEY = /^\d+(\.\d+)*$/;
/** Top-level folders of an OME-Zarr image emseg writes: its levels, and its labels group. */
const ZARR_FOLDERS = /^(\d+|labels)$/;

export interface VolumeTargetMode {
  /** Keep an existing output to continue it (its layout is checked by the writer). */
  resume?: boolean;
}

/**
 * Checks that a volume output may be created (or replaced, or resumed) at `dir`; returns whether it exists. Throws
 * EmsegIoError ('special-file', 'wrong-format', 'is-input', 'exists', 'foreign-file') naming the path.
 */
export function checkVolumeTarget(dir: string, guard: OutputGuard, mode: VolumeTargetMode = {}): boolean {
  refuseRemoteOutput(dir);
  const info = lstatOrUndefined(dir);
  if (!info) return false;
  if (info.isSymbolicLink() || !(info.isDirectory() || info.isFile())) refuseSpecial(dir, info);
  refuseInput(dir, info, guard);
  if (guard.inputs.holds(info) || guard.inputs.within(dir)) {
    throw new EmsegIoError('is-input', dir, 'holds this command\'s input; write the output to another folder');
  }
  if (info.isFile()) {
    throw new EmsegIoError('wrong-format', dir, 'is a file; a volume output is a folder (e.g. out.zarr), and emseg never replaces a file with one');
  }
  if (mode.resume && !guard.overwrite) {
    checkResumable(dir);
    return true;
  }
  if (!guard.overwrite) throw new EmsegIoError('exists', dir, 'output exists; pass --overwrite to replace it');
  checkReplaceable(dir);
  return true;
}

/** The root attributes' "emseg" key: written by emseg (createOmeZarr), never by another program. */
function writtenByEmseg(dir: string): boolean | undefined {
  const path = join(dir, '.zattrs');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(err, path, 'reading');
  }
  try {
    const attrs = JSON.parse(text) as unknown;
    return typeof attrs === 'object' && attrs !== null && 'emseg' in attrs;
  } catch {
    return false; // unreadable metadata is nobody's we can vouch for
  }
}

function foreign(dir: string, path: string, why: string): EmsegIoError {
  return new EmsegIoError('foreign-file', path, `${why}; emseg replaces only volumes it wrote, so ${dir} is left as it is: ` +
    'move it away, or write to another folder');
}

/** Replacing: the folder is emseg's and every file in it is one of the files emseg writes there. */
function checkReplaceable(dir: string): void {
  const entries = listTop(dir);
  if (entries.length === 0) return; // an empty folder holds nothing to lose
  if (writtenByEmseg(dir) !== true) {
    const odd = entries.find((e) => !(e.isDirectory() || isZarrFile(e)));
    if (odd) throw foreign(dir, join(dir, odd.name), `${odd.name} was not written by emseg`);
    throw foreign(dir, dir, 'is not a volume emseg wrote (its .zattrs has no "emseg" record)');
  }
  const stack = [dir];
  while (stack.length > 0) {
    const folder = stack.pop()!;
    for (const e of folder === dir ? entries : listTop(folder)) {
      const path = join(folder, e.name);
      if (e.isDirectory()) {
        if (!(folder === dir && e.name === RECORDS_DIR)) stack.push(path); // emseg's own records need no look
      } else if (!isZarrFile(e)) {
        throw foreign(dir, path, `${relative(dir, path)} was not written by emseg (${e.isSymbolicLink() ? 'a symbolic link' : 'not a Zarr file'})`);
      }
    }
  }
}

/** Resuming keeps everything, so only the top level is looked at: emseg's metadata, or a folder still being created. */
function checkResumable(dir: string): void {
  const entries = listTop(dir);
  const owner = writtenByEmseg(dir);
  if (owner === false) throw foreign(dir, dir, 'is a Zarr emseg did not write (its .zattrs has no "emseg" record); emseg will not add its output to it');
  const odd = entries.find((e) => !(e.isDirectory() ? ZARR_FOLDERS.test(e.name) || e.name === RECORDS_DIR : isZarrFile(e)));
  if (odd) throw foreign(dir, join(dir, odd.name), `${odd.name} was not written by emseg, so this folder is not an emseg output to continue`);
}

function isZarrFile(e: Dirent): boolean {
  return e.isFile() && isZarrName(e.name);
}

const isZarrName = (name: string) => ZARR_METADATA.has(name) || CHUNK_KEY.test(name) || isTempName(name);

/** s3:// input URLs (normalised) that are, hold or lie inside `dir`: an output there would replace an input. */
function refuseStoredInput(dir: string, inputs: readonly string[]): void {
  for (const input of inputs.filter((i) => isUrl(i) && isS3Url(i))) {
    const at = s3Url(parseS3Url(input));
    if (at === dir || at.startsWith(`${dir}/`) || dir.startsWith(`${at}/`)) {
      throw new EmsegIoError('is-input', dir, `is, holds or lies inside this command's input ${displayPath(input)}; write the output elsewhere`);
    }
  }
}

/** The root attributes' "emseg" key in a store: true, false (another program's, or unreadable), undefined (none). */
async function storedByEmseg(files: StoredFiles, dir: string): Promise<boolean | undefined> {
  const bytes = await files.read(files.join(dir, '.zattrs'));
  if (bytes === undefined) return undefined;
  try {
    const attrs = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof attrs === 'object' && attrs !== null && 'emseg' in attrs;
  } catch {
    return false;
  }
}

/**
 * checkVolumeTarget for a store without folders (s3://): the output is the key prefix `dir`, and what it "holds" is
 * the keys under it. The same rules: never an input; an existing output is refused unless resumed (emseg's, or still
 * being created: Zarr levels, labels and emseg's records at its top) or, with `overwrite`, replaced when emseg wrote
 * it and every key under it is a Zarr file or one of emseg's records. Returns whether any key exists there.
 */
export async function checkStoredVolumeTarget(files: StoredFiles, dir: string, mode: { overwrite: boolean; resume?: boolean; inputs: readonly string[] }): Promise<boolean> {
  refuseStoredInput(dir, mode.inputs);
  const names = await files.list(dir);
  if (names.length === 0) return false;
  const owner = await storedByEmseg(files, dir);
  if (mode.resume && !mode.overwrite) {
    if (owner === false) throw foreign(dir, dir, 'is a Zarr emseg did not write (its .zattrs has no "emseg" record); emseg will not add its output to it');
    const odd = names.find((n) => {
      const [top, ...rest] = n.split('/');
      return rest.length > 0 ? !(ZARR_FOLDERS.test(top!) || top === RECORDS_DIR) : !isZarrName(top!);
    });
    if (odd) throw foreign(dir, files.join(dir, odd), `${odd} was not written by emseg, so this prefix is not an emseg output to continue`);
    return true;
  }
  if (!mode.overwrite) throw new EmsegIoError('exists', dir, 'output exists; pass --overwrite to replace it');
  // emseg's: its metadata says so, or (no group metadata yet) emseg's record of an output it is still building says so.
  const building = owner === undefined && names.includes(`${RECORDS_DIR}/${UNPUBLISHED_RECORD}`);
  if (owner !== true && !building) throw foreign(dir, dir, 'is not a volume emseg wrote (its .zattrs has no "emseg" record)');
  const odd = names.find((n) => !n.startsWith(`${RECORDS_DIR}/`) && !isZarrName(n.split('/').at(-1)!));
  if (odd) throw foreign(dir, files.join(dir, odd), `${odd} was not written by emseg (not a Zarr file)`);
  return true;
}

function listTop(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw fromFsError(err, dir, 'listing the output folder');
  }
}

