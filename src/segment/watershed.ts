import { EmsegError } from '../errors.js';

/** Number of elevation levels of the bucket queue; probabilities are quantised to this many steps. */
const LEVELS = 256;

/**
 * Seeded watershed by priority flooding (Meyer): every unlabelled pixel takes the label of the basin that reaches
 * it first when the seeds are flooded in order of `elevation` (values in [0, 1], quantised to 256 levels; ties in
 * FIFO order, so the result is deterministic). 4-connected. Returns a label for every pixel reachable from a seed;
 * pixels no seed reaches (only possible when there are no seeds) stay 0.
 */
export function seededWatershed(elevation: Float32Array, seeds: Int32Array, height: number, width: number): Int32Array {
  const n = height * width;
  if (elevation.length !== n || seeds.length !== n) throw new EmsegError('mismatch', 'seededWatershed', `elevation and seeds must have ${height}x${width} pixels`);
  const labels = seeds.slice();
  const level = new Uint8Array(n);
  for (let i = 0; i < n; i++) level[i] = Math.min(LEVELS - 1, Math.max(0, Math.round(elevation[i]! * (LEVELS - 1))));
  const queue = new BucketQueue(n);
  for (let i = 0; i < n; i++) if (labels[i] !== 0) queue.push(i, level[i]!);
  // Queues an unlabelled neighbour q of a pixel labelled `label` (pushes below the current level go to it).
  const flood = (q: number, label: number) => {
    if (labels[q] !== 0) return;
    labels[q] = label;
    queue.push(q, level[q]!);
  };
  for (let p = queue.pop(); p >= 0; p = queue.pop()) {
    const x = p % width;
    const label = labels[p]!;
    if (x > 0) flood(p - 1, label);
    if (p >= width) flood(p - width, label);
    if (x < width - 1) flood(p + 1, label);
    if (p < n - width) flood(p + width, label);
  }
  return labels;
}

/** FIFO per level, as linked lists through one `next` array (each pixel is queued at most once). */
class BucketQueue {
  private readonly head = new Int32Array(LEVELS).fill(-1);
  private readonly tail = new Int32Array(LEVELS).fill(-1);
  private readonly next: Int32Array;
  /** Lowest level that may hold pixels; flooding never goes back below it. */
  current = 0;

  constructor(size: number) {
    this.next = new Int32Array(size).fill(-1);
  }

  push(p: number, level: number): void {
    const l = Math.max(level, this.current);
    if (this.tail[l] === -1) this.head[l] = p;
    else this.next[this.tail[l]!] = p;
    this.tail[l] = p;
    this.next[p] = -1;
  }

  pop(): number {
    while (this.current < LEVELS && this.head[this.current] === -1) this.current++;
    if (this.current === LEVELS) return -1;
    const p = this.head[this.current]!;
    this.head[this.current] = this.next[p]!;
    if (this.head[this.current] === -1) this.tail[this.current] = -1;
    return p;
  }
}
