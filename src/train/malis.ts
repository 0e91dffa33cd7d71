/**
 * MALIS-style topological loss weights for a membrane map (Turaga et al. 2009, "Maximin affinity learning of image
 * segmentation"; the constrained two-pass form of Funke et al. 2018), for a network that predicts one membrane
 * probability per pixel rather than affinities.
 *
 * Two pixels of the tile's interior are connected as strongly as the path between them whose highest membrane
 * probability is lowest (the maximin path); the pixel holding that highest value decides whether thresholding
 * the map joins or separates them. MALIS puts the loss there, weighted by how many pixel pairs it decides:
 *
 * - positive pass (pairs within one labelled cell, paths through that cell only): the edge whose merge first joins
 *   two parts of a cell decides |A| * |B| pairs; its higher-probability pixel (interior) gets that count, so a
 *   false membrane cutting a large cell in two weighs as much as all the pairs it separates;
 * - negative pass (pairs of different cells): every cell is one component from the start (the constraint: paths
 *   inside a cell cost nothing), then the membrane pixels are flooded from the lowest probability up; the membrane
 *   pixel whose flooding first joins two groups of cells decides |A| * |B| pairs (interior pixels counted), so the
 *   weakest pixel of a gap between two large cells weighs as much as the merger it causes.
 *
 * Each pixel's count goes on its own label's cross-entropy (interior pixels come only from the positive pass,
 * membrane pixels only from the negative one), so the weights drop into the ordinary weighted loss. Written by hand:
 * no npm package computes maximin pair counts (a union-find over sorted edges, below).
 */
import type { CrossEntropyTarget } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import { cellsOf } from './border-weight.js';
import type { Batch } from './sampler.js';

/** Probability levels of the edge ordering: a counting sort over this many bins instead of a comparison sort of
 *  ~2 x pixels edges per tile (ties within 1/4096 of probability are ordered by position, which is harmless). */
const ORDER_LEVELS = 4096;
/** Label of a membrane pixel in a training tile (0 = interior, -1 = ignored). */
const MEMBRANE = 1;

/**
 * Per-pixel MALIS weights of one tile, scaled so that their mean over the tile is 1 (0 everywhere when the tile
 * holds no pair of interior pixels).
 * @param prob P(membrane) per pixel, h x w
 * @param labels 1 = membrane, 0 = interior (no ignored pixels: MALIS needs every pixel's class)
 */
export function malisWeights(prob: Float32Array, labels: Int32Array, h: number, w: number): Float32Array {
  const n = h * w;
  if (prob.length !== n || labels.length !== n) {
    throw new EmsegError('invalid-option', 'malisWeights', `expected ${n} probabilities and labels (got ${prob.length}, ${labels.length})`);
  }
  for (let p = 0; p < n; p++) {
    if (labels[p] !== 0 && labels[p] !== MEMBRANE) {
      throw new EmsegError('invalid-option', 'malisWeights', `label ${labels[p]} at pixel ${p}: MALIS needs every pixel labelled 0 or 1`);
    }
  }
  const cells = cellsOf(labels, h, w);
  const counts = new Float64Array(n);
  positivePass(prob, cells, h, w, counts);
  negativePass(prob, cells, h, w, counts);
  let total = 0;
  for (let p = 0; p < n; p++) total += counts[p]!;
  const out = new Float32Array(n);
  if (total === 0) return out;
  const scale = n / total;
  for (let p = 0; p < n; p++) out[p] = counts[p]! * scale;
  return out;
}

/** Disjoint sets over pixels with, per root, the number of interior pixels it holds. */
class PixelSets {
  private readonly parent: Int32Array;
  readonly interior: Float64Array;

  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let p = 0; p < n; p++) this.parent[p] = p;
    this.interior = new Float64Array(n);
  }

  find(p: number): number {
    const parent = this.parent;
    while (parent[p] !== p) {
      parent[p] = parent[parent[p]!]!; // path halving
      p = parent[p]!;
    }
    return p;
  }

  /** Joins the sets of roots a and b; returns the pairs of interior pixels the join connects. */
  union(a: number, b: number): number {
    const pairs = this.interior[a]! * this.interior[b]!;
    this.parent[b] = a;
    this.interior[a] = this.interior[a]! + this.interior[b]!;
    return pairs;
  }
}

/**
 * The 4-neighbour edges p - q (q = p + 1 or p + w) accepted by `keep`, in increasing order of `key`: edge 2p is
 * (p, p + 1), edge 2p + 1 is (p, p + w).
 */
function sortedEdges(h: number, w: number, keep: (p: number, q: number) => boolean,
  key: (p: number, q: number) => number): Int32Array {
  const edges: number[] = [];
  const level: number[] = [];
  for (let p = 0; p < h * w; p++) {
    const x = p % w;
    if (x < w - 1 && keep(p, p + 1)) { edges.push(2 * p); level.push(quantise(key(p, p + 1))); }
    if (p + w < h * w && keep(p, p + w)) { edges.push(2 * p + 1); level.push(quantise(key(p, p + w))); }
  }
  const start = new Int32Array(ORDER_LEVELS + 1);
  for (const l of level) start[l + 1]!++;
  for (let l = 0; l < ORDER_LEVELS; l++) start[l + 1]! += start[l]!;
  const sorted = new Int32Array(edges.length);
  for (let i = 0; i < edges.length; i++) sorted[start[level[i]!]!++] = edges[i]!;
  return sorted;
}

function quantise(p: number): number {
  return Math.min(ORDER_LEVELS - 1, Math.max(0, Math.floor(p * ORDER_LEVELS)));
}

function ends(edge: number, w: number): [number, number] {
  const p = edge >> 1;
  return [p, edge & 1 ? p + w : p + 1];
}

/** Pairs within one cell, joined through that cell's pixels only: counts go to the higher pixel of each join. */
function positivePass(prob: Float32Array, cells: Int32Array, h: number, w: number, counts: Float64Array): void {
  const sets = new PixelSets(h * w);
  for (let p = 0; p < h * w; p++) if (cells[p]! >= 0) sets.interior[p] = 1;
  const edges = sortedEdges(h, w, (p, q) => cells[p]! >= 0 && cells[q]! >= 0, (p, q) => Math.max(prob[p]!, prob[q]!));
  for (const e of edges) {
    const [p, q] = ends(e, w);
    const a = sets.find(p), b = sets.find(q);
    if (a === b) continue;
    counts[prob[p]! >= prob[q]! ? p : q] += sets.union(a, b);
  }
}

/**
 * Pairs of different cells: each cell starts as one set, then edges touching membrane are taken from the lowest
 * membrane probability up (an edge's key and its pixel are its membrane end, the higher one if both are).
 */
function negativePass(prob: Float32Array, cells: Int32Array, h: number, w: number, counts: Float64Array): void {
  const sets = new PixelSets(h * w);
  const root = new Map<number, number>(); // cell -> its set's root (the cell's first pixel)
  for (let p = 0; p < h * w; p++) {
    const c = cells[p]!;
    if (c < 0) continue;
    sets.interior[p] = 1;
    const r = root.get(c);
    if (r === undefined) root.set(c, p);
    else sets.union(r, p);
  }
  const membraneEnd = (p: number, q: number) => (cells[p]! >= 0 ? q : cells[q]! >= 0 ? p : prob[p]! >= prob[q]! ? p : q);
  const edges = sortedEdges(h, w, (p, q) => cells[p]! < 0 || cells[q]! < 0, (p, q) => prob[membraneEnd(p, q)]!);
  for (const e of edges) {
    const [p, q] = ends(e, w);
    const a = sets.find(p), b = sets.find(q);
    if (a === b) continue;
    counts[membraneEnd(p, q)] += sets.union(a, b);
  }
}

/**
 * The loss target of a batch with MALIS weights from the batch's own prediction: `logits` is the network's
 * tiles x 2 x side x side output (class 1 = membrane); each pixel's weight becomes its sampled weight (1 when the
 * batch has none) plus `weight` times its MALIS weight.
 */
export function malisTarget(logits: ArrayLike<number>, batch: Pick<Batch, 'labels' | 'weights'>, side: number,
  weight: number): CrossEntropyTarget {
  const plane = side * side;
  const tiles = batch.labels.length / plane;
  if (!Number.isInteger(tiles) || logits.length !== 2 * batch.labels.length) {
    throw new EmsegError('internal', 'malisTarget', `${logits.length} logits and ${batch.labels.length} labels do not make ${side} x ${side} tiles`);
  }
  const weights = new Float32Array(batch.labels.length);
  const prob = new Float32Array(plane);
  for (let b = 0; b < tiles; b++) {
    for (let q = 0; q < plane; q++) {
      const z = b * 2 * plane + q;
      prob[q] = 1 / (1 + Math.exp(logits[z]! - logits[z + plane]!)); // softmax of two classes: P(class 1)
    }
    const m = malisWeights(prob, batch.labels.subarray(b * plane, (b + 1) * plane), side, side);
    for (let q = 0; q < plane; q++) {
      const i = b * plane + q;
      weights[i] = (batch.weights ? batch.weights[i]! : 1) + weight * m[q]!;
    }
  }
  return { labels: batch.labels, weights };
}
