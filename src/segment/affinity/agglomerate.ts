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
import { PairTable } from './pair-table.js';

/** Default mean affinity from which two fragments are merged (agglomeration threshold). */
export const DEFAULT_MERGE_AFFINITY = 0.5;
/** Fragment counts above this would let pair keys lo * (count + 1) + hi exceed 2^53. */
export const MAX_FRAGMENTS = 2 ** 26;

/** Numbers a region graph holds: JS arrays as regionGraph builds them, or typed arrays (agglomerateBlocks, edge files). */
export type Numbers = number[] | Int32Array | Float64Array;

/**
 * The region adjacency graph: edge e joins fragments a[e] < b[e] by `count[e]` voxel pairs of affinity sum `sum[e]`;
 * each pair of fragments has at most one edge (as regionGraph and agglomerateBlocks make it).
 */
export interface RegionGraph {
  fragments: number;
  a: Numbers;
  b: Numbers;
  sum: Numbers;
  count: Numbers;
}

/** One merge: the two fragments' roots before it and the mean affinity of their boundary when merged. */
export interface Merge { a: number; b: number; mean: number }

/** The graph of `fragments` over the nearest-neighbour affinities of `v` (same shape, checked). */
export function regionGraph(v: AffinityVolume, fragments: Labelling): RegionGraph {
  checkAffinities(v);
  if (fragments.labels.length !== voxelsOf(v.shape)) throw new EmsegError('mismatch', 'fragments', `${fragments.labels.length} ids for ${v.shape.join(' x ')} voxels`);
  if (fragments.count > MAX_FRAGMENTS) throw new EmsegError('too-large', 'fragments', `${fragments.count} fragments; at most ${MAX_FRAGMENTS} are agglomerated at once`);
  const axes = axesOf(v, nearestChannels(v.offsets, v.shape));
  const g = { fragments: fragments.count, a: [] as number[], b: [] as number[], sum: [] as number[], count: [] as number[] };
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

/**
 * A max-heap of (edge, key): highest key first, then lowest edge. Entries go stale; the caller checks them. Typed
 * arrays (12 bytes an entry, doubled when full): the heap holds every edge of the volume's region graph at once.
 */
class EdgeHeap {
  private edges: Int32Array;
  private keys: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.edges = new Int32Array(Math.max(1, capacity));
    this.keys = new Float64Array(Math.max(1, capacity));
  }

  private above(i: number, j: number): boolean {
    const [ki, kj] = [this.keys[i]!, this.keys[j]!];
    return ki > kj || (ki === kj && this.edges[i]! < this.edges[j]!);
  }

  private swap(i: number, j: number): void {
    const [edges, keys] = [this.edges, this.keys];
    const [e, k] = [edges[i]!, keys[i]!];
    edges[i] = edges[j]!; keys[i] = keys[j]!;
    edges[j] = e; keys[j] = k;
  }

  push(edge: number, key: number): void {
    if (this.size === this.edges.length) {
      const [edges, keys] = [new Int32Array(2 * this.size), new Float64Array(2 * this.size)];
      edges.set(this.edges);
      keys.set(this.keys);
      [this.edges, this.keys] = [edges, keys];
    }
    this.edges[this.size] = edge;
    this.keys[this.size] = key;
    for (let i = this.size++; i > 0;) {
      const up = (i - 1) >> 1;
      if (!this.above(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }

  /** The top entry, removed; undefined when empty. */
  pop(): { edge: number; key: number } | undefined {
    if (this.size === 0) return undefined;
    const top = { edge: this.edges[0]!, key: this.keys[0]! };
    const last = --this.size;
    this.swap(0, last);
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

/**
 * The merging state: union-find over fragments; each root's edges as a linked list of edge ends (end 2e is edge e's
 * `a` side, 2e + 1 its `b` side; dead edges are dropped when a list is walked), its number of live edges (its
 * neighbour roots), and one table from a pair of roots to their edge. Typed arrays throughout: about 30 bytes per
 * edge and 12 per fragment besides the graph and the heap, where one Map per fragment cost several hundred.
 */
class Agglomeration {
  readonly parent: Int32Array;
  readonly degree: Int32Array;
  readonly head: Int32Array;
  readonly next: Int32Array;
  readonly alive: Uint8Array;
  readonly pairs: PairTable;
  readonly heap: EdgeHeap;
  readonly history: Merge[] = [];

  constructor(readonly g: RegionGraph) {
    const edges = g.a.length;
    this.parent = new Int32Array(g.fragments + 1).map((_, i) => i);
    this.degree = new Int32Array(g.fragments + 1);
    this.head = new Int32Array(g.fragments + 1).fill(-1);
    this.next = new Int32Array(2 * edges);
    this.alive = new Uint8Array(edges).fill(1);
    this.pairs = new PairTable(g.fragments + 1, edges);
    this.heap = new EdgeHeap(edges);
    for (let e = 0; e < edges; e++) {
      const [a, b] = [g.a[e]!, g.b[e]!];
      this.link(2 * e, a);
      this.link(2 * e + 1, b);
      this.degree[a]!++;
      this.degree[b]!++;
      this.pairs.set(a, b, e);
      this.heap.push(e, this.mean(e));
    }
  }

  private link(end: number, root: number): void {
    this.next[end] = this.head[root]!;
    this.head[root] = end;
  }

  mean(e: number): number { return this.g.sum[e]! / this.g.count[e]!; }

  find(f: number): number {
    const p = this.parent;
    while (p[f] !== f) { p[f] = p[p[f]!]!; f = p[f]!; }
    return f;
  }

  /** Merges the two roots of edge e; the one with more edges keeps its id (ties: the lower id). */
  merge(e: number): void {
    const g = this.g;
    const [x, y] = [g.a[e]!, g.b[e]!];
    const [nx, ny] = [this.degree[x]!, this.degree[y]!];
    const [keep, gone] = nx > ny || (nx === ny && x < y) ? [x, y] : [y, x];
    this.history.push({ a: Math.min(x, y), b: Math.max(x, y), mean: this.mean(e) });
    this.parent[gone] = keep;
    this.alive[e] = 0;
    this.pairs.delete(keep, gone);
    this.degree[keep]!--;
    for (let end = this.head[gone]!; end >= 0;) {
      const after = this.next[end]!;
      const f = end >> 1;
      if (this.alive[f]) this.moveEdge(f, end, keep, gone);
      end = after;
    }
    this.head[gone] = -1;
    this.degree[gone] = 0;
  }

  /** Edge f of `gone` (its end `end`) goes to `keep`, or, where keep already borders that neighbour, adds to that edge. */
  private moveEdge(f: number, end: number, keep: number, gone: number): void {
    const g = this.g;
    const side = end & 1;
    const nb = side === 0 ? g.b[f]! : g.a[f]!;
    this.pairs.delete(gone, nb);
    const existing = this.pairs.get(keep, nb);
    if (existing < 0) {
      this.pairs.set(keep, nb, f);
      this.degree[keep]!++;
      if (side === 0) g.a[f] = keep; else g.b[f] = keep;
      this.link(end, keep);
      return;
    }
    // Two boundaries become one: their voxel pairs add up, and the edge's new mean is queued.
    g.sum[existing]! += g.sum[f]!;
    g.count[existing]! += g.count[f]!;
    this.alive[f] = 0;
    this.degree[nb]!--;
    this.heap.push(existing, this.mean(existing));
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
