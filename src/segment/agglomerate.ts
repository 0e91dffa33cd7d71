/** A segmentation of one section: a label per pixel, 1..count (every pixel belongs to a segment). */
export interface Segmentation {
  labels: Int32Array;
  count: number;
}

interface Boundary {
  sum: number;
  count: number;
}

/**
 * Joins neighbouring segments across weak boundaries, weakest first. A boundary is the set of 4-neighbour pixel
 * pairs between two segments, scored by its mean P(membrane); after each join the joined segment's boundaries are
 * pooled, so a score is always the mean over the whole current boundary (not the weakest stretch of it, which
 * would let one gap in a membrane join two cells). Stops when the weakest boundary's mean reaches `threshold`.
 * Labels of `labels` must be >= 1.
 */
export function mergeWeakBoundaries(labels: Int32Array, pMembrane: Float32Array, width: number,
  threshold: number): Segmentation {
  const neighbours = boundaries(labels, pMembrane, width);
  const parent = Int32Array.from({ length: neighbours.length }, (_, i) => i);
  const heap = new MinHeap();
  neighbours.forEach((m, a) => m.forEach((b, c) => { if (a < c) heap.push(b.sum / b.count, a, c); }));
  for (let e = heap.pop(); e && e.mean < threshold; e = heap.pop()) {
    const current = neighbours[e.a]!.get(e.b);
    if (parent[e.a] !== e.a || parent[e.b] !== e.b || !current || current.sum / current.count !== e.mean) continue;
    const [keep, gone] = neighbours[e.a]!.size >= neighbours[e.b]!.size ? [e.a, e.b] : [e.b, e.a];
    parent[gone] = keep;
    const kept = neighbours[keep]!;
    kept.delete(gone);
    for (const [c, b] of neighbours[gone]!) {
      if (c === keep) continue;
      const pooled = kept.get(c) ?? { sum: 0, count: 0 };
      pooled.sum += b.sum;
      pooled.count += b.count;
      kept.set(c, pooled);
      neighbours[c]!.delete(gone);
      neighbours[c]!.set(keep, pooled);
      heap.push(pooled.sum / pooled.count, Math.min(keep, c), Math.max(keep, c));
    }
    neighbours[gone]!.clear();
  }
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  return renumber(labels.map(root));
}

/** Segments numbered 1..count in order of first appearance (row-major). */
export function renumber(labels: Int32Array): Segmentation {
  const map = new Map<number, number>();
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let l = map.get(labels[i]!);
    if (l === undefined) map.set(labels[i]!, l = map.size + 1);
    out[i] = l;
  }
  return { labels: out, count: map.size };
}

/** For each label, its neighbouring labels with the P(membrane) summed over their shared boundary pairs' pixels. */
function boundaries(labels: Int32Array, pMembrane: Float32Array, width: number): Map<number, Boundary>[] {
  let max = 0;
  for (const l of labels) if (l > max) max = l;
  const neighbours = Array.from({ length: max + 1 }, () => new Map<number, Boundary>());
  const touch = (p: number, q: number) => {
    const a = labels[p]!;
    const b = labels[q]!;
    if (a === b) return;
    let e = neighbours[a]!.get(b);
    if (!e) {
      e = { sum: 0, count: 0 };
      neighbours[a]!.set(b, e);
      neighbours[b]!.set(a, e);
    }
    e.sum += pMembrane[p]! + pMembrane[q]!;
    e.count += 2;
  };
  for (let p = 0; p < labels.length; p++) {
    if (p % width < width - 1) touch(p, p + 1);
    if (p + width < labels.length) touch(p, p + width);
  }
  return neighbours;
}

/** Binary min-heap of boundaries by mean (entries go stale when their segments change; the caller skips those). */
class MinHeap {
  private readonly items: { mean: number; a: number; b: number }[] = [];

  push(mean: number, a: number, b: number): void {
    const items = this.items;
    items.push({ mean, a, b });
    for (let i = items.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (items[up]!.mean <= items[i]!.mean) break;
      [items[up], items[i]] = [items[i]!, items[up]!];
      i = up;
    }
  }

  pop(): { mean: number; a: number; b: number } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && items[l]!.mean < items[m]!.mean) m = l;
        if (r < items.length && items[r]!.mean < items[m]!.mean) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i]!, items[m]!];
        i = m;
      }
    }
    return top;
  }
}
