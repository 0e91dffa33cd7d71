/**
 * A 2-D cell segmentation as the ISBI 2012 challenge scored segmentations: a binary map whose membrane is where two
 * cells meet. A pixel is membrane (0) when its right or lower neighbour carries another label, or when it carries
 * label 0 (no cell); every other pixel is interior (1). Each pair of 4-neighbours with different labels then has a
 * membrane pixel between them, so the map's interior components are the cells again (each less its one-pixel rim
 * towards right and lower neighbours), and its thresholds all give the same segmentation.
 */
import { EmsegError } from '../errors.js';

/** One section of cell labels (row-major `width` x `height`; any integer type, 64-bit ids included). */
export type CellLabels = ArrayLike<number> | ArrayLike<bigint>;

/** The section's boundary map in the metrics' convention (1 = interior, 0 = membrane). */
export function cellBoundaryMap(cells: CellLabels, width: number, height: number,
  out: Float32Array<ArrayBufferLike> = new Float32Array(width * height)): Float32Array<ArrayBufferLike> {
  if (cells.length !== width * height || out.length !== cells.length) {
    throw new EmsegError('mismatch', 'cells', `${cells.length} labels for a ${width} x ${height} section`);
  }
  const c = cells as ArrayLike<number | bigint>;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      const v = c[i]!;
      const edge = v === 0 || v === 0n || (x + 1 < width && c[i + 1] !== v) || (y + 1 < height && c[i + width] !== v);
      out[i] = edge ? 0 : 1;
    }
  }
  return out;
}
