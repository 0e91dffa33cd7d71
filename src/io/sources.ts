/** Turns a path, folder, glob or list of them into an ordered list of image files. */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import fg from 'fast-glob';
import { compare } from 'natural-orderby';
import { EmsegIoError, fromFsError } from './errors.js';
import { displayPath, isUrl } from './stores/index.js';

export const IMAGE_EXTENSIONS = ['.png', '.tif', '.tiff'] as const;

export function hasImageExtension(path: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(path).toLowerCase());
}

/** Natural order, so 2.png comes before 10.png. */
export function naturalSort(paths: readonly string[]): string[] {
  return [...paths].sort(compare());
}

/** The static folder part of a glob (`data/sec*.png` -> `data`): where its files are. */
export function globBase(pattern: string): string {
  const parts = pattern.split('/');
  const i = parts.findIndex((p) => fg.isDynamicPattern(p));
  return parts.slice(0, i).join('/') || '.';
}

/**
 * Files of one input, in stack order: a file is itself; a folder gives its image files in natural
 * order (hidden files and sub-folders are skipped, any other file is an error: a stray file in a
 * slice folder usually means the wrong folder); a pattern that is not an existing path is a glob.
 */
export async function resolveSources(input: string | readonly string[]): Promise<string[]> {
  if (typeof input !== 'string') {
    const lists = [];
    for (const one of input) lists.push(await resolveSources(one));
    return lists.flat();
  }
  if (isUrl(input)) {
    throw new EmsegIoError('unsupported', displayPath(input), 'image stacks (PNG/TIFF files, folders, globs) are read from local paths; from a URL emseg reads Zarr and OME-Zarr volumes only');
  }
  const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw fromFsError(err, input, 'reading');
  });
  if (info?.isDirectory()) return listFolder(input);
  if (info) return [input];
  if (fg.isDynamicPattern(input)) return expandGlob(input);
  throw new EmsegIoError('not-found', input, 'no such file or folder');
}

async function listFolder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true }).catch((err) => {
    throw fromFsError(err, folder, 'listing the folder');
  });
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || e.isDirectory()) continue;
    const path = join(folder, e.name);
    if (!hasImageExtension(e.name)) {
      throw new EmsegIoError('not-image', path, `not an image (expected ${IMAGE_EXTENSIONS.join(', ')}); remove it from the slice folder`);
    }
    files.push(path);
  }
  if (files.length === 0) throw new EmsegIoError('empty', folder, `folder holds no ${IMAGE_EXTENSIONS.join('/')} image`);
  return orderByName(files);
}

async function expandGlob(pattern: string): Promise<string[]> {
  const matches = await fg(pattern, { onlyFiles: true, dot: false, followSymbolicLinks: true });
  if (matches.length === 0) throw new EmsegIoError('not-found', pattern, 'glob matches no file');
  const stray = matches.find((m) => !hasImageExtension(m));
  if (stray !== undefined) {
    throw new EmsegIoError('not-image', stray, `matched by ${pattern} but not an image (expected ${IMAGE_EXTENSIONS.join(', ')})`);
  }
  return naturalSort(matches);
}

/** Sorts a folder's files by name only, so the folder path cannot disturb the order. */
function orderByName(files: string[]): string[] {
  const byName = compare();
  return [...files].sort((a, b) => byName(basename(a), basename(b)));
}
