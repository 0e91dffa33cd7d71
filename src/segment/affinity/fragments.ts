/**
 * Fragments from affinities: a seeded watershed over the nearest-neighbour affinity graph (the first step of Lee
 * et al. 2017 and of waterz / lsd's "watershed from affinities"). The boundary evidence of a voxel is 1 - the
 * weakest of its (up to six) nearest-neighbour affinities, so both sides of a contact between neurons are boundary
 * and a neuron's inside is not; seeds are the maxima of the distance transform of the inside (boundary evidence
 * below `seedBoundary`), one seed per connected plateau of maxima, so that a thin bridge of noise between two
 * neurons yields two seeds, not one. The seeds are flooded in order of the boundary evidence (lowest first, FIFO
 * within a level): a fragment crosses a boundary only after everything less boundary-like is taken.
 * The result over-segments on purpose; agglomeration (agglomerate.ts) merges the fragments.
 */
import { EmsegError } from '../../errors.js';
import { checkAffinities, nearestChannels, voxelsOf, type AffinityVolume, type NearestChannels } from './input.js';

/** Levels of the flooding queue: affinities are quantised to this many steps (ties flood in FIFO order). */
export const FLOOD_LEVELS = 1024;
/** Default boundary evidence below which a voxel is inside a neuron (seeds lie there). */
export const DEFAULT_SEED_BOUNDARY = 0.5;
/** Squared distance standing for "no boundary voxel anywhere" in the distance transform. */
const FAR = 1e20;

/** Fragment (or neuron) ids per voxel, 1..count, row-major (z, y, x). */
export interface Labelling {
  labels: Uint32Array;
  count: number;
}

export interface FragmentOptions {
  /** Boundary evidence (1 - weakest nearest affinity) below which a voxel may hold a seed; default DEFAULT_SEED_BOUNDARY. */
  seedBoundary?: number;
}

/** One axis of the nearest-neighbour graph: its channel, the step to the offset's neighbour, the axis size and stride. */
interface Axis { channel: number; step: number; size: number; stride: number; sign: number }

function axesOf(v: AffinityVolume, nearest: NearestChannels): Axis[] {
  const [Z, Y, X] = v.shape;
  const strides = [Y * X, X, 1];
  const sizes = [Z, Y, X];
  return [0, 1, 2].filter((a) => nearest[a]! >= 0).map((a) => {
    const sign = v.offsets[nearest[a]!]![a]!;
    return { channel: nearest[a]!, step: sign * strides[a]!, size: sizes[a]!, stride: strides[a]!, sign };
  });
}

/**
 * Calls `visit(u, a)` for each nearest neighbour u of voxel p (coordinates z, y, x) with the affinity a of their
 * edge, in a fixed order: per axis, the offset's neighbour, then the opposite one.
 */
function forNeighbours(v: AffinityVolume, axes: readonly Axis[], p: number, visit: (u: number, a: number) => void): void {
  const n = voxelsOf(v.shape);
  for (const ax of axes) {
    const k = Math.floor(p / ax.stride) % ax.size;
    const base = ax.channel * n;
    if (k + ax.sign >= 0 && k + ax.sign < ax.size) visit(p + ax.step, v.data[base + p]!);
    if (k - ax.sign >= 0 && k - ax.sign < ax.size) visit(p - ax.step, v.data[base + p - ax.step]!);
  }
}

/** Per voxel, 1 - the weakest affinity of its nearest-neighbour edges (0 for a voxel without any). */
export function boundaryEvidence(v: AffinityVolume, axes: readonly Axis[]): Float32Array {
  const n = voxelsOf(v.shape);
  const weakest = new Float32Array(n).fill(1);
  // Each edge once: stored at voxel p (channel of its axis), joining p and p + step; both ends see it.
  for (const ax of axes) {
    const base = ax.channel * n;
    for (let p = 0; p < n; p++) {
      const k = Math.floor(p / ax.stride) % ax.size;
      if (k + ax.sign < 0 || k + ax.sign >= ax.size) continue;
      const a = v.data[base + p]!;
      const u = p + ax.step;
      if (a < weakest[p]!) weakest[p] = a;
      if (a < weakest[u]!) weakest[u] = a;
    }
  }
  for (let p = 0; p < n; p++) weakest[p] = 1 - weakest[p]!;
  return weakest;
}

/** Squared Euclidean distance transform along one line (Felzenszwalb and Huttenlocher 2012), in place. */
function distanceLine(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    while (s <= z[k]!) {
      k--;
      s = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    d[q] = (q - v[k]!) * (q - v[k]!) + f[v[k]!]!;
  }
}

/**
 * Squared Euclidean distance of every inside voxel to the nearest boundary voxel (0 on the boundary), one axis at a
 * time; within each section only when `planar` (sections segmented one by one).
 */
export function squaredDistance(inside: Uint8Array, shape: readonly [number, number, number], planar = false): Float64Array {
  const dist = new Float64Array(inside.length);
  for (let i = 0; i < inside.length; i++) dist[i] = inside[i] ? FAR : 0;
  const [Z, Y, X] = shape;
  const longest = Math.max(Z, Y, X);
  const work = { f: new Float64Array(longest), d: new Float64Array(longest), v: new Int32Array(longest), z: new Float64Array(longest + 1) };
  // Lines along x (one per row), y (one per column of a section), z (one per column through the sections).
  transformLines(dist, Z * Y, (l) => l * X, 1, X, work);
  transformLines(dist, Z * X, (l) => Math.floor(l / X) * Y * X + (l % X), X, Y, work);
  if (!planar) transformLines(dist, Y * X, (l) => l, Y * X, Z, work);
  return dist;
}

interface LineWork { f: Float64Array; d: Float64Array; v: Int32Array; z: Float64Array }

function transformLines(dist: Float64Array, count: number, first: (l: number) => number, step: number, len: number, w: LineWork): void {
  if (len < 2) return;
  for (let l = 0; l < count; l++) {
    const at = first(l);
    for (let q = 0; q < len; q++) w.f[q] = dist[at + q * step]!;
    distanceLine(w.f, len, w.d, w.v, w.z);
    for (let q = 0; q < len; q++) dist[at + q * step] = w.d[q]!;
  }
}

/** Calls visit(u) for each of the up to 26 neighbours u of voxel p (8, in its section, when `planar`). */
function forNeighbours26(shape: readonly [number, number, number], p: number, planar: boolean, visit: (u: number) => void): void {
  const [Z, Y, X] = shape;
  const x = p % X;
  const y = Math.floor(p / X) % Y;
  const z = Math.floor(p / (X * Y));
  const across = planar ? 0 : 1;
  for (let dz = -across; dz <= across; dz++) {
    if (z + dz < 0 || z + dz >= Z) continue;
    for (let dy = -1; dy <= 1; dy++) {
      if (y + dy < 0 || y + dy >= Y) continue;
      for (let dx = -1; dx <= 1; dx++) {
        if ((dz | dy | dx) === 0 || x + dx < 0 || x + dx >= X) continue;
        visit(p + (dz * Y + dy) * X + dx);
      }
    }
  }
}

/** Whether no 26-neighbour (8 in its section when `planar`) of voxel p has a larger distance. */
function isMaximum(dist: Float64Array, shape: readonly [number, number, number], p: number, planar: boolean): boolean {
  const [Z, Y, X] = shape;
  const x = p % X;
  const y = Math.floor(p / X) % Y;
  const z = Math.floor(p / (X * Y));
  const d = dist[p]!;
  const across = planar ? 0 : 1;
  for (let dz = Math.max(-across, -z); dz <= Math.min(across, Z - 1 - z); dz++) {
    for (let dy = Math.max(-1, -y); dy <= Math.min(1, Y - 1 - y); dy++) {
      const row = p + (dz * Y + dy) * X;
      for (let dx = Math.max(-1, -x); dx <= Math.min(1, X - 1 - x); dx++) if (dist[row + dx]! > d) return false;
    }
  }
  return true;
}

/**
 * Seeds: inside voxels whose distance no neighbour (26-connected; 8-connected within a section when `planar`)
 * exceeds, each connected group of them one seed, numbered 1.. in raster order of their first voxel. Returns the
 * seed ids per voxel (0 elsewhere) and the count.
 */
export function distanceSeeds(dist: Float64Array, inside: Uint8Array, shape: readonly [number, number, number], planar = false): Labelling {
  const n = dist.length;
  const maximum = new Uint8Array(n);
  for (let p = 0; p < n; p++) if (inside[p]) maximum[p] = isMaximum(dist, shape, p, planar) ? 1 : 0;
  const labels = new Uint32Array(n);
  const stack: number[] = [];
  let count = 0;
  for (let p = 0; p < n; p++) {
    if (!maximum[p] || labels[p]) continue;
    labels[p] = ++count;
    stack.push(p);
    while (stack.length > 0) {
      forNeighbours26(shape, stack.pop()!, planar, (u) => {
        if (maximum[u] && !labels[u]) { labels[u] = count; stack.push(u); }
      });
    }
  }
  return { labels, count };
}

/**
 * Floods `seeds` (ids per voxel, 0 = unlabelled; changed in place) over the nearest-neighbour graph. Entering voxel
 * u over an edge of affinity a costs (evidence(u) + 1 - a) / 2: both the voxel's boundary evidence and the edge
 * itself, so that neither one noisy edge nor one noisy voxel lets a fragment cross a boundary (two voxels thick).
 * Cheapest first, FIFO within a level (costs are quantised to FLOOD_LEVELS); a voxel takes its label when its
 * entry is taken (Meyer's flooding), so the cheapest way in decides. A part no seed reaches (no seed at all, or a
 * section of planar affinities without one) is seeded at its first voxel, so every voxel ends labelled.
 */
export function floodAffinities(v: AffinityVolume, axes: readonly Axis[], evidence: Float32Array, seeds: Labelling): Labelling {
  const labels = seeds.labels;
  let count = seeds.count;
  const n = labels.length;
  const queue = new LevelQueue(n);
  // The lowest level at which each voxel is queued: a later entry at the same or a higher level could only find it
  // labelled already (FIFO within a level), so it is not queued at all; the result is the same, the queue smaller.
  const best = new Uint16Array(n).fill(FLOOD_LEVELS);
  // Queues voxel u (coordinate `at` along an axis of `size`) over the edge whose affinity is data[a].
  const offer = (u: number, a: number, at: number, size: number, label: number) => {
    if (at < 0 || at >= size || labels[u]) return;
    const l = Math.max(queue.level, Math.round(((evidence[u]! + 1 - v.data[a]!) / 2) * (FLOOD_LEVELS - 1)));
    if (l >= best[u]!) return;
    best[u] = l;
    queue.push(u, label, l);
  };
  const spread = (p: number, label: number) => {
    for (const ax of axes) {
      const k = Math.floor(p / ax.stride) % ax.size;
      const base = ax.channel * n;
      offer(p + ax.step, base + p, k + ax.sign, ax.size, label);
      offer(p - ax.step, base + p - ax.step, k - ax.sign, ax.size, label);
    }
  };
  for (let p = 0; p < n; p++) if (labels[p]) spread(p, labels[p]!);
  for (let unreached = 0; ; unreached++) {
    for (let e = queue.pop(); e >= 0; e = queue.pop()) {
      const u = queue.voxel[e]!;
      if (labels[u]) continue;
      labels[u] = queue.label[e]!;
      spread(u, labels[u]!);
    }
    while (unreached < n && labels[unreached]) unreached++;
    if (unreached === n) return { labels, count };
    queue.level = 0; // empty: the new seed floods its part from the lowest level, as the first seeds did
    labels[unreached] = ++count;
    spread(unreached, count);
  }
}

/** FIFO queues per level as linked lists in typed arrays (grown by doubling); levels only rise while popping. */
class LevelQueue {
  voxel: Int32Array;
  label: Uint32Array;
  next: Int32Array;
  private readonly head = new Int32Array(FLOOD_LEVELS).fill(-1);
  private readonly tail = new Int32Array(FLOOD_LEVELS).fill(-1);
  private used = 0;
  level = 0;

  constructor(capacity: number) {
    this.voxel = new Int32Array(Math.max(16, capacity));
    this.label = new Uint32Array(this.voxel.length);
    this.next = new Int32Array(this.voxel.length);
  }

  push(voxel: number, label: number, level: number): void {
    if (this.used === this.voxel.length) this.grow();
    const e = this.used++;
    this.voxel[e] = voxel;
    this.label[e] = label;
    this.next[e] = -1;
    if (this.tail[level] === -1) this.head[level] = e; else this.next[this.tail[level]!] = e;
    this.tail[level] = e;
  }

  /** The next entry (index into voxel / label), or -1 when every level is empty. */
  pop(): number {
    while (this.level < FLOOD_LEVELS && this.head[this.level] === -1) this.level++;
    if (this.level === FLOOD_LEVELS) return -1;
    const e = this.head[this.level]!;
    this.head[this.level] = this.next[e]!;
    if (this.head[this.level] === -1) this.tail[this.level] = -1;
    return e;
  }

  private grow(): void {
    const size = this.voxel.length * 2;
    for (const key of ['voxel', 'label', 'next'] as const) {
      const bigger = new (this[key].constructor as Int32ArrayConstructor)(size);
      bigger.set(this[key]);
      (this as unknown as Record<string, Int32Array>)[key] = bigger;
    }
  }
}

/**
 * Fragments of an affinity volume (checked first, see input.ts): seeds from the distance transform of the voxels
 * whose boundary evidence is below `seedBoundary`, flooded along the affinities. Every voxel gets an id 1..count.
 */
export function affinityFragments(v: AffinityVolume, o: FragmentOptions = {}): Labelling {
  checkAffinities(v);
  const seedBoundary = o.seedBoundary ?? DEFAULT_SEED_BOUNDARY;
  if (!(seedBoundary >= 0 && seedBoundary <= 1)) throw new EmsegError('invalid-option', 'seedBoundary', `${seedBoundary} is not in [0, 1]`);
  const nearest = nearestChannels(v.offsets, v.shape);
  const axes = axesOf(v, nearest);
  const evidence = boundaryEvidence(v, axes);
  const inside = new Uint8Array(evidence.length);
  for (let i = 0; i < evidence.length; i++) inside[i] = evidence[i]! < seedBoundary ? 1 : 0;
  const planar = nearest[0] < 0; // no edge across sections: seeds are found in each section alone
  const seeds = distanceSeeds(squaredDistance(inside, v.shape, planar), inside, v.shape, planar);
  return floodAffinities(v, axes, evidence, seeds);
}

export { axesOf, forNeighbours, type Axis };
