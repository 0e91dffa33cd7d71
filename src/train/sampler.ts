import { EmsegError } from '../errors.js';
import type { ImageStack } from '../image/stack.js';
import { extractMirrored, neighbourSections, reflect } from '../image/mirror.js';
import type { Rng } from '../util/rng.js';
import { dihedral } from '../image/dihedral.js';
import { elastic, intensityJitter, type ElasticOptions, type JitterOptions } from './augment.js';
import { borderWeights } from './border-weight.js';
import { UNKNOWN_CLASS } from '../image/affinities.js';

/**
 * Draws whole training tiles (fully convolutional training): a random section, a random position (mirrored at
 * the borders), one of the 8 rotations/flips, optional elastic deformation and intensity jitter. A tile's
 * output pixel (i, j) is the class of input pixel (i + offset, j + offset); every output pixel is one window.
 */

export type Balance = 'weights' | 'subsample' | 'none';

/** U-Net's border weight: w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) added to each pixel's weight (src/train/border-weight.ts). */
export interface BorderWeight {
  w0: number;
  sigma: number;
}

export interface SamplerOptions {
  inputSize: number;
  outputSize: number;
  /** Output pixel (i, j) is the class of tile input pixel (i + offset, j + offset). */
  offset: number;
  balance: Balance;
  elastic?: ElasticOptions | null;
  jitter?: JitterOptions | null;
  border?: BorderWeight | null;
  /** Sections on each side of the labelled one that the model reads (0: 2D). */
  radius?: number;
}

export interface Batch {
  input: Float32Array; // B x (2 radius + 1) x in x in
  labels: Int32Array; // B x out x out; 1 = membrane, 0 = interior, -1 = ignored
  weights: Float32Array | null;
}

export { UNKNOWN_CLASS };

/** Membrane pixels among the labelled ones (pixels of UNKNOWN_CLASS counted in neither). */
export function membraneFraction(labels: ImageStack<Uint8Array>, sections: readonly number[]): number {
  const n = labels.width * labels.height;
  let membrane = 0;
  let unknown = 0;
  for (const z of sections) {
    for (let i = z * n; i < (z + 1) * n; i++) {
      const v = labels.data[i]!;
      if (v === UNKNOWN_CLASS) unknown++;
      else membrane += v;
    }
  }
  return membrane / (n * sections.length - unknown);
}

export class TileSampler {
  /** Per-class loss weights (balance = 'weights') or the keep-probability of interior pixels ('subsample'). */
  private readonly classWeight: [number, number];
  private readonly keepInterior: number;

  constructor(
    private readonly images: ImageStack<Float32Array>,
    private readonly labels: ImageStack<Uint8Array>,
    private readonly sections: readonly number[],
    private readonly options: SamplerOptions,
  ) {
    if (sections.length === 0) throw new EmsegError('invalid-option', 'training sections', 'none to sample from');
    if (options.offset < 0 || options.offset + options.outputSize > options.inputSize) {
      throw new EmsegError('internal', 'tile geometry', `outputs ${options.outputSize} at offset ${options.offset} do not fit ${options.inputSize} inputs`);
    }
    const f = membraneFraction(labels, sections);
    this.classWeight = [0.5 / (1 - f), 0.5 / f];
    this.keepInterior = Math.min(1, f / (1 - f));
  }

  /** Fills a batch of `count` tiles, consuming `rng` (so a resumed run draws the same tiles). */
  next(count: number, rng: Rng): Batch {
    const { inputSize: n, outputSize: m, balance } = this.options;
    const planes = 2 * (this.options.radius ?? 0) + 1;
    const input = new Float32Array(count * planes * n * n);
    const labels = new Int32Array(count * m * m);
    const border = this.options.border ?? null;
    const weights = balance === 'weights' || border ? new Float32Array(count * m * m) : null;
    for (let b = 0; b < count; b++) {
      const tile = this.drawTile(rng);
      input.set(tile.image, b * planes * n * n);
      // The whole input tile, not only its outputs: cells beyond the output window still count as neighbours.
      const extra = border ? borderWeights(tile.labels, n, n, border.w0, border.sigma) : null;
      for (let y = 0; y < m; y++) {
        for (let x = 0; x < m; x++) {
          const t = (y + this.options.offset) * n + x + this.options.offset;
          const cls = tile.labels[t]!;
          const i = b * m * m + y * m + x;
          if (cls === UNKNOWN_CLASS) {
            labels[i] = -1; // no loss, and no weight (weights stay 0)
            continue;
          }
          if (balance === 'subsample' && cls === 0 && rng.next() >= this.keepInterior) labels[i] = -1;
          else labels[i] = cls;
          if (weights) weights[i] = (balance === 'weights' ? this.classWeight[cls]! : 1) + (extra ? extra[t]! : 0);
        }
      }
    }
    return { input, labels, weights };
  }

  /**
   * One tile: the labelled section's window and, for a 2.5D model, the same window of its neighbours (one plane
   * each, in section order, reversed at random: the stack may be cut either way), all transformed alike.
   */
  private drawTile(rng: Rng): { image: Float32Array; labels: Int32Array } {
    const { width: W, height: H, depth } = this.images;
    const n = this.options.inputSize;
    const z = this.sections[rng.int(this.sections.length)]!;
    const top = rng.int(Math.max(1, H - this.options.outputSize + 1)) - this.options.offset;
    const left = rng.int(Math.max(1, W - this.options.outputSize + 1)) - this.options.offset;
    const plane = W * H;
    const radius = this.options.radius ?? 0;
    const zs = neighbourSections(z, depth, radius);
    if (radius > 0 && rng.next() < 0.5) zs.reverse();
    let image: Float32Array = new Float32Array(zs.length * n * n);
    zs.forEach((s, c) => extractMirrored(this.images.data.subarray(s * plane, (s + 1) * plane), H, W, top, left, n, n,
      image.subarray(c * n * n, (c + 1) * n * n)));
    let labels: Int32Array = new Int32Array(n * n);
    const lab = this.labels.data;
    for (let y = 0; y < n; y++) {
      const row = z * plane + reflect(top + y, H) * W;
      for (let x = 0; x < n; x++) labels[y * n + x] = lab[row + reflect(left + x, W)]!;
    }
    const k = rng.int(8);
    for (let c = 0; c < zs.length; c++) image.set(dihedral(image.subarray(c * n * n, (c + 1) * n * n), n, n, k).data, c * n * n);
    labels = dihedral(labels, n, n, k).data;
    if (this.options.elastic) ({ image, labels } = elastic(image, labels, n, this.options.elastic, rng));
    if (this.options.jitter) intensityJitter(image, this.options.jitter, rng);
    return { image, labels };
  }
}
