/**
 * The mutex watershed (Wolf et al. 2018): every nearest-neighbour edge is attractive with weight = its affinity,
 * every long-range edge repulsive with weight = 1 - its affinity; all edges are taken once, strongest first
 * (Kruskal-like). An attractive edge joins its two clusters unless a mutex (a repulsive edge taken earlier)
 * forbids it; a repulsive edge between two clusters puts a mutex between them. No threshold and no seeds: the
 * long-range channels decide where neurons split. Ties are taken in edge order (channel, then voxel), so a run is
 * exactly repeatable. Memory: one key and one id per edge (channels x voxels), and the mutexes per cluster.
 */
import { EmsegError } from '../../errors.js';
import { PrioritySorter } from '../../metrics/radix-sort.js';
import type { Labelling } from './fragments.js';
import { MAX_ELEMENTS, checkAffinities, inside, isNearest, nearestChannels, voxelsOf, type AffinityVolume } from './input.js';

/** The edges of all channels, their weights' float32 bits and whether each channel is attractive. */
interface Edges { ids: Int32Array; bits: Uint32Array; attractive: boolean[] }

/** Every edge with both ends inside, id = channel * voxels + voxel, in that order; weights as float32 bits. */
function collectEdges(v: AffinityVolume): Edges {
  const n = voxelsOf(v.shape);
  const [Z, Y, X] = v.shape;
  const attractive = v.offsets.map(isNearest);
  let total = 0;
  for (const o of v.offsets) total += [Z, Y, X].reduce((acc, size, a) => acc * Math.max(0, size - Math.abs(o[a]!)), 1);
  if (total > MAX_ELEMENTS) throw new EmsegError('too-large', 'affinities', `${total} edges; the mutex watershed of one volume takes at most ${MAX_ELEMENTS}`);
  const ids = new Int32Array(total);
  const weights = new Float32Array(total);
  let k = 0;
  v.offsets.forEach((o, c) => {
    const [[z0, z1], [y0, y1], [x0, x1]] = [inside(Z, o[0]), inside(Y, o[1]), inside(X, o[2])];
    for (let z = z0; z < z1; z++) {
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const p = (z * Y + y) * X + x;
          const a = v.data[c * n + p]!;
          ids[k] = c * n + p;
          weights[k++] = attractive[c] ? a : 1 - a;
        }
      }
    }
  });
  return { ids, bits: new Uint32Array(weights.buffer), attractive };
}

/** Clusters with their mutexes: union-find over voxels, and per root the set of roots it must never join. */
class MutexClusters {
  readonly parent: Int32Array;
  readonly mutex = new Map<number, Set<number>>();

  constructor(n: number) {
    this.parent = new Int32Array(n).map((_, i) => i);
  }

  find(p: number): number {
    const parent = this.parent;
    while (parent[p] !== p) { parent[p] = parent[parent[p]!]!; p = parent[p]!; }
    return p;
  }

  forbidden(a: number, b: number): boolean {
    const [ma, mb] = [this.mutex.get(a), this.mutex.get(b)];
    if (ma === undefined || mb === undefined) return false;
    return ma.size <= mb.size ? ma.has(b) : mb.has(a);
  }

  addMutex(a: number, b: number): void {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      let set = this.mutex.get(x);
      if (set === undefined) this.mutex.set(x, set = new Set());
      set.add(y);
    }
  }

  /** Joins two roots; the one with more mutexes keeps its set, the other's partners are moved over. */
  join(a: number, b: number): void {
    const [sa, sb] = [this.mutex.get(a)?.size ?? 0, this.mutex.get(b)?.size ?? 0];
    const [keep, gone] = sa >= sb ? [a, b] : [b, a];
    this.parent[gone] = keep;
    const moved = this.mutex.get(gone);
    if (moved === undefined) return;
    this.mutex.delete(gone);
    for (const m of moved) {
      const partner = this.mutex.get(m)!;
      partner.delete(gone);
      partner.add(keep);
      this.addMutex(keep, m);
    }
  }
}

/**
 * Neurons of an affinity volume by the mutex watershed (checked first, see input.ts): needs the three
 * nearest-neighbour channels (attractive) and at least one long-range channel (repulsive). Ids 1..count numbered in
 * raster order of each neuron's first voxel.
 */
export function mutexWatershed(v: AffinityVolume): Labelling {
  checkAffinities(v);
  nearestChannels(v.offsets, v.shape);
  if (v.offsets.every(isNearest)) {
    throw new EmsegError('invalid-option', 'offsets', 'has only nearest-neighbour channels; the mutex watershed needs long-range ones (e.g. [0, -9, 0]) to split neurons');
  }
  const n = voxelsOf(v.shape);
  const edges = collectEdges(v);
  new PrioritySorter().sort(edges.ids, edges.bits, edges.ids.length);
  const clusters = new MutexClusters(n);
  for (const id of edges.ids) {
    const c = Math.floor(id / n);
    const p = id - c * n;
    const o = v.offsets[c]!;
    const u = p + (o[0] * v.shape[1] + o[1]) * v.shape[2] + o[2];
    const [a, b] = [clusters.find(p), clusters.find(u)];
    if (a === b) continue;
    if (!edges.attractive[c]) clusters.addMutex(a, b);
    else if (!clusters.forbidden(a, b)) clusters.join(a, b);
  }
  return numberClusters(clusters, n);
}

/** Consecutive ids 1..k in raster order of each cluster's first voxel. */
function numberClusters(clusters: MutexClusters, n: number): Labelling {
  const idOfRoot = new Uint32Array(n);
  const labels = new Uint32Array(n);
  let count = 0;
  for (let p = 0; p < n; p++) {
    const r = clusters.find(p);
    if (idOfRoot[r] === 0) idOfRoot[r] = ++count;
    labels[p] = idOfRoot[r]!;
  }
  return { labels, count };
}
