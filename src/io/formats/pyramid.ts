/** 2x downsampling in y and x (z kept) for multiscale pyramids: mean for images and maps, mode for labels. */
import { allocate, sampleTypeOf } from '../../image/stack.js';
import type { StackData, Vec3 } from './volume.js';

export type Downsampling = 'mean' | 'mode';

/**
 * Halves y and x of a (z, y, x) box (odd sizes round up: the last row/column averages what exists).
 * Mean rounds to the nearest integer for integer types. Mode takes the most frequent of the (up to) four
 * labels, ties going to the earliest in raster order, so a label never appears that was not in its 2x2 cell.
 */
export function downsample2x(src: StackData, shape: Vec3, method: Downsampling): StackData {
  const [d, h, w] = shape;
  const [oh, ow] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  const type = sampleTypeOf(src);
  const out = allocate(type, d * oh * ow);
  const integer = type !== 'float32';
  const cell = [0, 0, 0, 0];
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < oh; y++) {
      const y0 = 2 * y;
      const rows = y0 + 1 < h ? 2 : 1;
      for (let x = 0; x < ow; x++) {
        const x0 = 2 * x;
        const cols = x0 + 1 < w ? 2 : 1;
        let n = 0;
        for (let dy = 0; dy < rows; dy++) {
          for (let dx = 0; dx < cols; dx++) cell[n++] = src[(z * h + y0 + dy) * w + x0 + dx]!;
        }
        const o = (z * oh + y) * ow + x;
        if (method === 'mode') out[o] = modeOf(cell, n);
        else {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += cell[i]!;
          out[o] = integer ? Math.round(sum / n) : sum / n;
        }
      }
    }
  }
  return out;
}

/** downsample2x's mode for uint64 ids (labels past 2^32): the same cells, the same ties. */
export function downsampleIds2x(src: BigUint64Array, shape: Vec3): BigUint64Array {
  const [d, h, w] = shape;
  const [oh, ow] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  const out = new BigUint64Array(d * oh * ow);
  const cell: bigint[] = [0n, 0n, 0n, 0n];
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < oh; y++) {
      const rows = 2 * y + 1 < h ? 2 : 1;
      for (let x = 0; x < ow; x++) {
        const cols = 2 * x + 1 < w ? 2 : 1;
        let n = 0;
        for (let dy = 0; dy < rows; dy++) {
          for (let dx = 0; dx < cols; dx++) cell[n++] = src[(z * h + 2 * y + dy) * w + 2 * x + dx]!;
        }
        out[(z * oh + y) * ow + x] = modeOf(cell, n);
      }
    }
  }
  return out;
}

function modeOf<T extends number | bigint>(cell: T[], n: number): T {
  let best = cell[0]!;
  let bestCount = 0;
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (let j = 0; j < n; j++) if (cell[j] === cell[i]) count++;
    if (count > bestCount) {
      best = cell[i]!;
      bestCount = count;
    }
  }
  return best;
}
