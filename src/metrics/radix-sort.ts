/**
 * Stable sort of items by float32 priority, highest first, as Java's stable
 * `Collections.sort` with `Float.compare(o2, o1)` orders the warping mismatches.
 *
 * Priorities are non-negative, so their IEEE bit patterns order like the values; an LSD radix
 * sort on the complemented bits (two 16-bit digits) is stable and O(n), which matters because
 * a sweep sorts up to a whole slice per threshold.
 */
export class PrioritySorter {
  private keys = new Uint32Array(0);
  private keysTmp = new Uint32Array(0);
  private itemsTmp = new Int32Array(0);
  private readonly counts = new Uint32Array(65536);

  /**
   * Sorts `items[0..n)` in place by priority, highest first, keeping the input order of equal
   * priorities. `priorityBits[i]` is the IEEE bit pattern of item i's non-negative float32
   * priority (a Uint32Array view of the Float32Array).
   */
  sort(items: Int32Array, priorityBits: Uint32Array, n: number): void {
    if (n < 2) return;
    if (this.keys.length < n) {
      this.keys = new Uint32Array(n);
      this.keysTmp = new Uint32Array(n);
      this.itemsTmp = new Int32Array(n);
    }
    const keys = this.keys;
    for (let i = 0; i < n; i++) keys[i] = ~priorityBits[i] >>> 0;
    this.pass(keys, items, this.keysTmp, this.itemsTmp, n, 0);
    this.pass(this.keysTmp, this.itemsTmp, keys, items, n, 16);
  }

  private pass(srcKeys: Uint32Array, srcItems: Int32Array, dstKeys: Uint32Array, dstItems: Int32Array, n: number, shift: number): void {
    const counts = this.counts;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(srcKeys[i] >>> shift) & 0xffff]++;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = counts[d];
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = counts[(srcKeys[i] >>> shift) & 0xffff]++;
      dstKeys[at] = srcKeys[i];
      dstItems[at] = srcItems[i];
    }
  }
}
