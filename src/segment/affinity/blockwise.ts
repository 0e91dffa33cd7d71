/**
 * Watershed + agglomeration block by block (issue 26 item 4), as the per-block steps a blockwise job runs, daisy /
 * lsd style: (1) each block's fragments, computed over the block and a halo of context and kept only inside the
 * block; (2) each block's boundary edges with their affinity statistics (sum, count), for the nearest-neighbour
 * edges whose stored voxel lies in the block (each edge is counted by exactly one block, also across block faces);
 * (3) one global agglomeration over all blocks' edges (a region graph of fragments and edges, never voxels);
 * (4) each block relabelled through the global table. Fragments cut by a block face are joined again by (3): the
 * affinities across the cut are those of a neuron's inside. `blockwiseNeurons` runs the four steps in memory over
 * a whole volume (the reference the tests compare with the whole-volume run); a job on the engine runs the same
 * steps with each block's results stored.
 */
import { EmsegError } from '../../errors.js';
import type { Offset3, Shape3 } from '../../image/affinities.js';
import { MAX_FRAGMENTS, agglomerateGraph, neuronsOfMerges, type RegionGraph } from './agglomerate.js';
import { affinityFragments, type FragmentOptions, type Labelling } from './fragments.js';
import { checkAffinities, nearestChannels, voxelsOf, type AffinityVolume } from './input.js';
import { GrowingArray, PairTable } from './pair-table.js';

/** A box of voxels, half-open, (z, y, x). */
export interface Box { start: Shape3 | readonly [number, number, number]; end: Shape3 | readonly [number, number, number] }

const shapeOf = (b: Box): [number, number, number] => [b.end[0] - b.start[0], b.end[1] - b.start[1], b.end[2] - b.start[2]];

/** Channels `channels` (default all) of `v` inside `box` (a copy, channel-major). */
export function cropAffinities(v: AffinityVolume, box: Box, channels: readonly number[] = v.offsets.map((_, c) => c)): AffinityVolume {
  const [Y, X] = [v.shape[1], v.shape[2]];
  const s = shapeOf(box);
  const n = voxelsOf(v.shape);
  const m = s[0] * s[1] * s[2];
  const data = new Float32Array(m * channels.length);
  channels.forEach((c, k) => {
    for (let z = 0; z < s[0]; z++) {
      for (let y = 0; y < s[1]; y++) {
        const from = c * n + ((box.start[0] + z) * Y + box.start[1] + y) * X + box.start[2];
        data.set(v.data.subarray(from, from + s[2]), k * m + (z * s[1] + y) * s[2]);
      }
    }
  });
  return { data, shape: s, offsets: channels.map((c) => v.offsets[c]!) };
}

/**
 * Step 1: fragments of a block. `read` holds the affinities of the block plus its halo; `write` is the block inside
 * it (coordinates relative to `read`). Returns the block's fragment ids 1..count (raster order of first voxel), its
 * shape the block's: a fragment cut into pieces by the crop keeps one id.
 */
export function blockFragments(read: AffinityVolume, write: Box, o: FragmentOptions = {}): Labelling {
  const all = affinityFragments(read, o);
  const [Y, X] = [read.shape[1], read.shape[2]];
  const s = shapeOf(write);
  const ids = new Map<number, number>();
  const labels = new Uint32Array(s[0] * s[1] * s[2]);
  let k = 0;
  for (let z = write.start[0]; z < write.end[0]; z++) {
    for (let y = write.start[1]; y < write.end[1]; y++) {
      for (let x = write.start[2]; x < write.end[2]; x++) {
        const f = all.labels[(z * Y + y) * X + x]!;
        let id = ids.get(f);
        if (id === undefined) ids.set(f, id = ids.size + 1);
        labels[k++] = id;
      }
    }
  }
  return { labels, count: ids.size };
}

/** One block's boundary edges between global fragment ids: a[e] < b[e], the sum and count of their affinities. */
export type BlockEdges = Omit<RegionGraph, 'fragments'>;

/**
 * Step 2: the edges of a block. `ids(z, y, x)` gives the global fragment id of any voxel of the volume (the block's
 * own and, across its faces, its neighbours'); `v` holds the affinities of the whole volume's nearest channels at
 * least over the block (read through `affinity(c, z, y, x)`). Each nearest-neighbour edge is counted by the block
 * that holds its stored voxel (v, compared with v + offset).
 */
export function blockEdges(block: Box, shape: Shape3, offsets: readonly Offset3[], ids: (z: number, y: number, x: number) => number,
  affinity: (c: number, z: number, y: number, x: number) => number): BlockEdges {
  const edges = { a: [] as number[], b: [] as number[], sum: [] as number[], count: [] as number[] };
  const index = new Map<string, number>();
  for (const c of nearestChannels(offsets, shape)) {
    if (c < 0) continue;
    const o = offsets[c]!;
    for (let z = block.start[0]; z < block.end[0]; z++) {
      for (let y = block.start[1]; y < block.end[1]; y++) {
        for (let x = block.start[2]; x < block.end[2]; x++) {
          const [uz, uy, ux] = [z + o[0], y + o[1], x + o[2]];
          if (uz < 0 || uy < 0 || ux < 0 || uz >= shape[0] || uy >= shape[1] || ux >= shape[2]) continue;
          const [f, h] = [ids(z, y, x), ids(uz, uy, ux)];
          if (f === h) continue;
          const key = f < h ? `${f},${h}` : `${h},${f}`;
          let e = index.get(key);
          if (e === undefined) {
            index.set(key, e = edges.a.length);
            edges.a.push(Math.min(f, h)); edges.b.push(Math.max(f, h)); edges.sum.push(0); edges.count.push(0);
          }
          edges.sum[e]! += affinity(c, z, y, x);
          edges.count[e]! += 1;
        }
      }
    }
  }
  return edges;
}

/**
 * The region graph of a whole volume, built from its blocks' edges one block at a time (the caller need not hold
 * them all): the same pair from two blocks is added up, in the order given. Edges are numbered in order of first
 * appearance, in typed arrays (24 bytes an edge), the pairs found through a PairTable that goes once the graph is
 * taken.
 */
export class RegionGraphBuilder {
  private readonly a = new GrowingArray((n) => new Int32Array(n));
  private readonly b = new GrowingArray((n) => new Int32Array(n));
  private readonly sum = new GrowingArray((n) => new Float64Array(n));
  private readonly count = new GrowingArray((n) => new Float64Array(n));
  private index: PairTable | undefined;

  constructor(readonly fragments: number) {
    if (fragments > MAX_FRAGMENTS) throw new EmsegError('too-large', 'fragments', `${fragments} fragments; at most ${MAX_FRAGMENTS} are agglomerated at once`);
    this.index = new PairTable(fragments + 1);
  }

  /** Adds one block's edges (ids a[i] < b[i] below fragments + 1). */
  add(be: BlockEdges): void {
    const index = this.index;
    if (!index) throw new Error('RegionGraphBuilder: edges added after the graph was taken'); // a programming error, never a user's
    for (let i = 0; i < be.a.length; i++) {
      let e = index.get(be.a[i]!, be.b[i]!);
      if (e < 0) {
        index.set(be.a[i]!, be.b[i]!, e = this.a.length);
        this.a.push(be.a[i]!); this.b.push(be.b[i]!); this.sum.push(0); this.count.push(0);
      }
      this.sum.items[e]! += be.sum[i]!;
      this.count.items[e]! += be.count[i]!;
    }
  }

  /** The graph (views of the builder's arrays); the pair table is let go. */
  graph(): RegionGraph {
    this.index = undefined;
    return { fragments: this.fragments, a: this.a.view(), b: this.b.view(), sum: this.sum.view(), count: this.count.view() };
  }

  /** Agglomerated down to `threshold`: the global table fragment -> neuron (1..count by lowest fragment id). */
  agglomerate(threshold: number): { table: Uint32Array; count: number } {
    return neuronsOfMerges(this.fragments, agglomerateGraph(this.graph(), threshold).merges);
  }
}

/**
 * Step 3: one region graph from every block's edges (in block order; the same pair from two blocks is added up),
 * agglomerated down to `threshold`: the global table fragment -> neuron (1..count by lowest fragment id).
 */
export function agglomerateBlocks(fragments: number, blocks: Iterable<BlockEdges>, threshold: number): { table: Uint32Array; count: number } {
  const builder = new RegionGraphBuilder(fragments);
  for (const be of blocks) builder.add(be);
  return builder.agglomerate(threshold);
}

/** The blocks of a volume (z, y, x), in raster order of their grid position. */
export function blocksOf(shape: Shape3, block: readonly [number, number, number]): Box[] {
  if (!block.every((b) => Number.isSafeInteger(b) && b > 0)) throw new EmsegError('invalid-option', 'block', `${JSON.stringify(block)} is not a block size of whole numbers above 0`);
  const out: Box[] = [];
  for (let z = 0; z < shape[0]; z += block[0]) {
    for (let y = 0; y < shape[1]; y += block[1]) {
      for (let x = 0; x < shape[2]; x += block[2]) {
        out.push({ start: [z, y, x], end: [Math.min(shape[0], z + block[0]), Math.min(shape[1], y + block[1]), Math.min(shape[2], x + block[2])] });
      }
    }
  }
  return out;
}

export interface BlockwiseOptions extends FragmentOptions {
  block: readonly [number, number, number];
  /** Context around each block for its fragments, in voxels (z, y, x). */
  halo: readonly [number, number, number];
  mergeAffinity: number;
}

/** The four steps over a whole volume held in memory (the reference of a blockwise job). Ids 1..count. */
export function blockwiseNeurons(v: AffinityVolume, o: BlockwiseOptions): Labelling {
  checkAffinities(v);
  const [Y, X] = [v.shape[1], v.shape[2]];
  const n = voxelsOf(v.shape);
  const global = new Uint32Array(n);
  let fragments = 0;
  // Fragments need only the nearest-neighbour channels (and a block may be shorter than a long-range offset).
  const nearest = nearestChannels(v.offsets, v.shape).filter((c) => c >= 0);
  const blocks = blocksOf(v.shape, o.block);
  for (const b of blocks) {
    const read: Box = { start: b.start.map((s, a) => Math.max(0, s - o.halo[a]!)) as unknown as Shape3,
      end: b.end.map((e, a) => Math.min(v.shape[a]!, e + o.halo[a]!)) as unknown as Shape3 };
    const write: Box = { start: b.start.map((s, a) => s - read.start[a]!) as unknown as Shape3, end: b.end.map((e, a) => e - read.start[a]!) as unknown as Shape3 };
    const f = blockFragments(cropAffinities(v, read, nearest), write, o);
    const s = shapeOf(b);
    for (let i = 0; i < f.labels.length; i++) {
      const [z, y, x] = [Math.floor(i / (s[1] * s[2])), Math.floor(i / s[2]) % s[1], i % s[2]];
      global[((b.start[0] + z) * Y + b.start[1] + y) * X + b.start[2] + x] = fragments + f.labels[i]!;
    }
    fragments += f.count;
  }
  const ids = (z: number, y: number, x: number) => global[(z * Y + y) * X + x]!;
  const affinity = (c: number, z: number, y: number, x: number) => v.data[c * n + (z * Y + y) * X + x]!;
  const edges = blocks.map((b) => blockEdges(b, v.shape, v.offsets, ids, affinity));
  const { table, count } = agglomerateBlocks(fragments, edges, o.mergeAffinity);
  return { labels: global.map((f) => table[f]!), count };
}
