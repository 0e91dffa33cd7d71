import { Rng } from '../util/rng.js';

/**
 * Augmentations applied identically to an image tile and its label tile (both square, same size):
 * the 8 rotations/flips (always), elastic deformation and intensity jitter (options).
 */

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
function smoothField(n: number, sigma: number, rng: Rng): Float32Array {
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

/** Elastic deformation: bilinear for the image, nearest for labels (which must stay class indices). */
export function elastic(image: Float32Array, labels: Int32Array, n: number, opts: ElasticOptions, rng: Rng):
  { image: Float32Array; labels: Int32Array } {
  const dx = smoothField(n, opts.sigma, rng);
  const dy = smoothField(n, opts.sigma, rng);
  // Normalise so that alpha is the largest displacement, whatever sigma is.
  let peak = 1e-12;
  for (let i = 0; i < n * n; i++) peak = Math.max(peak, Math.abs(dx[i]!), Math.abs(dy[i]!));
  const scale = opts.alpha / peak;
  const outImage = new Float32Array(n * n);
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
      outImage[i] = (1 - fy) * ((1 - fx) * image[y0 * n + x0]! + fx * image[y0 * n + x1]!)
        + fy * ((1 - fx) * image[y1 * n + x0]! + fx * image[y1 * n + x1]!);
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
