/**
 * Training samples for 3-d networks, drawn from a labelled volume: a random box (its outputs inside one run of
 * training sections), one of the volume's symmetries (flips on every axis; in-plane transposes; all axis permutations
 * when the voxels are isotropic), intensity jitter, and for anisotropic stacks missing sections. The image box and
 * the label box are both centred on the output box, so one symmetry applied to each keeps them aligned; the
 * targets (affinities, boundaries) are then made from the transformed ids (image/affinities.ts), so they follow the
 * transform exactly.
 */
import { EmsegError } from '../errors.js';
import { classBalanceWeights, labelTargets, type BoundaryChannel, type TargetChannel, type Targets } from '../image/affinities.js';
import { clampBox, copyBox, mirrorFill, volumeOf, type Box, type Vec3 } from '../infer/volume.js';
import type { Rng } from '../util/rng.js';
import { transformBox, type Symmetry } from '../image/box-symmetry.js';
import { intensityJitter, smoothField, type ElasticOptions, type JitterOptions } from './augment.js';

/** A labelled volume in memory: intensities in [0, 1] and compact neuron ids (0 = background), row-major z, y, x. */
export interface LabelledVolume {
  images: Float32Array;
  ids: Uint32Array;
  shape: Vec3;
}

export interface VolumeSamplerOptions {
  /** Network input and output voxels per axis, and the input voxels before the first output one. */
  input: Vec3;
  output: Vec3;
  offset: Vec3;
  channels: readonly TargetChannel[];
  /** 'weights': each channel's two classes weigh equally within a sample; 'none': every known target weighs 1. */
  balance: 'weights' | 'none';
  /** The compact id whose voxels teach nothing (absent: none). */
  ignoreId?: number;
  /** Isotropic voxels: every axis permutation is a symmetry; otherwise only y <-> x. */
  isotropic: boolean;
  jitter: JitterOptions | null;
  /** Probability that one section of a sample's image is blanked (anisotropic stacks lose sections); 0: never. */
  missingSection: number;
  /**
   * Serial-section misalignment: with this probability, the sections from a random one on are shifted in-plane by
   * up to `shift` voxels in y and x, image and ids alike, so the targets across that cut say what a misaligned stack
   * shows (Lee et al. 2017). Absent: never.
   */
  misalign?: { probability: number; shift: number };
  /** In-plane elastic deformation (one smooth field for every section, image bilinear, ids nearest); absent: none. */
  elastic?: ElasticOptions | null;
}

export interface VolumeBatch {
  input: Float32Array; // B x 1 x input
  targets: Float32Array; // B x C x output
  weights: Float32Array; // B x C x output
}


const PERMS_ISO: Vec3[] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
const PERMS_ANISO: Vec3[] = [[0, 1, 2], [0, 2, 1]];

/** Voxels of the label box beyond the output box on each side: the longest reach of a target along each axis. */
export function labelMargin(channels: readonly TargetChannel[]): Vec3 {
  // A boundary reaches one voxel along y and x, and along z unless decided in-plane.
  const along = (c: TargetChannel, a: number) => (Array.isArray(c) ? Math.abs((c as Vec3)[a]!) : a > 0 || (c as BoundaryChannel).boundary === '3d' ? 1 : 0);
  const reach = (a: number) => Math.max(0, ...channels.map((c) => along(c, a)));
  return [reach(0), reach(1), reach(2)];
}

const sizeOf = (b: Box): Vec3 => [b.end[0] - b.start[0], b.end[1] - b.start[1], b.end[2] - b.start[2]];

/** The `box` of a volume (inside it), as a copy. */
const cut = <T extends Float32Array | Uint32Array>(src: T, shape: Vec3, box: Box): T => copyBox(src, shape, box.start, sizeOf(box));

/** The output-box starts along z whose label box lies inside one run of consecutive training sections. */
function zStarts(sections: readonly number[], outZ: number, marginZ: number): number[] {
  const set = new Set(sections);
  return [...set].filter((z) => {
    for (let k = z - marginZ; k < z + outZ + marginZ; k++) if (!set.has(k)) return false;
    return true;
  }).sort((a, b) => a - b);
}

export class VolumeSampler {
  private readonly margin: Vec3;
  private readonly starts: number[];
  /** In-plane room read around both boxes, for a misaligned part and elastic displacements to draw from. */
  private readonly pad: number;

  constructor(private readonly volume: LabelledVolume, sections: readonly number[], private readonly o: VolumeSamplerOptions) {
    this.margin = labelMargin(o.channels);
    this.starts = zStarts(sections, o.output[0], this.margin[0]);
    this.pad = Math.max(o.misalign?.shift ?? 0, Math.ceil(o.elastic?.alpha ?? 0));
    const { shape } = volume;
    const room = [1, 2].find((a) => shape[a]! < o.output[a]! + 2 * (this.margin[a]! + this.pad));
    if (this.starts.length === 0 || room !== undefined) {
      throw new EmsegError('invalid-option', room !== undefined ? '--tile' : '--val', `a training box of ${o.output.join(' x ')} outputs `
        + `and ${this.margin.join(', ')} voxels of label context fits no run of consecutive training sections of the ${shape.join(' x ')} volume`);
    }
    if (o.isotropic && !(o.output[0] === o.output[1] && o.output[1] === o.output[2] && o.offset[0] === o.offset[1] && o.offset[1] === o.offset[2])) {
      throw new EmsegError('internal', 'VolumeSampler', 'axis permutations need a cubic box');
    }
  }

  /** Fills a batch of `count` samples, consuming `rng` only (so a resumed run draws the same samples). */
  next(count: number, rng: Rng): VolumeBatch {
    const { input, output, channels } = this.o;
    const inN = volumeOf(input);
    const outN = volumeOf(output) * channels.length;
    const batch = { input: new Float32Array(count * inN), targets: new Float32Array(count * outN), weights: new Float32Array(count * outN) };
    for (let b = 0; b < count; b++) {
      this.sample(rng, batch.input.subarray(b * inN, (b + 1) * inN), batch.targets.subarray(b * outN, (b + 1) * outN),
        batch.weights.subarray(b * outN, (b + 1) * outN));
    }
    return batch;
  }

  /** One sample into the batch's slices: its image, targets and weights. */
  private sample(rng: Rng, imageOut: Float32Array, targetsOut: Float32Array, weightsOut: Float32Array): void {
    const { shape } = this.volume;
    const { output, offset, input } = this.o;
    const m = this.margin;
    const pad = this.pad;
    const start: Vec3 = [this.starts[rng.int(this.starts.length)]!, m[1] + pad + rng.int(shape[1] - output[1] - 2 * (m[1] + pad) + 1),
      m[2] + pad + rng.int(shape[2] - output[2] - 2 * (m[2] + pad) + 1)];
    const symmetry = this.symmetry(rng);
    const cutAt = this.misalignment(rng, start);
    const warp = this.o.elastic ? elasticField(this.o.elastic, Math.max(input[1], input[2], output[1] + 2 * m[1], output[2] + 2 * m[2]) + 2 * pad, rng) : null;
    const imageBox = around(start, offset, input, pad);
    const clamp = clampBox(imageBox, shape);
    const image = transformBox(misaligned(warped(mirrorFill(cut(this.volume.images, shape, clamp), shape, imageBox), sizeOf(imageBox), warp, false),
      sizeOf(imageBox), cutAt, imageBox.start[0], pad), input, symmetry).data;
    this.augmentImage(image, rng);
    imageOut.set(image);
    const labelSize: Vec3 = [output[0] + 2 * m[0], output[1] + 2 * m[1], output[2] + 2 * m[2]];
    const labelBox = around(start, m, labelSize, pad);
    const ids = transformBox(misaligned(warped(cut(this.volume.ids, shape, labelBox), sizeOf(labelBox), warp, true), sizeOf(labelBox), cutAt,
      labelBox.start[0], pad), labelSize, symmetry);
    const t = labelTargets(ids.data, ids.size, this.o.channels, this.o.ignoreId === undefined ? {} : { ignoreLabel: this.o.ignoreId });
    const inner = cropTargets(t, m, output);
    targetsOut.set(inner.targets);
    weightsOut.set(this.o.balance === 'weights' ? classBalanceWeights(inner) : inner.mask);
  }

  /** The first misaligned section (volume z) and its shift, or null: drawn only when misalignment is on. */
  private misalignment(rng: Rng, start: Vec3): Cut | null {
    const mis = this.o.misalign;
    if (!mis || rng.next() >= mis.probability) return null;
    const span = this.o.output[0] + 2 * this.margin[0];
    const shift = () => rng.int(2 * mis.shift + 1) - mis.shift;
    return { z: start[0] - this.margin[0] + 1 + rng.int(Math.max(1, span - 1)), dy: shift(), dx: shift() };
  }

  private symmetry(rng: Rng): Symmetry {
    const perms = this.o.isotropic ? PERMS_ISO : PERMS_ANISO;
    return { perm: perms[rng.int(perms.length)]!, flip: [rng.int(2) === 1, rng.int(2) === 1, rng.int(2) === 1] };
  }

  private augmentImage(image: Float32Array, rng: Rng): void {
    if (this.o.jitter) intensityJitter(image, this.o.jitter, rng);
    if (this.o.missingSection > 0 && rng.next() < this.o.missingSection) {
      const plane = this.o.input[1] * this.o.input[2];
      const z = rng.int(this.o.input[0]);
      image.fill(0, z * plane, (z + 1) * plane);
    }
  }
}

/** Sections from `z` (volume coordinates) on are shifted by (dy, dx). */
interface Cut { z: number; dy: number; dx: number }

/** The box of `size` voxels whose output part starts at `start` (`before` voxels ahead of it), widened in-plane by `pad`. */
function around(start: Vec3, before: Vec3, size: Vec3, pad: number): Box {
  const lo: Vec3 = [start[0] - before[0], start[1] - before[1] - pad, start[2] - before[2] - pad];
  return { start: lo, end: [lo[0] + size[0], lo[1] + size[1] + 2 * pad, lo[2] + size[2] + 2 * pad] };
}

/**
 * A box read `pad` voxels wider in-plane, cut back to its size: sections before the cut from the centre, the others
 * shifted by the cut's (dy, dx) (no cut: all from the centre).
 */
function misaligned<T extends Float32Array | Uint32Array>(data: T, size: Vec3, c: Cut | null, z0: number, pad: number): T {
  if (pad === 0) return data;
  const [Z, Y, X] = [size[0], size[1] - 2 * pad, size[2] - 2 * pad];
  const out = new (data.constructor as new (n: number) => T)(Z * Y * X);
  for (let z = 0; z < Z; z++) {
    const [dy, dx] = c && z0 + z >= c.z ? [c.dy, c.dx] : [0, 0];
    for (let y = 0; y < Y; y++) {
      const from = (z * size[1] + y + pad + dy) * size[2] + pad + dx;
      out.set(data.subarray(from, from + X), (z * Y + y) * X);
    }
  }
  return out;
}

/** An in-plane displacement field over n x n voxels (centred on the sample), in voxels. */
interface Field { n: number; dy: Float32Array; dx: Float32Array }

/** A smooth random field whose largest displacement is alpha (augment.ts elastic, the 2-d trainer's). */
function elasticField(o: ElasticOptions, n: number, rng: Rng): Field {
  const dx = smoothField(n, o.sigma, rng);
  const dy = smoothField(n, o.sigma, rng);
  let peak = 1e-12;
  for (let i = 0; i < n * n; i++) peak = Math.max(peak, Math.abs(dx[i]!), Math.abs(dy[i]!));
  const scale = o.alpha / peak;
  for (let i = 0; i < n * n; i++) {
    dx[i]! *= scale;
    dy[i]! *= scale;
  }
  return { n, dy, dx };
}

/**
 * Every section of a box moved by one in-plane field centred on it (the field may be larger than the box: both the
 * image and the label box are centred on the sample): bilinear for images, nearest for ids, clamped at the box's
 * edge (boxes are read `pad` wider than they are kept, so no kept voxel draws from a clamped one).
 */
function warped<T extends Float32Array | Uint32Array>(data: T, size: Vec3, f: Field | null, nearest: boolean): T {
  if (!f) return data;
  const [Z, Y, X] = size;
  const [cy, cx] = [(f.n - Y) / 2, (f.n - X) / 2];
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const clampY = (v: number) => Math.min(Y - 1, Math.max(0, v));
  const clampX = (v: number) => Math.min(X - 1, Math.max(0, v));
  for (let y = 0; y < Y; y++) {
    for (let x = 0; x < X; x++) {
      const k = (y + cy) * f.n + x + cx;
      const sy = clampY(y + f.dy[k]!);
      const sx = clampX(x + f.dx[k]!);
      const [y0, x0] = [Math.floor(sy), Math.floor(sx)];
      const [y1, x1] = [Math.min(Y - 1, y0 + 1), Math.min(X - 1, x0 + 1)];
      const [fy, fx] = [sy - y0, sx - x0];
      const near = Math.round(sy) * X + Math.round(sx);
      for (let z = 0, o = 0; z < Z; z++, o += Y * X) {
        out[o + y * X + x] = nearest ? data[o + near]!
          : (1 - fy) * ((1 - fx) * data[o + y0 * X + x0]! + fx * data[o + y0 * X + x1]!) + fy * ((1 - fx) * data[o + y1 * X + x0]! + fx * data[o + y1 * X + x1]!);
      }
    }
  }
  return out;
}


/** The targets of the output box: `margin` voxels in from each face of the label box. */
function cropTargets(t: Targets, margin: Vec3, output: Vec3): Targets {
  const n = volumeOf(output);
  const targets = new Uint8Array(t.channels * n);
  const mask = new Uint8Array(t.channels * n);
  const [, sy, sx] = t.shape;
  let o = 0;
  for (let c = 0; c < t.channels; c++) {
    for (let z = 0; z < output[0]; z++) {
      for (let y = 0; y < output[1]; y++) {
        const from = c * volumeOf(t.shape) + ((z + margin[0]) * sy + y + margin[1]) * sx + margin[2];
        targets.set(t.targets.subarray(from, from + output[2]), o);
        mask.set(t.mask.subarray(from, from + output[2]), o);
        o += output[2];
      }
    }
  }
  return { shape: output, channels: t.channels, targets, mask };
}
