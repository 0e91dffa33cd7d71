/** The 8 rotations/flips of an image, shared by training augmentation and test-time augmentation. */

/**
 * Dihedral transform k in 0..7 of an h x w image: a horizontal flip if k >= 4, then k & 3 quarter turns
 * clockwise. Odd turns swap height and width.
 */
export function dihedral<T extends Float32Array | Int32Array>(src: T, h: number, w: number, k: number):
  { data: T; height: number; width: number } {
  const turns = k & 3;
  const flip = k >= 4;
  const [oh, ow] = turns % 2 ? [w, h] : [h, w];
  const out = new (src.constructor as new (len: number) => T)(src.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // Walk back from the output pixel to its source: undo the turns one at a time, then the flip.
      let sy = y;
      let sx = x;
      let ch = oh;
      let cw = ow;
      for (let t = 0; t < turns; t++) {
        [sy, sx] = [cw - 1 - sx, sy];
        [ch, cw] = [cw, ch];
      }
      if (flip) sx = cw - 1 - sx;
      out[y * ow + x] = src[sy * w + sx]!;
    }
  }
  return { data: out, height: oh, width: ow };
}

/** The k' with dihedral(dihedral(x, k), k') == x. */
export function inverseDihedral(k: number): number {
  return k >= 4 ? k : (4 - k) & 3;
}
