/**
 * Pass 2 of blockwise segmentation: the stitching. Needs every pass-1 block done. Reads the blocks' segment
 * counts (giving each block an offset, so block b's local id l is the provisional id offset_b + l) and their
 * border records, joins across every pair of neighbouring blocks (8-neighbourhood in y, x; sections are never
 * joined along z) the segments that are each other's largest overlap where their boxes overlap (mutual maximum
 * overlap, src/segment/stitch.ts), and numbers the sets 1..cells by their smallest provisional id.
 *
 * It writes `offsets.bin` (float64 per block, then the total), `relabel.bin` (uint32 final id per provisional
 * id, index 0 = 0) and, last, `stitch.json` (the run it belongs to, the counts, both files' sizes): each
 * atomically, and the content depends only on the pass-1 records, so two processes that both compute it write
 * the same bytes. Pass 3 reads only its block's two offsets and its slice of the table.
 */
import { EmsegError, describeError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { UnionFind, mutualBestMatches } from '../segment/stitch.js';
import { storeFor } from '../io/stores/index.js';
import { blockAtGrid, eachBlock, type Block, type BlockPlan } from './blocks.js';
import type { ProgressFactory } from './progress.js';
import { MAX_LABEL, cropLabels, intersect, isEmpty, readBlockLabels, type BlockLabels } from './segment-blocks.js';

const STITCH_VERSION = 1;
const OFFSET_BYTES = Float64Array.BYTES_PER_ELEMENT;
const ID_BYTES = Uint32Array.BYTES_PER_ELEMENT;
/** Earlier neighbours of a block in raster order (the later ones pair with it when they come). */
const EARLIER: readonly (readonly [number, number])[] = [[-1, -1], [-1, 0], [-1, 1], [0, -1]];

export interface StitchRecord {
  version: number;
  /** The run (layout + identity) whose pass-1 records this stitching joined. */
  run: string;
  blocks: number;
  /** Provisional ids (sum of the blocks' counts). */
  segments: number;
  /** Final ids 1..cells. */
  cells: number;
  /** Pairs of block segments joined across block borders. */
  joined: number;
  sizes: { offsets: number; relabel: number };
}

export const stitchFiles = (dir: string) => {
  const { store, loc } = storeFor(dir); // a local folder or an s3:// prefix
  return { store, record: store.join(loc, 'stitch.json'), offsets: store.join(loc, 'offsets.bin'), relabel: store.join(loc, 'relabel.bin') };
};

/** The stitching of this run if it is complete (record, run and file sizes agree), else undefined. */
export async function readStitch(dir: string, run: string): Promise<StitchRecord | undefined> {
  const f = stitchFiles(dir);
  const rec = await readStitchRecord(dir); // damaged: redone
  if (!rec || rec.version !== STITCH_VERSION || rec.run !== run) return undefined;
  const size = (p: string) => f.store.size(p).catch(() => undefined);
  if ((await size(f.offsets)) !== rec.sizes.offsets || (await size(f.relabel)) !== rec.sizes.relabel) return undefined;
  return rec;
}

/** The stitch record in `dir`, or undefined when there is none or it is damaged. */
export async function readStitchRecord(dir: string): Promise<StitchRecord | undefined> {
  const f = stitchFiles(dir);
  const bytes = await f.store.read(f.record).catch(() => undefined);
  try {
    return bytes === undefined ? undefined : JSON.parse(new TextDecoder().decode(bytes)) as StitchRecord;
  } catch {
    return undefined;
  }
}

/** Joins two neighbouring blocks' segments (as provisional ids) where their border boxes overlap. */
function joinPair(sets: UnionFind, a: BlockLabels, offA: number, b: BlockLabels, offB: number): number {
  const zone = intersect(a.box, b.box);
  if (isEmpty(zone)) return 0;
  let joined = 0;
  for (const [la, lb] of mutualBestMatches(cropLabels(a.ring, a.box, zone), cropLabels(b.ring, b.box, zone))) {
    const [ga, gb] = [offA + la, offB + lb];
    if (sets.find(ga) !== sets.find(gb)) joined++;
    sets.union(ga, gb);
  }
  return joined;
}

/** Offsets of every block from the pass-1 records (counts only). */
async function blockOffsets(plan: BlockPlan, recordDir: string, near: number): Promise<Float64Array> {
  const offsets = new Float64Array(plan.count + 1);
  for (const b of eachBlock(plan)) {
    const count = (await readBlockLabels(recordDir, b, near)).count;
    offsets[b.index + 1] = offsets[b.index]! + count;
  }
  return offsets;
}

/**
 * Computes the stitching from the pass-1 records and writes it (see the header). Memory: the union-find and the
 * table (one integer per block segment) and the border records of two blocks at a time.
 */
export async function computeStitch(plan: BlockPlan, recordDir: string, near: number, dir: string, run: string, progress: ProgressFactory): Promise<StitchRecord> {
  const offsets = await blockOffsets(plan, recordDir, near);
  const segments = offsets[plan.count]!;
  if (segments > MAX_LABEL) throw new EmsegError('too-large', dir, `${segments} block segments exceed the uint32 ids of the labels image (${MAX_LABEL}); use larger blocks`);
  const sets = new UnionFind();
  sets.grow(segments);
  const at = (b: Block, dy: number, dx: number) => blockAtGrid(plan, [b.grid[0], b.grid[1] + dy, b.grid[2] + dx]);
  let joined = 0;
  const bar = progress('stitch', plan.count, '');
  try {
    for (const b of eachBlock(plan)) {
      const here = await readBlockLabels(recordDir, b, near);
      for (const [dy, dx] of EARLIER) {
        const n = at(b, dy, dx);
        if (n) joined += joinPair(sets, await readBlockLabels(recordDir, n, near), offsets[n.index]!, here, offsets[b.index]!);
      }
      bar.update(b.index + 1, {});
    }
  } finally {
    bar.stop();
  }
  const table = sets.compact();
  const cells = table.reduce((m, v) => Math.max(m, v), 0);
  const f = stitchFiles(dir);
  await f.store.write(f.offsets, new Uint8Array(offsets.buffer));
  await f.store.write(f.relabel, new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
  const rec: StitchRecord = { version: STITCH_VERSION, run, blocks: plan.count, segments, cells, joined,
    sizes: { offsets: offsets.byteLength, relabel: table.byteLength } };
  await f.store.write(f.record, JSON.stringify(rec, null, 2));
  return rec;
}

/** Final ids of block b's local ids 1..count (index 0 = local id 1), read from the table files by position. */
export async function blockTable(dir: string, b: Block): Promise<Uint32Array> {
  const f = stitchFiles(dir);
  const read = async (path: string, position: number, bytes: number): Promise<Uint8Array> => {
    let out: Uint8Array | undefined;
    try {
      out = await f.store.readRange(path, position, bytes);
    } catch (err) {
      throw new EmsegIoError('corrupt', path, `stitching table cannot be read (${describeError(err)}); rerun with --restart`, { cause: err });
    }
    if (out === undefined) throw new EmsegIoError('corrupt', path, 'stitching table cannot be read (no such file); rerun with --restart');
    const bytesRead = out.length;
    if (bytesRead !== bytes) throw new EmsegIoError('corrupt', path, `stitching table is short (${bytesRead} of ${bytes} bytes at ${position}); rerun with --restart`);
    return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice(); // typed views below need their own buffer
  };
  const span = new Float64Array((await read(f.offsets, b.index * OFFSET_BYTES, 2 * OFFSET_BYTES)).buffer);
  const [first, end] = [span[0]!, span[1]!];
  const ids = await read(f.relabel, (first + 1) * ID_BYTES, (end - first) * ID_BYTES);
  return new Uint32Array(ids.buffer);
}
