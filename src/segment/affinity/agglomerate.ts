/**
 * Agglomeration of fragments by the mean affinity along their shared boundary (Lee et al. 2017, as waterz): a region
 * adjacency graph whose edges hold the sum and the count of the nearest-neighbour affinities between two fragments;
 * the edge of highest mean is merged first, the two fragments' edges to a common neighbour are added together (sum
 * and count, so a mean is always that of every voxel pair on the boundary), until no edge's mean reaches the
 * threshold. Memory grows with the fragments and their edges, never with the voxels. Ties merge the lower edge
 * number first, so a run is exactly repeatable. Every merge is recorded with its mean in the order made: merging
 * at threshold t makes exactly the merges of the history down to t, so one run serves a grid of thresholds.
 */
import { EmsegError } from '../../errors.js';
import { axesOf, type Labelling } from './fragments.js';
import { checkAffinities, forEachEdge, nearestChannels, voxelsOf, type AffinityVolume } from './input.js';

/** Default mean affinity from which two fragments are merged (agglomeration threshold). */
export const DEFAULT_MERGE_AFFINITY = 0.5;
/** Fragment counts above this would let pair keys lo * (count + 1) + hi exceed 2^53. */
export const MAX_FRAGMENTS = 2 ** 26;

/** The region adjacency graph: edge e joins fragments a[e] < b[e] by `count[e]` voxel pairs of affinity sum `sum[e]`. */
export interface RegionGraph {
  fragments: number;
  a: number[];
  b: number[];
  sum: number[];
  count: number[];
}

/** One merge: the two fragments' roots before it and the mean affinity of their boundary when merged. */
export interface Merge { a: number; b: number; mean: number }

/** The graph of `fragments` over the nearest-neighbour affinities of `v` (same shape, checked). */
export function regionGraph(v: AffinityVolume, fragments: Labelling): RegionGraph {
  checkAffinities(v);
  if (fragments.labels.length !== voxelsOf(v.shape)) throw new EmsegError('mismatch', 'fragments', `${fragments.labels.length} ids for ${v.shape.join(' x ')} voxels`);
  if (fragments.count > MAX_FRAGMENTS) throw new EmsegError('too-large', 'fragments', `${fragments.count} fragments; at most ${MAX_FRAGMENTS} are agglomerated at once`);
  const axes = axesOf(v, nearestChannels(v.offsets, v.shape));
  const g: RegionGraph = { fragments: fragments.count, a: [], b: [], sum: [], count: [] };
  const index = new Map<number, number>();
  const ids = fragments.labels;
  const width = fragments.count + 1;
  for (const ax of axes) {
    forEachEdge(v, ax.channel, (p, u, aff) => {
      const [f, h] = [ids[p]!, ids[u]!];
      if (f === h) return;
      const key = f < h ? f * width + h : h * width + f;
      let e = index.get(key);
      if (e === undefined) {
        index.set(key, e = g.a.length);
        g.a.push(Math.min(f, h)); g.b.push(Math.max(f, h)); g.sum.push(0); g.count.push(0);
      }
      g.sum[e]! += aff;
      g.count[e]! += 1;
    });
  }
  return g;
}

/** A max-heap of (edge, key): highest key first, then lowest edge. Entries go stale; the caller checks them. */
class EdgeHeap {
  private readonly edges: number[] = [];
  private readonly keys: number[] = [];

  get size(): number { return this.edges.length; }

  private above(i: number, j: number): boolean {
    const [ki, kj] = [this.keys[i]!, this.keys[j]!];
    return ki > kj || (ki === kj && this.edges[i]! < this.edges[j]!);
  }

  private swap(i: number, j: number): void {
    [this.edges[i], this.edges[j]] = [this.edges[j]!, this.edges[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }

  push(edge: number, key: number): void {
    this.edges.push(edge);
    this.keys.push(key);
    for (let i = this.edges.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (!this.above(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }

  /** The top entry, removed; undefined when empty. */
  pop(): { edge: number; key: number } | undefined {
    if (this.edges.length === 0) return undefined;
    const top = { edge: this.edges[0]!, key: this.keys[0]! };
    const last = this.edges.length - 1;
    this.swap(0, last);
    this.edges.pop();
    this.keys.pop();
    for (let i = 0; ;) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let best = i;
      if (l < last && this.above(l, best)) best = l;
      if (r < last && this.above(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/** The merging state: union-find over fragments, each root's edges by neighbour root. */
class Agglomeration {
  readonly parent: Int32Array;
  readonly adjacency: Map<number, number>[];
  readonly alive: Uint8Array;
  readonly heap = new EdgeHeap();
  readonly history: Merge[] = [];

  constructor(readonly g: RegionGraph) {
    this.parent = new Int32Array(g.fragments + 1).map((_, i) => i);
    this.adjacency = Array.from({ length: g.fragments + 1 }, () => new Map<number, number>());
    this.alive = new Uint8Array(g.a.length).fill(1);
    for (let e = 0; e < g.a.length; e++) {
      this.adjacency[g.a[e]!]!.set(g.b[e]!, e);
      this.adjacency[g.b[e]!]!.set(g.a[e]!, e);
      this.heap.push(e, this.mean(e));
    }
  }

  mean(e: number): number { return this.g.sum[e]! / this.g.count[e]!; }

  find(f: number): number {
    const p = this.parent;
    while (p[f] !== f) { p[f] = p[p[f]!]!; f = p[f]!; }
    return f;
  }

  /** Merges the two roots of edge e; the one with more edges keeps its id (ties: the lower id). */
  merge(e: number): void {
    const [x, y] = [this.g.a[e]!, this.g.b[e]!];
    const [nx, ny] = [this.adjacency[x]!.size, this.adjacency[y]!.size];
    const [keep, gone] = nx > ny || (nx === ny && x < y) ? [x, y] : [y, x];
    this.history.push({ a: Math.min(x, y), b: Math.max(x, y), mean: this.mean(e) });
    this.parent[gone] = keep;
    this.alive[e] = 0;
    const kept = this.adjacency[keep]!;
    kept.delete(gone);
    for (const [nb, f] of this.adjacency[gone]!) {
      if (nb === keep) continue;
      const other = this.adjacency[nb]!;
      other.delete(gone);
      const existing = kept.get(nb);
      if (existing === undefined) {
        kept.set(nb, f);
        other.set(keep, f);
        if (this.g.a[f] === gone) this.g.a[f] = keep; else this.g.b[f] = keep;
        continue;
      }
      // Two boundaries become one: their voxel pairs add up, and the edge's new mean is queued.
      this.g.sum[existing]! += this.g.sum[f]!;
      this.g.count[existing]! += this.g.count[f]!;
      this.alive[f] = 0;
      this.heap.push(existing, this.mean(existing));
    }
    this.adjacency[gone] = new Map();
  }
}

function checkThreshold(t: number): void {
  if (!(t >= 0 && t <= 1)) throw new EmsegError('invalid-option', 'mergeAffinity', `${t} is not a mean affinity in [0, 1]`);
}

/**
 * Merges greedily while the highest mean affinity of a boundary is at least `threshold`. The graph is changed (its
 * sums and counts become those of the merged boundaries). Returns the merges in order.
 */
export function agglomerateGraph(g: RegionGraph, threshold: number): { merges: Merge[]; parent: Int32Array; find: (f: number) => number } {
  checkThreshold(threshold);
  const s = new Agglomeration(g);
  for (let top = s.heap.pop(); top !== undefined; top = s.heap.pop()) {
    if (!s.alive[top.edge] || top.key !== s.mean(top.edge)) continue; // stale: merged away or re-queued
    if (top.key < threshold) break;
    s.merge(top.edge);
  }
  return { merges: s.history, parent: s.parent, find: (f) => s.find(f) };
}

/**
 * Final ids of fragments 1..n after `merges` made in order (a prefix of a history, e.g. those with mean >= t):
 * consecutive 1..k numbered by each neuron's lowest fragment id. Index 0 stays 0.
 */
export function neuronsOfMerges(fragments: number, merges: readonly Merge[]): { table: Uint32Array; count: number } {
  const parent = new Int32Array(fragments + 1).map((_, i) => i);
  const find = (f: number) => { while (parent[f] !== f) { parent[f] = parent[parent[f]!]!; f = parent[f]!; } return f; };
  for (const m of merges) {
    const [ra, rb] = [find(m.a), find(m.b)];
    if (ra < rb) parent[rb] = ra; else if (rb < ra) parent[ra] = rb;
  }
  const table = new Uint32Array(fragments + 1);
  let count = 0;
  for (let f = 1; f <= fragments; f++) {
    const r = find(f);
    table[f] = r === f ? ++count : table[r]!;
  }
  return { table, count };
}

/** Voxel ids through a fragment -> neuron table (a new array). */
export function relabel(labels: Uint32Array, table: Uint32Array): Uint32Array {
  const out = new Uint32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = table[labels[i]!]!;
  return out;
}

/** The merges that agglomeration down to threshold 0 would make, for a grid of thresholds (tune-segment). */
export function mergeHistory(v: AffinityVolume, fragments: Labelling): Merge[] {
  return agglomerateGraph(regionGraph(v, fragments), 0).merges;
}

/**
 * Neurons from fragments: the merges of `history` up to the first whose mean is below `threshold`, which are exactly
 * the merges a greedy run with that threshold makes (the run is the same until it stops).
 */
export function cutHistory(fragments: Labelling, history: readonly Merge[], threshold: number): Labelling {
  checkThreshold(threshold);
  let end = 0;
  while (end < history.length && history[end]!.mean >= threshold) end++;
  const { table, count } = neuronsOfMerges(fragments.count, history.slice(0, end));
  return { labels: relabel(fragments.labels, table), count };
}
