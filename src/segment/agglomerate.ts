/** A segmentation of one section: a label per pixel, 1..count (every pixel belongs to a segment). */
export interface Segmentation {
  labels: Int32Array;
  count: number;
}

/**
 * Joins neighbouring segments across weak boundaries: every boundary (the 4-neighbour pixel pairs between two
 * segments) is scored by its strength (below), and the two sides are united in order of that score while it is
 * below `threshold` (Kruskal, union-find). Labels of `labels` must be >= 1.
 */
export function mergeWeakBoundaries(labels: Int32Array, pMembrane: Float32Array, width: number,
  threshold: number): Segmentation {
  const parent = Int32Array.from({ length: maxOf(labels) + 1 }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  for (const b of boundaries(labels, pMembrane, width).sort((x, y) => x.mean - y.mean)) {
    if (b.mean >= threshold) break;
    const ra = find(b.a);
    const rb = find(b.b);
    if (ra !== rb) parent[rb] = ra;
  }
  return renumber(labels.map(find));
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

function maxOf(labels: Int32Array): number {
  let max = 0;
  for (const l of labels) if (l > max) max = l;
  return max;
}

/**
 * Each pair of touching segments (a < b) with its boundary's strength: the mean over its 4-neighbour pixel pairs of
 * the pair's higher P(membrane), so that a membrane one pixel thin scores as high as a thick one.
 */
function boundaries(labels: Int32Array, pMembrane: Float32Array, width: number): { a: number; b: number; mean: number }[] {
  const stride = maxOf(labels) + 1;
  const sums = new Map<number, { a: number; b: number; sum: number; count: number }>();
  const touch = (p: number, q: number) => {
    if (labels[p] === labels[q]) return;
    const a = Math.min(labels[p]!, labels[q]!);
    const b = Math.max(labels[p]!, labels[q]!);
    let e = sums.get(a * stride + b);
    if (!e) sums.set(a * stride + b, e = { a, b, sum: 0, count: 0 });
    e.sum += Math.max(pMembrane[p]!, pMembrane[q]!);
    e.count++;
  };
  for (let p = 0; p < labels.length; p++) {
    if (p % width < width - 1) touch(p, p + 1);
    if (p + width < labels.length) touch(p, p + width);
  }
  return [...sums.values()].map((e) => ({ a: e.a, b: e.b, mean: e.sum / e.count }));
}
