/**
 * CRC-32 digests of the Zarr chunk files emseg writes, checked whenever emseg reads them back, so a chunk that
 * changed on disk after emseg wrote it (a flipped bit, a copy gone wrong, another program writing into the array)
 * is refused instead of being decoded as data: blosc and raw chunks carry no checksum of their own.
 *
 * emseg writes Zarr v2 (NGFF 0.4) for readers such as zarr-python, zarrita, tensorstore and Neuroglancer, so the
 * digests stay out of the arrays' metadata (a checksum filter in .zarray is a codec some of them cannot decode).
 * They live in the output's hidden `.emseg/` folder, which Zarr readers skip, in one of two forms:
 * - the done markers of blockwise runs (`.emseg/blocks/*.done.json`, src/pipeline/markers.ts): each lists its
 *   block's chunk files with their size and crc32;
 * - a digest record per array written whole by one process (convert, pyramid levels):
 *   `.emseg/chunks/<array>.crc32`, one line `<chunk path> <size> <crc32 hex>` per chunk, appended as chunks are
 *   written and renamed into place once the array is complete.
 * A reader of a Zarr array looks for them in the folder that holds the array's group (and in its parent, where
 * the provisional labels of a blockwise segmentation keep their markers); an array without any is foreign and is
 * read exactly as before, unverified and at no cost.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import * as zlib from 'node:zlib';
import { EmsegIoError, fromFsError } from '../errors.js';
import { registerTemp, releaseTemp, sweepStaleTemps, tempPathFor } from '../../util/temp-files.js';
import { RECORDS_DIR } from '../volume-output.js';

/** Done markers of blockwise runs, inside RECORDS_DIR (their format: src/pipeline/markers.ts). */
export const BLOCKS_DIR = 'blocks';
export const DONE_SUFFIX = '.done.json';
/** Digest records of arrays written whole, inside RECORDS_DIR. */
export const DIGESTS_DIR = 'chunks';
const RECORD_SUFFIX = '.crc32';
/** First line of a digest record: names the format, so a later one can change it. */
const RECORD_HEADER = '# emseg chunk digests 1: path size crc32';

export interface ChunkDigest {
  size: number;
  crc32: number;
}

// zlib.crc32 exists from Node 20.15 / 22.2; package.json allows any Node 20, so older ones get the same CRC-32
// (IEEE 802.3, zlib's) from a table.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | undefined;

/** CRC-32 as zlib computes it (the table version: no native one on Node < 20.15). */
export function crc32Table(bytes: Uint8Array): number {
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) >>> 0 : crc32Table(bytes);
}

/**
 * A file just written, with the size and crc32 of the bytes written: a done marker lists it from these, without
 * reading the file back (on a bucket, one GET per file saved).
 */
export interface WrittenFile {
  path: string;
  size: number;
  crc32: number;
}

export const writtenFile = (path: string, bytes: Uint8Array): WrittenFile => ({ path, size: bytes.length, crc32: crc32(bytes) });

const hex = (crc: number) => crc.toString(16).padStart(8, '0');

/** Size and crc32 of a chunk file as it is on disk now (read whole: a chunk is bounded by its shape). */
export async function fileDigest(path: string): Promise<ChunkDigest | undefined> {
  const bytes = await readFile(path).catch(() => undefined);
  return bytes === undefined ? undefined : { size: bytes.length, crc32: crc32(bytes) };
}

/** Where the digest record of array `array` (a path inside the group folder `groupDir`, e.g. '0') lives. */
export function digestRecordPath(groupDir: string, array: string): string {
  return join(groupDir, RECORDS_DIR, DIGESTS_DIR, `${encodeURIComponent(array)}${RECORD_SUFFIX}`);
}

/** Forgets an array's digests: call before writing into it again, so a record never describes older chunks. */
export function removeDigestRecord(groupDir: string, array: string): void {
  rmSync(digestRecordPath(groupDir, array), { force: true });
}

/**
 * The digest record of one array written whole by this process: a line per chunk goes to a temporary file as
 * the chunk is written (memory stays constant whatever the chunk count), and seal() renames it into place once
 * every chunk is on disk. Signals and exit remove the temporary; the next writer sweeps one a SIGKILL left.
 */
export class DigestRecorder {
  private fd: number | undefined;
  private readonly tmp: string;
  readonly path: string;

  constructor(private readonly groupDir: string, private readonly array: string) {
    this.path = digestRecordPath(groupDir, array);
    removeDigestRecord(groupDir, array);
    const folder = dirname(this.path);
    try {
      mkdirSync(folder, { recursive: true });
      sweepStaleTemps(folder);
      this.tmp = tempPathFor(this.path);
      registerTemp(this.tmp);
      this.fd = openSync(this.tmp, 'w');
      writeSync(this.fd, `${RECORD_HEADER}\n`);
    } catch (err) {
      throw fromFsError(err, folder, 'writing the chunk digests');
    }
  }

  /** A chunk of this array was written: `key` is its store key ('/0/1/2/3', relative to the group folder). */
  add(key: string, bytes: Uint8Array): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, `${key.replace(/^\/+/, '')} ${bytes.length} ${hex(crc32(bytes))}\n`);
    } catch (err) {
      throw fromFsError(err, this.tmp, 'writing the chunk digests');
    }
  }

  /** Every chunk is written: the record takes its place. */
  seal(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
      this.fd = undefined;
      renameSync(this.tmp, this.path);
    } catch (err) {
      throw fromFsError(err, this.path, 'writing the chunk digests');
    } finally {
      releaseTemp(this.tmp);
    }
  }

  /** The array was not completed: no record (its chunks read unverified, as foreign ones). */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmp, { force: true });
    releaseTemp(this.tmp);
    removeDigestRecord(this.groupDir, this.array);
  }
}

/** What a stored record needs of its store (stores/index.ts's VolumeStore). */
interface RecordFiles {
  join(loc: string, ...parts: string[]): string;
  write(loc: string, bytes: string | Uint8Array): Promise<void>;
  remove(loc: string): Promise<void>;
}

/**
 * The digest record of an array written whole into a store without local files (s3://): its lines stay in memory
 * (one short line per chunk of the array) and seal() stores them as one object, after the array's last chunk.
 */
export class StoredDigestRecorder {
  private lines: string[] | undefined = [RECORD_HEADER];

  private constructor(private readonly files: RecordFiles, readonly path: string) {}

  /** Forgets the array's old record (so no record describes older chunks), then records. */
  static async start(files: RecordFiles, groupDir: string, array: string): Promise<StoredDigestRecorder> {
    const path = files.join(groupDir, RECORDS_DIR, DIGESTS_DIR, `${encodeURIComponent(array)}${RECORD_SUFFIX}`);
    await files.remove(path);
    return new StoredDigestRecorder(files, path);
  }

  add(key: string, bytes: Uint8Array): void {
    this.lines?.push(`${key.replace(/^\/+/, '')} ${bytes.length} ${hex(crc32(bytes))}`);
  }

  async seal(): Promise<void> {
    if (!this.lines) return;
    const text = `${this.lines.join('\n')}\n`;
    this.lines = undefined;
    await this.files.write(this.path, text);
  }

  async abort(): Promise<void> {
    this.lines = undefined;
    await this.files.remove(this.path);
  }
}

/** Digests by chunk path relative to the group folder ('0/1/2/3'), each with the file it was recorded in. */
type DigestMap = Map<string, ChunkDigest & { source: string }>;

/** Lines of a digest record; a damaged line is skipped (its chunk reads unverified) rather than failing reads. */
async function readRecord(path: string, into: DigestMap): Promise<void> {
  parseRecord(await readFile(path, 'utf8').catch(() => undefined), path, into);
}

function parseRecord(text: string | undefined, path: string, into: DigestMap): void {
  if (text === undefined || !text.startsWith(RECORD_HEADER)) return;
  for (const line of text.split('\n').slice(1)) {
    const m = /^(\S+) (\d+) ([0-9a-f]{8})$/.exec(line);
    if (m) into.set(m[1]!, { size: Number(m[2]), crc32: parseInt(m[3]!, 16), source: path });
  }
}

/** The chunk files the done markers in `markerDir` list, with their digests, keyed relative to `root`. */
async function readDoneMarkers(markerDir: string, base: string, root: string, into: DigestMap): Promise<void> {
  const blocks = join(markerDir, BLOCKS_DIR);
  const names = await readdir(blocks).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith(DONE_SUFFIX))) {
    const path = join(blocks, name);
    let files: { path?: unknown; size?: unknown; crc32?: unknown }[];
    try {
      files = (JSON.parse(await readFile(path, 'utf8')) as { files?: typeof files }).files ?? [];
    } catch {
      continue; // a damaged marker is no marker (the run redoes its block); its chunks read unverified
    }
    for (const f of files) {
      if (typeof f.path !== 'string' || typeof f.size !== 'number' || typeof f.crc32 !== 'number') continue;
      const key = relative(root, join(base, f.path)).split(/[/\\]/).join('/');
      if (!key.startsWith('..')) into.set(key, { size: f.size, crc32: f.crc32, source: path });
    }
  }
}

const isDir = async (p: string) => (await stat(p).catch(() => undefined))?.isDirectory() ?? false;

/**
 * Checks chunks read from the group folder `root` against the digests emseg recorded for them. Loaded on the
 * first chunk read (a reader opened for metadata alone reads none), and loaded again once before a mismatch is
 * refused, in case a block was redone since.
 */
/** What a verifier needs of a store that is not the local file system (stores/index.ts's VolumeStore). */
interface RemoteFiles {
  read(loc: string): Promise<Uint8Array | undefined>;
  join(loc: string, ...parts: string[]): string;
}

export class ChunkVerifier {
  private digests: Promise<DigestMap> | undefined;

  private constructor(private readonly root: string, private readonly array: string, private readonly sources: string[],
    private readonly remote?: RemoteFiles) {}

  /**
   * The verifier of an array read over a store without folder listings (HTTP): only the digest record of an array
   * written whole (convert, pyramid levels) can be fetched by name; chunks that only done markers list (blockwise
   * outputs) read unverified there. No record (HTTP 404): nothing to verify, at the cost of one request.
   */
  static remote(files: RemoteFiles, root: string, array: string): ChunkVerifier {
    return new ChunkVerifier(root, array, [], files);
  }

  private async loadRemote(files: RemoteFiles): Promise<DigestMap> {
    const map: DigestMap = new Map();
    const at = files.join(this.root, RECORDS_DIR, DIGESTS_DIR, `${encodeURIComponent(this.array)}${RECORD_SUFFIX}`);
    const bytes = await files.read(at);
    parseRecord(bytes === undefined ? undefined : new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes), at, map);
    return map;
  }

  /**
   * The verifier of array `array` inside group folder `root`, or undefined when neither `root` nor its parent
   * holds emseg's hidden folder (foreign data: read as before, at the cost of two stat calls). A `confined` reader
   * (a server) looks inside `root` only.
   */
  static async open(root: string, array: string, confined = false): Promise<ChunkVerifier | undefined> {
    const sources: string[] = [];
    for (const dir of confined ? [root] : [root, dirname(root)]) if (await isDir(join(dir, RECORDS_DIR))) sources.push(dir);
    return sources.length === 0 ? undefined : new ChunkVerifier(root, array, sources);
  }

  private load(): Promise<DigestMap> {
    this.digests ??= this.remote ? this.loadRemote(this.remote) : (async () => {
      const map: DigestMap = new Map();
      // Parent first: the folder's own record wins for a chunk both list.
      for (const dir of [...this.sources].reverse()) await readDoneMarkers(join(dir, RECORDS_DIR), dir, this.root, map);
      await readRecord(digestRecordPath(this.root, this.array), map);
      return map;
    })();
    return this.digests;
  }

  /** Refuses `bytes` read for store key `key` when they differ from what emseg recorded for that chunk. */
  async check(key: string, bytes: Uint8Array): Promise<void> {
    const name = key.replace(/^\/+/, '');
    let want = (await this.load()).get(name);
    if (!want || (want.size === bytes.length && want.crc32 === crc32(bytes))) return;
    this.digests = undefined; // a block redone since the digests were loaded has a new record
    want = (await this.load()).get(name);
    const got = crc32(bytes);
    if (!want || (want.size === bytes.length && want.crc32 === got)) return;
    throw new EmsegIoError('corrupt', this.remote ? this.remote.join(this.root, name) : join(this.root, name), `chunk changed after emseg wrote it: ${bytes.length} bytes with crc32 ${hex(got)}, `
      + `but ${basename(want.source)} recorded ${want.size} bytes with crc32 ${hex(want.crc32)} (${want.source}); its data is not what emseg `
      + 'wrote. Rerun the command that wrote it (a blockwise run redoes the block), or restore the file from a copy');
  }

}
