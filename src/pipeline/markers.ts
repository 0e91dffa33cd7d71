/**
 * Per-block done markers, stored with the output (`OUT/.emseg/`), for resumable and sharded blockwise runs.
 *
 * They never lie: `run.json` records the block layout (plan id) and what the run computes from (model and
 * input digests); reopening with a different layout or model is refused unless the caller restarts
 * explicitly, which clears every marker. A block's marker is written atomically and only by markDone(), which
 * the caller invokes after the block's chunks are fully written; it lists those chunk files with their sizes and
 * crc32 digests (of the bytes the writer just stored, or read back when the caller names a file only), and isDone()
 * checks that they are all still there, unchanged in size and content, and that the marker belongs to this run
 * (status() checks sizes only: it would otherwise read the whole output). Readers of the output check every chunk
 * they read against the same digests (src/io/formats/chunk-digests.ts). Failed blocks get a failure record
 * (coordinates, error) that never counts as done.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { EmsegError, describeError } from '../errors.js';
import { BLOCKS_DIR, DONE_SUFFIX, crc32, type WrittenFile } from '../io/formats/chunk-digests.js';
import { lastingError, worthRetrying, type EmsegIoError } from '../io/errors.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { isUrl } from '../io/registry.js';
import { storeFor, type VolumeStore } from '../io/stores/index.js';
import { RECORDS_DIR } from '../io/volume-output.js';
import { blockAtGrid, planBlocks } from './blocks.js';
import { isStalled } from './progress.js';
import type { Block, BlockPlan } from './blocks.js';

/** Folder inside the output that holds the run record and the markers; hidden, so Zarr readers skip it. */
export const MARKER_DIR = RECORDS_DIR;
const MARKER_VERSION = 1;

export interface RunIdentity {
  /** Digest of the model files (or any string naming exactly what computes the output). */
  model: string;
  /** Digest of the input (see volumeFingerprint). */
  input: string;
}

export interface BlockFailure {
  index: number;
  grid: readonly number[];
  write: Block['write'];
  code: string;
  message: string;
  attempts: number;
  time: string;
}

export interface RunStatus {
  total: number;
  done: number;
  failed: BlockFailure[];
  remaining: number;
  /**
   * Seconds left at the rate done markers were written so far; undefined before two blocks are done, when every
   * remaining block failed, and when no block finished recently (isStalled: nothing seems to run).
   */
  etaSeconds?: number;
  /** Seconds since the last done marker was written (undefined before the first). */
  idleSeconds?: number;
  /**
   * The failure that stopped the run, when the latest event is a failure no retry fixes (disk full, read-only,
   * permission: worthRetrying): runs stop at such a failure, so no block is being finished; no ETA then.
   */
  stoppedBy?: BlockFailure;
}

export interface MarkerStore {
  readonly dir: string;
  /** Id of this run (layout + identity): equal on every machine that opens the same output for the same job. */
  readonly run: string;
  /** When this output's run record was written (tells two outputs of one run apart: see the queue's job sets). */
  readonly created?: string;
  isDone(block: Block): Promise<boolean>;
  /**
   * Call only after every chunk of the block is written; `files` are those chunk files: by name (read back for their
   * size and digest) or with the size and digest of the bytes written (WrittenFile: no read).
   */
  markDone(block: Block, files?: readonly (string | WrittenFile)[]): Promise<void>;
  markFailed(block: Block, error: unknown, attempts: number): Promise<void>;
  status(): Promise<RunStatus>;
}

interface RunRecord {
  version: number;
  layout: { id: string; shape: readonly number[]; block: readonly number[]; halo: readonly number[]; align: readonly number[] };
  identity: RunIdentity;
  created: string;
}

interface DoneRecord {
  version: number;
  run: string;
  index: number;
  grid: readonly number[];
  /** Chunk files relative to the output folder; crc32 is absent in markers of emseg versions before digests. */
  files: { path: string; size: number; crc32?: number }[];
  finished: string;
}

export function digest(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/**
 * Digest of files' contents (model weights and specs are small enough to hash whole). Each file is hashed by its
 * name and bytes and the per-file digests are sorted, so the result does not depend on where the files are mounted.
 */
export async function digestFiles(paths: readonly string[]): Promise<string> {
  const each: string[] = [];
  for (const p of paths) {
    const bytes = await readFile(p).catch((err) => {
      throw new EmsegError('not-found', p, `cannot read for the run digest (${describeError(err)})`);
    });
    each.push(digest(p.split(/[/\\]/).pop()!, bytes));
  }
  return digest(...each.sort());
}

/**
 * Digest of a volume's identity: format, path, array, shape, dtype, chunks and level. It does not hash the voxels
 * (terabytes); rewriting an input in place under the same layout is not detected. With `relativeTo` (the output
 * folder) the path is taken relative to it, so machines that mount the shared storage at different points (queue
 * workers) agree on the identity; without it the absolute path is used; a URL is used as it is.
 */
export function volumeFingerprint(reader: VolumeReader, relativeTo?: string): string {
  const { format, shape, dtype, chunks, level, scales } = reader;
  // A URL names the same volume from every machine (and reader.path holds no credentials): taken as it is.
  const path = isUrl(reader.path) ? reader.path
    : relativeTo === undefined ? resolve(reader.path) : relative(resolve(relativeTo), resolve(reader.path)).split(sep).join('/');
  return digest(JSON.stringify({ format, path, shape, dtype, chunks, level, array: scales[level]?.path }));
}

const MS_PER_S = 1000;
/** Hex characters of a run id (64 bits). */
const RUN_ID_HEX = 16;
const runId = (r: RunRecord) => digest(r.layout.id, r.identity.model, r.identity.input).slice(0, RUN_ID_HEX);
const markerName = (b: Block) => b.grid.join('.');

/**
 * Opens (creating if needed) the markers of `outDir` for this plan and identity. A record left by another
 * layout, model or input is refused with code 'resume-mismatch' unless `restart`, which deletes all markers.
 */
export async function openMarkers(outDir: string, plan: BlockPlan, identity: RunIdentity, options: { restart?: boolean } = {}): Promise<MarkerStore> {
  const { store, loc: out } = storeFor(outDir);
  const dir = store.join(out, MARKER_DIR);
  const runPath = store.join(dir, 'run.json');
  const record: RunRecord = {
    version: MARKER_VERSION,
    layout: { id: plan.id, shape: plan.shape, block: plan.block, halo: plan.halo, align: plan.align },
    identity,
    created: new Date().toISOString(),
  };
  const existing = await readRecord<RunRecord>(store, runPath);
  if (existing && runId(existing) !== runId(record)) {
    if (!options.restart) throw mismatch(runPath, existing, record);
    await store.remove(dir, true);
  }
  if (!existing || options.restart) await store.write(runPath, JSON.stringify(record, null, 2));
  const run = runId(record);
  const created = existing && !options.restart && runId(existing) === run ? existing.created : record.created;
  return { ...makeStore(store, dir, out, plan, run), created };
}

function mismatch(path: string, old: RunRecord, now: RunRecord): EmsegError {
  const what = old.layout.id !== now.layout.id
    ? `block layout (was block [${old.layout.block.join(',')}] halo [${old.layout.halo.join(',')}] on shape [${old.layout.shape.join(',')}], now block [${now.layout.block.join(',')}] halo [${now.layout.halo.join(',')}] on shape [${now.layout.shape.join(',')}])`
    : old.identity.model !== now.identity.model ? 'model' : 'input';
  return new EmsegError('resume-mismatch', path, `the output was started with a different ${what}; pass --restart to start it again (deletes its progress) or write elsewhere`);
}

async function readRecord<T>(store: VolumeStore, path: string): Promise<T | undefined> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await store.read(path);
  } catch (err) {
    // The store's own refusal (S3 credentials, a missing bucket) as it is; the file system's as before.
    if (store.scheme !== 'file') throw err;
    throw new EmsegError('fs-failed', path, `cannot read (${describeError(err)})`);
  }
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    return undefined; // a damaged marker is no marker: the block is redone
  }
}

/** A chunk file's name inside the output, as markers record it ('0/1/2/3'; on disk with the system's separator). */
function inside(store: VolumeStore, outDir: string, file: string): string {
  return store.scheme === 'file' ? relative(outDir, file) : file.slice(outDir.length + 1);
}

function makeStore(store: VolumeStore, dir: string, outDir: string, plan: BlockPlan, run: string): MarkerStore {
  const blocksDir = store.join(dir, BLOCKS_DIR);
  const donePath = (b: Block) => store.join(blocksDir, `${markerName(b)}${DONE_SUFFIX}`);
  const failPath = (b: Block) => store.join(blocksDir, `${markerName(b)}.failed.json`);

  /** The marker is this run's and its files are there in their size; with `content`, also in their crc32. */
  async function valid(b: Block, rec: DoneRecord | undefined, content = false): Promise<boolean> {
    if (!rec || rec.version !== MARKER_VERSION || rec.run !== run || rec.index !== b.index) return false;
    for (const f of rec.files) {
      const path = store.join(outDir, f.path);
      if (content && f.crc32 !== undefined) {
        const bytes = await store.read(path).catch(() => undefined);
        if (bytes?.length !== f.size || crc32(bytes) !== f.crc32) return false;
      } else if ((await store.size(path).catch(() => undefined)) !== f.size) return false;
    }
    return true;
  }

  return {
    dir,
    run,
    isDone: async (b) => valid(b, await readRecord<DoneRecord>(store, donePath(b)), true),
    async markDone(b, files = []) {
      const entries = [];
      for (const f of files) {
        if (typeof f !== 'string') {
          entries.push({ path: inside(store, outDir, f.path), size: f.size, crc32: f.crc32 });
          continue;
        }
        const bytes = await store.read(f).catch(() => undefined);
        if (!bytes) throw new EmsegError('not-found', f, `block ${markerName(b)} is marked done but its chunk file is missing`);
        entries.push({ path: inside(store, outDir, f), size: bytes.length, crc32: crc32(bytes) });
      }
      const rec: DoneRecord = { version: MARKER_VERSION, run, index: b.index, grid: b.grid, files: entries, finished: new Date().toISOString() };
      await store.write(donePath(b), JSON.stringify(rec));
      await store.remove(failPath(b));
    },
    async markFailed(b, error, attempts) {
      await store.remove(donePath(b));
      await store.write(failPath(b), JSON.stringify({ ...blockFailure(b, error, attempts), run }));
    },
    status: () => countMarkers(store, blocksDir, plan, run, valid),
  };
}

/** The block a marker file names (`z.y.x.done.json`), or undefined for another file or a block outside the plan. */
function blockOfMarker(plan: BlockPlan, name: string): Block | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(done|failed)\.json$/.exec(name);
  return m ? blockAtGrid(plan, [Number(m[1]), Number(m[2]), Number(m[3])]) : undefined;
}

/** Done (valid for this run), failed (this run's records) and remaining blocks, with an ETA from the done times. */
async function countMarkers(store: VolumeStore, blocksDir: string, plan: BlockPlan, run: string,
  valid: (b: Block, rec: DoneRecord | undefined) => Promise<boolean>): Promise<RunStatus> {
  // Marker names only (a file system lists them; a bucket lists the keys under the prefix).
  const names = (await store.list(blocksDir).catch(() => [] as string[])).filter((n) => !n.includes('/'));
  let done = 0;
  const times: number[] = [];
  const failed: BlockFailure[] = [];
  for (const name of names) {
    const b = blockOfMarker(plan, name);
    if (!b) continue;
    if (name.endsWith(DONE_SUFFIX)) {
      const rec = await readRecord<DoneRecord>(store, store.join(blocksDir, name));
      if (await valid(b, rec)) {
        done++;
        times.push(Date.parse(rec!.finished));
      }
    } else if (name.endsWith('.failed.json')) {
      const rec = await readRecord<BlockFailure & { run: string }>(store, store.join(blocksDir, name));
      if (rec?.run === run) failed.push(rec);
    }
  }
  const remaining = plan.count - done;
  const status: RunStatus = { total: plan.count, done, failed, remaining };
  times.sort((a, b) => a - b);
  const last = times[times.length - 1] ?? -Infinity;
  status.stoppedBy = failed.filter((f) => !worthRetrying(f) && Date.parse(f.time) >= last).sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
  if (times.length === 0) return status;
  status.idleSeconds = Math.max(0, (Date.now() - last) / MS_PER_S);
  const interval = times.length >= 2 ? (last - times[0]!) / MS_PER_S / (times.length - 1) : undefined;
  // Failed blocks are not retried by the run that recorded them: the ETA is for the others.
  const pending = remaining - failed.length;
  if (interval !== undefined && pending > 0 && !status.stoppedBy && !isStalled(status.idleSeconds, interval)) status.etaSeconds = pending * interval;
  return status;
}

/** Status of the run recorded in `outDir` (for `emseg status`), from its run.json alone: no model or input needed. */
export async function readRunStatus(outDir: string): Promise<RunStatus & { layout: RunRecord['layout'] }> {
  const { store, loc: out } = storeFor(outDir);
  const dir = store.join(out, MARKER_DIR);
  const runPath = store.join(dir, 'run.json');
  const record = await readRecord<RunRecord>(store, runPath);
  if (!record?.layout) throw new EmsegError('not-found', runPath, 'no blockwise run is recorded in this output (or its record is damaged)');
  const { shape, block, halo, align } = record.layout;
  const v = (x: readonly number[]) => x as unknown as BlockPlan['shape'];
  const plan = planBlocks(v(shape), v(block), v(halo), v(align));
  if (plan.id !== record.layout.id) throw new EmsegError('corrupt', runPath, 'recorded layout does not match its id; the record was edited');
  const status = await makeStore(store, dir, out, plan, runId(record)).status();
  return { ...status, layout: record.layout };
}

/** Attempts per block before it is recorded as failed (a transient read error gets two more tries). */
export const DEFAULT_BLOCK_ATTEMPTS = 3;

/** The record of a block that failed every attempt: what markFailed stores and the runner reports. */
export function blockFailure(b: Block, error: unknown, attempts: number): BlockFailure {
  const code = error instanceof EmsegError ? error.code : 'failed';
  return { index: b.index, grid: b.grid, write: b.write, code, message: describeError(error), attempts, time: new Date().toISOString() };
}

/** The notice line of a retried block. */
export function retryNotice(b: Block, attempt: number, attempts: number, error: unknown): string {
  return `block [${b.grid.join(',')}] attempt ${attempt}/${attempts} failed (${describeError(error)}); retrying`;
}

/**
 * A block failed with an error no retry fixes (worthRetrying): the run stops here. The failure is recorded if the
 * disk still takes it (a full or read-only one may not, and that must not hide the cause); returns the error to
 * stop with, naming the path ("disk full", "read-only file system", "permission denied").
 */
export async function stopRun(markers: MarkerStore, b: Block, error: unknown, attempts: number): Promise<EmsegIoError> {
  const stop = lastingError(error, dirname(markers.dir), `writing block ${markerName(b)}`);
  await markers.markFailed(b, stop, attempts).catch(() => undefined);
  return stop;
}
