/**
 * Blockwise segmentation of a membrane-map volume into an OME-Zarr labels image (`emseg segment --out cells.zarr`),
 * for sections larger than a block. Sections are segmented in 2-D, as `emseg segment` does.
 *
 * Pass 1: each block is segmented over its read region (write region plus `halo` pixels in y and x, clipped to
 * the volume); segments that reach its write region get volume-wide ids, and its write region is written. The
 * block's read-region labels stay in memory until its later neighbours are done (one row of blocks), and where
 * two neighbours' read regions overlap, segments that are each other's largest overlap are joined (union-find;
 * src/segment/stitch.ts). Pass 2 rewrites every block with consecutive ids 1..n over the whole volume (uint32).
 * The stitching needs every block, so this job is neither sharded nor resumed: a rerun starts again.
 */
import { resolve } from 'node:path';
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import { createOmeZarr, type OmeZarrWriter } from '../io/formats/ome-zarr-write.js';
import { regionShape, type Region, type Vec3 } from '../io/formats/volume.js';
import type { VolumeReader } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import type { StackData } from '../io/stack.js';
import { segmentSection, type SegmentOptions } from '../segment/index.js';
import { UnionFind, mutualBestMatches } from '../segment/stitch.js';
import { planBlocks, type Block, type BlockPlan } from './blocks.js';
import { silentProgress, type ProgressFactory } from './progress.js';

/** Default block edge in y and x. */
export const DEFAULT_SEGMENT_BLOCK_EDGE = 1024;
/** Default halo in y and x: wide enough that smoothing, seeds and merges near a block border see the cell. */
export const DEFAULT_SEGMENT_HALO = 128;
const UINT8_MAX = 255;
const MAX_LABEL = 2 ** 32 - 1;

export interface VolumeSegmentJob {
  /** A membrane-map volume (e.g. `maps.zarr` from emseg predict). */
  pred: string;
  /** OME-Zarr labels output (ends in .zarr). */
  out: string;
  /** Values are P(membrane); default: the polarity recorded in the maps' metadata, else the ISBI polarity. */
  membraneProb?: boolean;
  options: SegmentOptions;
  block?: Vec3;
  halo?: number;
  overwrite?: boolean;
  scale?: number;
}

export interface VolumeSegmentResult {
  out: string;
  plan: BlockPlan;
  /** Segments in the whole volume (ids 1..cells). */
  cells: number;
  /** Pairs of block segments joined across block borders. */
  joined: number;
}

/** Whether values are P(membrane): the flag, else the maps' recorded polarity, else false (ISBI polarity). */
function membraneHigh(job: VolumeSegmentJob, reader: VolumeReader): boolean {
  if (job.membraneProb !== undefined) return job.membraneProb;
  const polarity = (reader.attributes.emseg as { polarity?: string } | undefined)?.polarity;
  return polarity === 'membrane-high';
}

/** P(membrane) of section z of a read region, refusing values outside [0, 1] with the voxel named. */
function probability(data: StackData, read: Region, z: number, high: boolean, path: string): Float32Array {
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
    p[i] = high ? v : 1 - v;
  }
  return p;
}

interface Labelled {
  block: Block;
  /** Per section of the block: read-region labels, volume-wide ids (0 = a halo segment owned by no voxel here). */
  labels: Uint32Array[];
}

interface State {
  reader: VolumeReader;
  writer: OmeZarrWriter;
  job: VolumeSegmentJob;
  high: boolean;
  sets: UnionFind;
  next: number;
}

/** Segments one block, numbers its owned segments from `s.next`, writes its write region; returns its labels. */
async function segmentBlock(s: State, b: Block): Promise<Labelled> {
  const data = await s.reader.readRegion(b.read);
  const [bz, rh, rw] = regionShape(b.read);
  const [, wh, ww] = regionShape(b.write);
  const oy = b.write.start[1] - b.read.start[1];
  const ox = b.write.start[2] - b.read.start[2];
  const owned = new Uint32Array(bz * wh * ww);
  const labels: Uint32Array[] = [];
  for (let z = 0; z < bz; z++) {
    const seg = segmentSection(probability(data, b.read, z, s.high, s.reader.path), rh, rw, s.job.options).labels;
    const ids = new Uint32Array(seg.reduce((m, v) => Math.max(m, v), 0) + 1);
    for (let y = 0; y < wh; y++) {
      for (let x = 0; x < ww; x++) {
        const l = seg[(y + oy) * rw + x + ox]!;
        if (ids[l] === 0) {
          if (s.next >= MAX_LABEL) throw new EmsegError('too-large', s.job.out, `more than ${MAX_LABEL} segments; use larger blocks`);
          ids[l] = ++s.next;
        }
        owned[(z * wh + y) * ww + x] = ids[l]!;
      }
    }
    s.sets.grow(s.next);
    labels.push(Uint32Array.from(seg, (l) => ids[l]!));
  }
  await s.writer.writeRegion(b.write, owned);
  return { block: b, labels };
}

/** The labels of `r` inside `inside` (both y/x read regions), section z. */
function crop(r: Labelled, z: number, inside: Region): Uint32Array {
  const [, , rw] = regionShape(r.block.read);
  const [, h, w] = regionShape(inside);
  const out = new Uint32Array(h * w);
  for (let y = 0; y < h; y++) {
    const src = (inside.start[1] + y - r.block.read.start[1]) * rw + inside.start[2] - r.block.read.start[2];
    out.set(r.labels[z]!.subarray(src, src + w), y * w);
  }
  return out;
}

/** Region `r` grown by `g` voxels in y and x (not clipped). */
function grown(r: Region, g: number): Region {
  return { start: [r.start[0], r.start[1] - g, r.start[2] - g], end: [r.end[0], r.end[1] + g, r.end[2] + g] };
}

/**
 * Joins the mutual best matches of two blocks of the same z range, compared where both segmentations are
 * trustworthy: within half a halo of either block's own voxels (so never near the edge of a read region).
 */
function stitch(sets: UnionFind, a: Labelled, b: Labelled, halo: number): number {
  const near = Math.floor(halo / 2);
  const ra = grown(a.block.write, near);
  const rb = grown(b.block.write, near);
  const lo = (k: 1 | 2) => Math.max(ra.start[k], rb.start[k], a.block.read.start[k], b.block.read.start[k]);
  const hi = (k: 1 | 2) => Math.min(ra.end[k], rb.end[k], a.block.read.end[k], b.block.read.end[k]);
  const start = [a.block.read.start[0], lo(1), lo(2)] as const;
  const end = [a.block.read.end[0], hi(1), hi(2)] as const;
  if (start[1] >= end[1] || start[2] >= end[2]) return 0;
  let joined = 0;
  for (let z = 0; z < a.labels.length; z++) {
    for (const [la, lb] of mutualBestMatches(crop(a, z, { start, end }), crop(b, z, { start, end }))) {
      if (sets.find(la) !== sets.find(lb)) joined++;
      sets.union(la, lb);
    }
  }
  return joined;
}

/** Segments a membrane-map volume block by block and stitches the blocks into one labels image. */
export async function runVolumeSegment(job: VolumeSegmentJob, progress: ProgressFactory = silentProgress): Promise<VolumeSegmentResult> {
  const reader = await openVolume(job.pred, { scale: job.scale });
  try {
    if (resolve(job.out) === resolve(job.pred.replace(/[/\\]\d+$/, ''))) {
      throw new EmsegError('invalid-option', '--out', `is the input ${job.pred}; write the labels elsewhere`);
    }
    if (reader.dtype !== 'uint8' && reader.dtype !== 'float32') {
      throw new EmsegIoError('unsupported', reader.path, `is ${reader.dtype}; membrane maps are uint8 (0..255) or float32 (0..1)`);
    }
    const [, h, w] = reader.shape;
    const block = job.block ?? [1, Math.min(DEFAULT_SEGMENT_BLOCK_EDGE, h), Math.min(DEFAULT_SEGMENT_BLOCK_EDGE, w)] as Vec3;
    const halo = job.halo ?? DEFAULT_SEGMENT_HALO;
    const plan = planBlocks(reader.shape, block, [0, halo, halo]);
    const writer = await createOmeZarr(job.out, { shape: reader.shape, dtype: 'uint32', chunks: block, kind: 'labels', name: 'cells',
      extra: { maps: resolve(job.pred), segment: job.options, halo } }, { overwrite: job.overwrite });
    const s: State = { reader, writer, job, high: membraneHigh(job, reader), sets: new UnionFind(), next: 0 };
    const joined = await firstPass(s, plan, progress);
    const final = s.sets.compact();
    await relabel(writer, plan, final, progress);
    await writer.buildPyramid();
    return { out: job.out, plan, cells: final.reduce((m, v) => Math.max(m, v), 0), joined };
  } finally {
    await reader.close();
  }
}

/** Pass 1: segment, number and write each block; stitch it to its earlier neighbours (one row of blocks kept). */
async function firstPass(s: State, plan: BlockPlan, progress: ProgressFactory): Promise<number> {
  const bar = progress('segment', plan.blocks.length, 'block {block}');
  const kept = new Map<number, Labelled>();
  const [, gy, gx] = plan.grid;
  let joined = 0;
  try {
    for (const b of plan.blocks) {
      const here = await segmentBlock(s, b);
      for (const [dy, dx] of [[-1, -1], [-1, 0], [-1, 1], [0, -1]] as const) {
        const [y, x] = [b.grid[1] + dy, b.grid[2] + dx];
        if (y < 0 || x < 0 || x >= gx) continue;
        const other = kept.get((b.grid[0] * gy + y) * gx + x);
        if (other) joined += stitch(s.sets, other, here, plan.halo[1]);
      }
      kept.set(b.index, here);
      kept.delete(b.index - gx - 1);
      bar.update(b.index + 1, { block: b.grid.join(',') });
    }
  } finally {
    bar.stop();
  }
  return joined;
}

/** Pass 2: every block's ids replaced by the final consecutive ids. */
async function relabel(writer: OmeZarrWriter, plan: BlockPlan, final: Uint32Array, progress: ProgressFactory): Promise<void> {
  const labels = await openVolume(`${writer.dir}/0`);
  const bar = progress('relabel', plan.blocks.length, '');
  try {
    for (const b of plan.blocks) {
      const data = (await labels.readRegion(b.write)) as Uint32Array;
      for (let i = 0; i < data.length; i++) data[i] = final[data[i]!]!;
      await writer.writeRegion(b.write, data);
      bar.update(b.index + 1, {});
    }
  } finally {
    bar.stop();
    await labels.close();
  }
}
