/**
 * One store registry: where a volume's bytes live, chosen by the path's scheme. A plain path is the local file
 * system (`file`); `http://` and `https://` URLs are read over HTTP (`http`, read-only); `s3://bucket/prefix` is
 * object storage through the S3 API (`s3`, ./s3.ts). Formats that read through a store (Zarr) name their files by
 * `join`/`parent`/`name` of the store, never by node:path on a URL.
 */
import { open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import FileSystemStore from '@zarrita/storage/fs';
import { EmsegIoError, fromFsError } from '../errors.js';
import { writeFileAtomic } from '../atomic.js';
import { AtomicFileSystemStore } from './file-chunks.js';
import { S3ZarrStore, isS3Url, joinS3, parentS3, parseS3Url, s3Delete, s3Exists, s3Get, s3List, s3Name, s3Put, s3Size } from './s3.js';
import { HttpStore, httpExists, httpGet, isHttpUrl, joinUrl, parentUrl, urlName, withoutCredentials, type ByteRange } from './http.js';
import { displayPath, isUrl } from './paths.js';

export { displayPath, isRemote, isUrl, refuseRemoteOutput } from './paths.js';

export type StoreScheme = 'file' | 'http' | 's3';

/** What zarrita reads chunks and metadata through (keys like '/0/.zarray'). */
export interface ZarrReadable {
  get(key: `/${string}`, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
  getRange(key: `/${string}`, range: ByteRange, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
}

/** What zarrita writes chunks through: each `set` stores one whole chunk file (atomically: never half of one). */
export interface ZarrWritable extends ZarrReadable {
  set(key: `/${string}`, value: Uint8Array): Promise<void>;
}

export interface VolumeStore {
  readonly scheme: StoreScheme;
  /** Whole contents of the file at `loc`, or undefined when there is none. */
  read(loc: string): Promise<Uint8Array | undefined>;
  isFile(loc: string): Promise<boolean>;
  /** Is `loc` a folder? Undefined where the store has no folders to ask about (HTTP): only files are known. */
  isFolder(loc: string): Promise<boolean | undefined>;
  join(loc: string, ...parts: string[]): string;
  parent(loc: string): string;
  name(loc: string): string;
  /** A zarrita store rooted at `root`. */
  zarr(root: string): ZarrReadable;
  /** Writes the whole file at `loc`, atomically (file: temporary name, then rename; s3: one PUT). */
  write(loc: string, bytes: string | Uint8Array): Promise<void>;
  /** Every file under the folder (or key prefix) `loc`, as '/'-separated names relative to it; [] when there is none. */
  list(loc: string): Promise<string[]>;
  /** `length` bytes of the file at `loc` from `offset` (fewer at its end), or undefined when there is no file. */
  readRange(loc: string, offset: number, length: number): Promise<Uint8Array | undefined>;
  /** Size in bytes of the file at `loc`, or undefined when there is none. */
  size(loc: string): Promise<number | undefined>;
  /** Removes the file at `loc`, and with `all` the folder (or key prefix) `loc` with everything under it. */
  remove(loc: string, all?: boolean): Promise<void>;
  /** A zarrita store rooted at `root` that also writes chunks, each whole. */
  zarrWritable(root: string): ZarrWritable;
}

/** Files under `dir`, recursively, as '/'-separated relative names (links and other non-files are not files here). */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fromFsError(err, dir, 'listing');
  });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath ?? (e as { path?: string }).path ?? dir, e.name)).split(sep).join('/'));
}

/** Part of a local file, read by position (a table of which one block needs a slice). */
async function readFileRange(loc: string, offset: number, length: number): Promise<Uint8Array | undefined> {
  const h = await open(loc, 'r').catch((err) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(err, loc, 'reading');
  });
  if (!h) return undefined;
  try {
    const out = new Uint8Array(length);
    const { bytesRead } = await h.read(out, 0, length, offset);
    return out.subarray(0, bytesRead);
  } catch (err) {
    throw fromFsError(err, loc, 'reading');
  } finally {
    await h.close();
  }
}

const readOnly = (loc: string): never => {
  throw new EmsegIoError('read-only', displayPath(loc), 'an output cannot be written to a URL: http(s) is a read-only store; write to a local (or shared) folder, or to s3://');
};
/** The same refusal as a rejected promise, for the store's asynchronous methods. */
const readOnlyAsync = async (loc: string): Promise<never> => readOnly(loc);

const fileStore: VolumeStore = {
  scheme: 'file',
  async read(loc) {
    try {
      return new Uint8Array(await readFile(loc));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromFsError(err, loc, 'reading');
    }
  },
  isFile: async (loc) => (await stat(loc).catch(() => undefined))?.isFile() ?? false,
  isFolder: async (loc) => (await stat(loc).catch(() => undefined))?.isDirectory() ?? false,
  join: (loc, ...parts) => join(loc, ...parts),
  parent: (loc) => dirname(resolve(loc)),
  name: (loc) => basename(resolve(loc)),
  zarr: (root) => new FileSystemStore(root),
  readRange: readFileRange,
  write: async (loc, bytes) => writeFileAtomic(loc, bytes),
  list: listFiles,
  size: async (loc) => (await stat(loc).catch(() => undefined))?.size,
  async remove(loc, all = false) {
    await rm(loc, { recursive: all, force: true }).catch((err) => {
      throw fromFsError(err, loc, 'removing');
    });
  },
  zarrWritable: (root) => new AtomicFileSystemStore(root),
};

const httpStore: VolumeStore = {
  scheme: 'http',
  read: (loc) => httpGet(loc),
  isFile: (loc) => httpExists(loc),
  isFolder: async () => undefined,
  join: joinUrl,
  parent: parentUrl,
  name: urlName,
  zarr: (root) => new HttpStore(root),
  readRange: (loc, offset, length) => httpGet(loc, { offset, length }),
  write: readOnlyAsync,
  list: readOnlyAsync,
  size: readOnlyAsync,
  remove: readOnlyAsync,
  zarrWritable: readOnly,
};

const s3Store: VolumeStore = {
  scheme: 's3',
  read: (loc) => s3Get(loc),
  isFile: (loc) => s3Exists(loc),
  // No folders in a bucket: a "folder" is a prefix that some key starts with.
  isFolder: async (loc) => (await s3List(loc, true, 1)).length > 0,
  join: joinS3,
  parent: parentS3,
  name: s3Name,
  zarr: (root) => new S3ZarrStore(root),
  readRange: (loc, offset, length) => s3Get(loc, { offset, length }),
  write: (loc, bytes) => s3Put(loc, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes),
  list: (loc) => s3List(loc),
  size: (loc) => s3Size(loc),
  async remove(loc, all = false) {
    const under = all ? (await s3List(loc)).map((k) => joinS3(loc, k)) : [];
    await s3Delete([loc, ...under]);
  },
  zarrWritable: (root) => new S3ZarrStore(root),
};

/**
 * The store a volume path names and the location inside it as emseg works with it (a URL without credentials,
 * which the http store keeps aside). A scheme no store serves is refused, naming it.
 */
export function storeFor(path: string): { store: VolumeStore; loc: string } {
  if (!isUrl(path)) return { store: fileStore, loc: path };
  if (isHttpUrl(path)) {
    try {
      return { store: httpStore, loc: withoutCredentials(path) };
    } catch (err) {
      throw new EmsegIoError('invalid-option', displayPath(path), 'is not a valid URL', { cause: err });
    }
  }
  if (isS3Url(path)) {
    const { bucket, key } = parseS3Url(path); // refuses a URL without a valid bucket name
    return { store: s3Store, loc: `s3://${bucket}${key ? `/${key}` : ''}` };
  }
  const scheme = /^([a-z0-9+.-]+):/i.exec(path)?.[1] ?? '';
  throw new EmsegIoError('unsupported', displayPath(path), `volumes are read from local paths, http(s):// and s3:// URLs; ${scheme}:// is not a store emseg reads`);
}

export { configureS3 } from './s3.js';
