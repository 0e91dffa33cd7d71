import { EmsegError } from '../errors.js';

/**
 * Separable Gaussian blur of a single-channel section with mirrored borders (no library offers this for plain
 * typed arrays without pulling in an image stack; it is two 1-D passes).
 */
export function gaussianBlur(data: Float32Array, height: number, width: number, sigma: number): Float32Array {
  if (!(sigma >= 0)) throw new EmsegError('invalid-option', 'sigma', `must be >= 0 (got ${sigma})`);
  if (sigma === 0) return data.slice();
  const kernel = gaussianKernel(sigma);
  const rows = new Float32Array(data.length);
  for (let y = 0; y < height; y++) blurRow(data, rows, y * width, width, kernel);
  return blurColumns(rows, height, width, kernel);
}

/** Normalised taps for offsets -r..r, r = ceil(3 sigma). */
function gaussianKernel(sigma: number): Float64Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const taps = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += taps[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < taps.length; i++) taps[i]! /= sum;
  return taps;
}

/** Mirror index into 0..n-1 without repeating the edge pixel (…2 1 | 0 1 2 … n-1 | n-2 …). */
function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * One row, mirrored at its ends. Pixels whose taps all fall inside the row index it directly: the mirror arithmetic
 * per tap was most of the blur's time. Every pixel sums its taps from -r to r in float64, as the edge pixels do.
 */
function blurRow(src: Float32Array, dst: Float32Array, start: number, n: number, taps: Float64Array): void {
  const radius = (taps.length - 1) / 2;
  for (let i = 0; i < n; i++) {
    let acc = 0;
    if (i >= radius && i < n - radius) {
      const from = start + i - radius;
      for (let k = 0; k < taps.length; k++) acc += taps[k]! * src[from + k]!;
    } else {
      for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * src[start + mirror(i + k, n)]!;
    }
    dst[start + i] = acc;
  }
}

/**
 * The vertical pass, a whole row at a time: each output row is the taps' weighted sum of whole (mirrored) input
 * rows, so reads are contiguous instead of one column at a stride of the width. Each pixel's sum runs over the same
 * taps in the same order, in float64, so the values equal a per-column pass bit for bit.
 */
function blurColumns(src: Float32Array, height: number, width: number, taps: Float64Array): Float32Array {
  const radius = (taps.length - 1) / 2;
  const out = new Float32Array(src.length);
  const acc = new Float64Array(width);
  for (let y = 0; y < height; y++) {
    acc.fill(0);
    for (let k = -radius; k <= radius; k++) {
      const t = taps[k + radius]!;
      const row = mirror(y + k, height) * width;
      for (let x = 0; x < width; x++) acc[x]! += t * src[row + x]!;
    }
    out.set(acc, y * width);
  }
  return out;
}
