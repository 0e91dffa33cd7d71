/** Mirrored (reflect, edge not repeated) reads outside an image: the one border rule of training and prediction. */

/** Mirror index without repeating the edge pixel (...2 1 | 0 1 2 ... n-1 | n-2 ...), for any distance. */
export function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/** Copy the h x w region at (top, left) of an image, mirroring outside it. */
export function extractMirrored(src: Float32Array, height: number, width: number, top: number, left: number,
  h: number, w: number, out: Float32Array = new Float32Array(h * w)): Float32Array {
  for (let y = 0; y < h; y++) {
    const row = reflect(top + y, height) * width;
    for (let x = 0; x < w; x++) out[y * w + x] = src[row + reflect(left + x, width)]!;
  }
  return out;
}

/**
 * The sections a model reading `radius` sections on each side sees for section z of a stack of `depth`: z - radius
 * .. z + radius in order, mirrored at the stack's ends like pixels at a section's border (the one border rule).
 */
export function neighbourSections(z: number, depth: number, radius: number): number[] {
  return Array.from({ length: 2 * radius + 1 }, (_, k) => reflect(z - radius + k, depth));
}
