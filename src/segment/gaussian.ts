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
  for (let y = 0; y < height; y++) convolveLine(data, rows, y * width, 1, width, kernel);
  const out = new Float32Array(data.length);
  for (let x = 0; x < width; x++) convolveLine(rows, out, x, width, height, kernel);
  return out;
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

function convolveLine(src: Float32Array, dst: Float32Array, start: number, stride: number, n: number, taps: Float64Array): void {
  const radius = (taps.length - 1) / 2;
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let k = -radius; k <= radius; k++) acc += taps[k + radius]! * src[start + mirror(i + k, n) * stride]!;
    dst[start + i * stride] = acc;
  }
}
