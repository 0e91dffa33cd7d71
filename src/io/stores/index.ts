/**
 * One store registry: where a volume's bytes live, chosen by the path's scheme. A plain path is the local file
 * system (`file`); `http://` and `https://` URLs are read over HTTP (`http`, read-only); `s3://bucket/prefix` is
 * object storage through the S3 API (`s3`, ./s3.ts). Formats that read through a store (Zarr) name their files by
 * `join`/`parent`/`name` of the store, never by node:path on a URL.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import FileSystemStore from '@zarrita/storage/fs';
import { EmsegIoError, fromFsError } from '../errors.js';
import { S3ZarrStore, isS3Url, joinS3, parentS3, parseS3Url, s3Exists, s3Get, s3List, s3Name } from './s3.js';
import { HttpStore, httpExists, httpGet, isHttpUrl, joinUrl, parentUrl, safeHttpUrl, urlName, withoutCredentials, type ByteRange } from './http.js';

export type StoreScheme = 'file' | 'http' | 's3';

/** What zarrita reads chunks and metadata through (keys like '/0/.zarray'). */
export interface ZarrReadable {
  get(key: `/${string}`, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
  getRange(key: `/${string}`, range: ByteRange, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
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
}

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
};

/** A path with a scheme (`s3://`, `http://`): never a local file name, never resolve()d. */
export const isUrl = (path: string): boolean => /^[a-z][a-z0-9+.-]+:\/\//i.test(path);

/** Is this path read through a store other than the local file system? */
export const isRemote = (path: string): boolean => isUrl(path);

/** The path as messages and metadata show it: a URL without user:password. */
export function displayPath(path: string): string {
  return isHttpUrl(path) ? safeHttpUrl(path) : path.replace(/^([a-z][a-z0-9+.-]+:\/\/)[^/@]*@/i, '$1');
}

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

/** Refuses an output at a URL: outputs are written to local (or shared) folders; the http store is read-only. */
export function refuseRemoteOutput(path: string): void {
  if (!isUrl(path)) return;
  throw new EmsegIoError('read-only', displayPath(path), 'an output cannot be written to a URL: http(s) is a read-only store; write to a local (or shared) folder');
}
