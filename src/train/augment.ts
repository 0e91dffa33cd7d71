import type { Rng } from '../util/rng.js';

/**
 * Augmentations applied identically to an image tile and its label tile (both square, same size):
 * the 8 rotations/flips (always), elastic deformation and intensity jitter (options).
 */

export interface ElasticOptions {
  /** Displacement magnitude in pixels and smoothness (Gaussian sigma of the field), as in Simard et al. 2003. */
  alpha: number;
  sigma: number;
}

function gaussianSmooth(field: Float32Array, n: number, sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const kernel = Float32Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const norm = kernel.reduce((a, b) => a + b, 0);
  const pass = (src: Float32Array, horizontal: boolean) => {
    const dst = new Float32Array(src.length);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        let s = 0;
        for (let k = -r; k <= r; k++) {
          const yy = horizontal ? y : Math.min(n - 1, Math.max(0, y + k));
          const xx = horizontal ? Math.min(n - 1, Math.max(0, x + k)) : x;
          s += kernel[k + r]! * src[yy * n + xx]!;
        }
        dst[y * n + x] = s / norm;
      }
    }
    return dst;
  };
  return pass(pass(field, true), false);
}

/** A smooth random field: white noise on a coarse grid, Gaussian-smoothed there, bilinearly up-sampled. */
export function smoothField(n: number, sigma: number, rng: Rng): Float32Array {
  // Smoothing at full resolution costs O(n^2 sigma); a grid sigma/2 apart gives the same field for a fraction.
  const step = Math.max(1, Math.floor(sigma / 2));
  const m = Math.ceil((n - 1) / step) + 1;
  const coarse = gaussianSmooth(Float32Array.from({ length: m * m }, () => 2 * rng.next() - 1), m, sigma / step);
  const out = new Float32Array(n * n);
  for (let y = 0; y < n; y++) {
    const gy = y / step;
    const y0 = Math.min(m - 1, Math.floor(gy));
    const y1 = Math.min(m - 1, y0 + 1);
    const fy = gy - y0;
    for (let x = 0; x < n; x++) {
      const gx = x / step;
      const x0 = Math.min(m - 1, Math.floor(gx));
      const x1 = Math.min(m - 1, x0 + 1);
      const fx = gx - x0;
      out[y * n + x] = (1 - fy) * ((1 - fx) * coarse[y0 * m + x0]! + fx * coarse[y0 * m + x1]!)
        + fy * ((1 - fx) * coarse[y1 * m + x0]! + fx * coarse[y1 * m + x1]!);
    }
  }
  return out;
}

/**
 * Elastic deformation: bilinear for the image, nearest for labels (which must stay class indices). The image may
 * hold several n x n planes (a 2.5D model's sections): one displacement field moves them all.
 */
export function elastic(image: Float32Array, labels: Int32Array, n: number, opts: ElasticOptions, rng: Rng):
  { image: Float32Array; labels: Int32Array } {
  const planes = image.length / (n * n);
  const dx = smoothField(n, opts.sigma, rng);
  const dy = smoothField(n, opts.sigma, rng);
  // Normalise so that alpha is the largest displacement, whatever sigma is.
  let peak = 1e-12;
  for (let i = 0; i < n * n; i++) peak = Math.max(peak, Math.abs(dx[i]!), Math.abs(dy[i]!));
  const scale = opts.alpha / peak;
  const outImage = new Float32Array(image.length);
  const outLabels = new Int32Array(n * n);
  const clamp = (v: number) => Math.min(n - 1, Math.max(0, v));
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const i = y * n + x;
      const sy = clamp(y + dy[i]! * scale);
      const sx = clamp(x + dx[i]! * scale);
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const y1 = Math.min(n - 1, y0 + 1);
      const x1 = Math.min(n - 1, x0 + 1);
      const fy = sy - y0;
      const fx = sx - x0;
      for (let c = 0, o = 0; c < planes; c++, o += n * n) {
        outImage[o + i] = (1 - fy) * ((1 - fx) * image[o + y0 * n + x0]! + fx * image[o + y0 * n + x1]!)
          + fy * ((1 - fx) * image[o + y1 * n + x0]! + fx * image[o + y1 * n + x1]!);
      }
      outLabels[i] = labels[Math.round(sy) * n + Math.round(sx)]!;
    }
  }
  return { image: outImage, labels: outLabels };
}

export interface JitterOptions {
  /** Maximum relative contrast change, brightness shift (in [0,1] units) and gamma exponent spread. */
  contrast: number;
  brightness: number;
  gamma: number;
}

/** Random contrast/brightness/gamma, in place, clipped to [0, 1]. */
export function intensityJitter(image: Float32Array, opts: JitterOptions, rng: Rng): void {
  const gain = 1 + opts.contrast * (2 * rng.next() - 1);
  const shift = opts.brightness * (2 * rng.next() - 1);
  const gamma = Math.exp(opts.gamma * (2 * rng.next() - 1));
  for (let i = 0; i < image.length; i++) {
    const v = Math.min(1, Math.max(0, (image[i]! - 0.5) * gain + 0.5 + shift));
    image[i] = v ** gamma;
  }
}
