/**
 * The per-block work of blockwise segmentation, passes 1 and 3 (see volume-segment.ts for the whole design).
 *
 * Pass 1 segments one block over its read region and stores, under the run's work folder:
 * - its own voxels' provisional labels, block-local ids 1..count (numbered by first appearance in raster order,
 *   so the result depends on the block alone), in a plain uint32 array whose chunks are the blocks;
 * - `blocks/<z.y.x>.json`: the count and the box of its border record;
 * - `blocks/<z.y.x>.ring.gz`: its read-region labels (local ids; 0 = a halo segment that reaches none of its own
 *   voxels) over its write region grown by half a halo, with the inside that no neighbour compares zeroed. That
 *   is all the stitching (pass 2) needs from a block: two neighbours are compared only where both boxes overlap.
 * Pass 3 rewrites a block's provisional labels with the final ids, reading only the block's slice of the
 * relabel table (segment-stitch.ts).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import type { OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { writtenFile, type WrittenFile } from '../io/formats/chunk-digests.js';
import { regionShape, type Region, type StackData, type VolumeReader } from '../io/formats/volume.js';
import { segmentSection, type SegmentOptions } from '../segment/index.js';
import { storeFor } from '../io/stores/index.js';
import { toMembrane, type MapPolarity } from '../image/map-meaning.js';
import type { Block } from './blocks.js';

const UINT8_MAX = 255;
/** Largest id a uint32 labels image holds. */
export const MAX_LABEL = 2 ** 32 - 1;
/** gzip level of the border records: labels compress well even at the fastest level. */
const RING_GZIP_LEVEL = 1;

/** Border record of a block: its segment count and the box its ring labels cover. */
export interface BlockRecord {
  count: number;
  box: Region;
}

export interface BlockLabels extends BlockRecord {
  /** Labels over `box` (z-major), local ids. */
  ring: Uint32Array;
}

export interface SegmentContext {
  reader: VolumeReader;
  /** What the maps' values mean (decided when they were opened: decideMapPolarity). */
  polarity: MapPolarity;
  options: SegmentOptions;
  /** Half the halo: how far on either side of a block border two neighbours' labels are compared. */
  near: number;
  /** Provisional labels (chunks == blocks). */
  provisional: OmeZarrWriter;
  /** Folder of the border records. */
  recordDir: string;
}

const recordName = (b: Block) => b.grid.join('.');
/** The store (local folder or s3:// prefix) the records are in, and a record's path there. */
const recordFile = (dir: string, name: string) => {
  const { store, loc } = storeFor(dir);
  return { store, path: store.join(loc, name) };
};
export const recordPath = (dir: string, b: Block) => recordFile(dir, `${recordName(b)}.json`).path;
export const ringPath = (dir: string, b: Block) => recordFile(dir, `${recordName(b)}.ring.gz`).path;

/** A record's bytes; an absent one is an error (caught below as a damaged record). */
async function readRecordFile(dir: string, name: string): Promise<Uint8Array> {
  const { store, path } = recordFile(dir, name);
  const bytes = await store.read(path);
  if (bytes === undefined) throw new Error(`${path}: no such file`);
  return bytes;
}

/** P(membrane) of section z of a read region of `polarity`, refusing values outside [0, 1] with the voxel named. */
function probability(data: StackData, read: Region, z: number, polarity: MapPolarity, path: string): Float32Array {
  const [, h, w] = regionShape(read);
  const n = h * w;
  const scale = data instanceof Uint8Array ? UINT8_MAX : 1;
  const p = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = data[z * n + i]! / scale;
    if (!(v >= 0 && v <= 1)) {
      const at = [read.start[0] + z, read.start[1] + Math.floor(i / w), read.start[2] + (i % w)];
      throw new EmsegIoError('invalid-data', path, `voxel [${at.join(',')}] is ${data[z * n + i]}; a membrane map holds values in [0, 1] (or 0..255 as uint8)`);
    }
    p[i] = toMembrane(v, polarity);
  }
  return p;
}

/** Region `r` grown (or, with negative `g`, shrunk) by `g` voxels in y and x. */
export function grownYX(r: Region, g: number): Region {
  return { start: [r.start[0], r.start[1] - g, r.start[2] - g], end: [r.end[0], r.end[1] + g, r.end[2] + g] };
}

/** Intersection of boxes (may be empty: end <= start on some axis). */
export function intersect(a: Region, b: Region): Region {
  const lo = [0, 1, 2].map((k) => Math.max(a.start[k]!, b.start[k]!));
  const hi = [0, 1, 2].map((k) => Math.min(a.end[k]!, b.end[k]!));
  return { start: lo as unknown as Region['start'], end: hi as unknown as Region['end'] };
}

export const isEmpty = (r: Region) => [0, 1, 2].some((k) => r.end[k]! <= r.start[k]!);

/** The labels of `src` (laid out over box `from`) inside `inside`, section by section. */
export function cropLabels(src: Uint32Array, from: Region, inside: Region): Uint32Array {
  const [, fh, fw] = regionShape(from);
  const [d, h, w] = regionShape(inside);
  const out = new Uint32Array(d * h * w);
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      const at = ((inside.start[0] + z - from.start[0]) * fh + inside.start[1] + y - from.start[1]) * fw + inside.start[2] - from.start[2];
      out.set(src.subarray(at, at + w), (z * h + y) * w);
    }
  }
  return out;
}

/** The box of a block's border record: its write region grown by `near`, inside its read region. */
export const ringBox = (b: Block, near: number) => intersect(grownYX(b.write, near), b.read);

/** What pass 1 computes for a block: its voxels' provisional labels and its border record. */
export interface SegmentedBlock {
  owned: Uint32Array;
  ring: Uint32Array;
  record: BlockRecord;
}

/**
 * Pass 1 for one block: segments every section of its read region (`data`) and numbers the segments that reach
 * its own voxels 1..count.
 */
export function segmentBlock(c: SegmentContext, b: Block, data: StackData): SegmentedBlock {
  const [bz, rh, rw] = regionShape(b.read);
  const [, wh, ww] = regionShape(b.write);
  const [oy, ox] = [b.write.start[1] - b.read.start[1], b.write.start[2] - b.read.start[2]];
  const box = ringBox(b, c.near);
  const [, gh, gw] = regionShape(box);
  const owned = new Uint32Array(bz * wh * ww);
  const ring = new Uint32Array(bz * gh * gw);
  let count = 0;
  for (let z = 0; z < bz; z++) {
    const seg = segmentSection(probability(data, b.read, z, c.polarity, c.reader.path), rh, rw, c.options).labels;
    const ids = new Uint32Array(seg.reduce((m, v) => Math.max(m, v), 0) + 1);
    for (let y = 0; y < wh; y++) {
      for (let x = 0; x < ww; x++) {
        const l = seg[(y + oy) * rw + x + ox]!;
        if (ids[l] === 0) {
          if (count >= MAX_LABEL) throw new EmsegError('too-large', c.provisional.dir, `block [${b.grid.join(',')}] has more than ${MAX_LABEL} segments`);
          ids[l] = ++count;
        }
        owned[(z * wh + y) * ww + x] = ids[l]!;
      }
    }
    fillRing(ring.subarray(z * gh * gw, (z + 1) * gh * gw), seg, ids, b, box, c.near);
  }
  return { owned, ring, record: { count, box } };
}

/** Writes a block's provisional labels and border record; returns the files written (for the done marker). */
export async function storeSegmentedBlock(c: SegmentContext, b: Block, s: SegmentedBlock): Promise<(string | WrittenFile)[]> {
  const chunks = await c.provisional.writeBlock(b.write, s.owned);
  const { store } = storeFor(c.recordDir);
  const ring = gzipSync(new Uint8Array(s.ring.buffer, s.ring.byteOffset, s.ring.byteLength), { level: RING_GZIP_LEVEL });
  const record = new TextEncoder().encode(JSON.stringify(s.record));
  await store.write(ringPath(c.recordDir, b), ring);
  await store.write(recordPath(c.recordDir, b), record);
  return [...chunks, writtenFile(ringPath(c.recordDir, b), ring), writtenFile(recordPath(c.recordDir, b), record)];
}

/**
 * One section of the ring: local ids over the box, except inside the write region shrunk by `near`, which no
 * neighbour's box reaches (a neighbour's box lies within `near` of the border), so it stays 0 and compresses away.
 */
function fillRing(out: Uint32Array, seg: Int32Array, ids: Uint32Array, b: Block, box: Region, near: number): void {
  const rw = b.read.end[2] - b.read.start[2];
  const [, gh, gw] = regionShape(box);
  const inner = grownYX(b.write, -near);
  for (let y = 0; y < gh; y++) {
    const vy = box.start[1] + y;
    const innerRow = vy >= inner.start[1] && vy < inner.end[1];
    for (let x = 0; x < gw; x++) {
      const vx = box.start[2] + x;
      if (innerRow && vx >= inner.start[2] && vx < inner.end[2]) continue;
      out[y * gw + x] = ids[seg[(vy - b.read.start[1]) * rw + vx - b.read.start[2]]!]!;
    }
  }
}

/** A block's border record and ring labels, checked against the plan's box (a damaged record is an error). */
export async function readBlockLabels(recordDir: string, b: Block, near: number): Promise<BlockLabels> {
  const path = recordPath(recordDir, b);
  try {
    const record = JSON.parse(new TextDecoder().decode(await readRecordFile(recordDir, `${recordName(b)}.json`))) as BlockRecord;
    const box = ringBox(b, near);
    const bytes = gunzipSync(await readRecordFile(recordDir, `${recordName(b)}.ring.gz`));
    const [d, h, w] = regionShape(box);
    if (!Number.isInteger(record.count) || JSON.stringify(record.box) !== JSON.stringify(box) || bytes.length !== 4 * d * h * w) {
      throw new EmsegIoError('corrupt', path, `border record does not describe block [${b.grid.join(',')}] of this plan; rerun with --restart`);
    }
    const ring = new Uint32Array(d * h * w);
    new Uint8Array(ring.buffer).set(bytes);
    return { ...record, ring };
  } catch (err) {
    if (err instanceof EmsegError) throw err;
    throw new EmsegIoError('corrupt', path, `border record of block [${b.grid.join(',')}] cannot be read (${(err as Error).message}); rerun with --restart`, { cause: err });
  }
}
