/**
 * 4-connected component labelling of a binary image, reusing its buffers between calls.
 * Labels are 1..count in row-major order of first appearance; 0 marks background.
 */
export class ComponentLabeller {
  private stack = new Int32Array(0);

  /** Labels the nonzero pixels of `mask` (row-major, `width` x `height`) into `out`; returns the count. */
  label(mask: ArrayLike<number>, width: number, height: number, out: Int32Array): number {
    const n = width * height;
    if (this.stack.length < n) this.stack = new Int32Array(n);
    const stack = this.stack;
    out.fill(0, 0, n);
    let count = 0;
    for (let start = 0; start < n; start++) {
      if (mask[start] === 0 || out[start] !== 0) continue;
      const label = ++count;
      out[start] = label;
      let top = 0;
      stack[top++] = start;
      while (top > 0) {
        const p = stack[--top]!;
        const x = p % width;
        if (x > 0 && mask[p - 1] !== 0 && out[p - 1] === 0) { out[p - 1] = label; stack[top++] = p - 1; }
        if (x < width - 1 && mask[p + 1] !== 0 && out[p + 1] === 0) { out[p + 1] = label; stack[top++] = p + 1; }
        if (p >= width && mask[p - width] !== 0 && out[p - width] === 0) { out[p - width] = label; stack[top++] = p - width; }
        if (p < n - width && mask[p + width] !== 0 && out[p + width] === 0) { out[p + width] = label; stack[top++] = p + width; }
      }
    }
    return count;
  }
}

/** One-off convenience wrapper: labels `mask` and returns the labels and their count. */
export function labelComponents4(
  mask: ArrayLike<number>,
  width: number,
  height: number,
): { labels: Int32Array; count: number } {
  const labels = new Int32Array(width * height);
  const count = new ComponentLabeller().label(mask, width, height, labels);
  return { labels, count };
}
