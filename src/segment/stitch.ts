/**
 * Stitching block segmentations: every block is segmented over its read region (its own voxels plus a halo), so
 * two neighbouring blocks both label the voxels where their read regions overlap. Compared within half a halo of
 * either block's own voxels (where both segmentations see enough context), a segment of one block and a
 * segment of the other are the same cell when each is the other's largest overlap there (mutual maximum overlap);
 * such pairs are joined with union-find. Segments that reach a block's own voxels carry volume-wide ids; parts of
 * the halo that belong to no owned segment are 0 and never matched.
 */
import { EmsegError } from '../errors.js';

/** Disjoint sets over ids 1..n (grown on demand), with path halving. */
export class UnionFind {
  private parent: number[] = [0];

  /** Registers ids up to `id`. */
  grow(id: number): void {
    for (let i = this.parent.length; i <= id; i++) this.parent.push(i);
  }

  get size(): number {
    return this.parent.length - 1;
  }

  find(id: number): number {
    const p = this.parent;
    while (p[id] !== id) {
      p[id] = p[p[id]!]!;
      id = p[id]!;
    }
    return id;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    // The smaller id stays the root, so the result does not depend on the order of unions.
    if (ra < rb) this.parent[rb] = ra;
    else if (rb < ra) this.parent[ra] = rb;
  }

  /** Consecutive final ids 1..k for ids 1..n, numbered by each set's smallest id. */
  compact(): Uint32Array {
    const out = new Uint32Array(this.parent.length);
    let next = 0;
    for (let id = 1; id < this.parent.length; id++) {
      const r = this.find(id);
      out[id] = r === id ? ++next : out[r]!;
    }
    return out;
  }
}

/** Count of voxels per (a, b) label pair over paired samples, both non-zero. */
function pairCounts(a: ArrayLike<number>, b: ArrayLike<number>): Map<number, Map<number, number>> {
  if (a.length !== b.length) throw new EmsegError('mismatch', 'overlap', `label arrays differ in length (${a.length} vs ${b.length})`);
  const counts = new Map<number, Map<number, number>>();
  for (let i = 0; i < a.length; i++) {
    const la = a[i]!;
    const lb = b[i]!;
    if (la === 0 || lb === 0) continue;
    let row = counts.get(la);
    if (!row) counts.set(la, (row = new Map()));
    row.set(lb, (row.get(lb) ?? 0) + 1);
  }
  return counts;
}

/** Better partner: more voxels, then the smaller id (deterministic). */
const beats = (count: number, id: number, best: { count: number; id: number } | undefined) =>
  !best || count > best.count || (count === best.count && id < best.id);

/**
 * Pairs (a, b) of labels that are each other's largest overlap, given two labellings of the same voxels
 * (`a[i]` and `b[i]` label voxel i; 0 = unlabelled).
 */
export function mutualBestMatches(a: ArrayLike<number>, b: ArrayLike<number>): [number, number][] {
  const counts = pairCounts(a, b);
  const bestOfA = new Map<number, { count: number; id: number }>();
  const bestOfB = new Map<number, { count: number; id: number }>();
  for (const [la, row] of counts) {
    for (const [lb, n] of row) {
      if (beats(n, lb, bestOfA.get(la))) bestOfA.set(la, { count: n, id: lb });
      if (beats(n, la, bestOfB.get(lb))) bestOfB.set(lb, { count: n, id: la });
    }
  }
  const pairs: [number, number][] = [];
  for (const [la, best] of bestOfA) if (bestOfB.get(best.id)?.id === la) pairs.push([la, best.id]);
  return pairs;
}
