/** Confusion counts of one slice, foreground (non-membrane) being the positive class. */
export interface PixelCounts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/**
 * Counts one slice at threshold `th`: ground truth foreground is `gtFg != 0`, proposal
 * foreground is `value > th` (strict, float32 value compared as a double, as Fiji does).
 */
export function pixelCounts(gtFg: Uint8Array, proposal: ArrayLike<number>, th: number): PixelCounts {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < gtFg.length; i++) {
    const predicted = proposal[i] > th;
    if (gtFg[i] !== 0) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
    else tn++;
  }
  return { tp, fp, fn, tn };
}
