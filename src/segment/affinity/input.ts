/**
 * Affinities as the 3-D segmentations read them: channel-major (c, z, y, x) float32 in [0, 1], channel c the
 * probability that a voxel v and its neighbour v + offsets[c] belong to one neuron (image/affinities.ts holds the
 * conventions). The checks here refuse what no method can work on, naming the field, before any work starts.
 */
import { EmsegError } from '../../errors.js';
import type { Offset3, Shape3 } from '../../image/affinities.js';

/** Affinities of a volume: `data` holds offsets.length channels of shape[0] * shape[1] * shape[2] voxels each. */
export interface AffinityVolume {
  data: Float32Array;
  shape: Shape3;
  offsets: readonly Offset3[];
}

/** Ids of 2^31 voxels or edges and more do not fit the Int32 bookkeeping of the whole-volume methods. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** The channel of each nearest-neighbour direction (z, y, x), -1 where the volume has no extent to need it. */
export type NearestChannels = readonly [number, number, number];

export function voxelsOf(shape: Shape3): number {
  return shape[0] * shape[1] * shape[2];
}

function checkShape(shape: Shape3, field: string): void {
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((s) => Number.isSafeInteger(s) && s > 0)) {
    throw new EmsegError('invalid-option', field, `${JSON.stringify(shape)} is not a volume size [z, y, x] of whole numbers above 0`);
  }
  if (voxelsOf(shape) > MAX_ELEMENTS) {
    throw new EmsegError('too-large', field, `${shape.join(' x ')} voxels is more than one volume segmented whole can hold (${MAX_ELEMENTS})`);
  }
}

function checkOffsets(offsets: readonly Offset3[], shape: Shape3): void {
  if (!Array.isArray(offsets) || offsets.length === 0) throw new EmsegError('invalid-option', 'offsets', 'no offsets: the affinity channels need one offset each');
  offsets.forEach((o, i) => {
    if (!Array.isArray(o) || o.length !== 3 || !o.every(Number.isSafeInteger) || o.every((d) => d === 0)) {
      throw new EmsegError('invalid-option', `offsets[${i}]`, `${JSON.stringify(o)} is not an offset [dz, dy, dx] of whole numbers, not all 0`);
    }
    if (o.some((d, a) => Math.abs(d) >= shape[a]! && shape[a]! > 1)) {
      throw new EmsegError('invalid-option', `offsets[${i}]`, `[${o.join(', ')}] reaches beyond the volume (${shape.join(' x ')})`);
    }
  });
}

/** Values must be probabilities: NaN or infinity is 'non-finite', a value outside [0, 1] 'invalid-data'. */
function checkValues(data: Float32Array, field: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v >= 0 && v <= 1) continue;
    const code = Number.isFinite(v) ? 'invalid-data' : 'non-finite';
    throw new EmsegError(code, field, `holds ${v} at element ${i}; affinities are probabilities in [0, 1]`);
  }
}

/**
 * Refuses affinities that cannot be segmented: a bad shape or offset ('invalid-option'), a channel count other
 * than the offsets' ('mismatch'), NaN or infinity ('non-finite'), values outside [0, 1] ('invalid-data').
 */
export function checkAffinities(v: AffinityVolume, field = 'affinities'): void {
  checkShape(v.shape, 'shape');
  checkOffsets(v.offsets, v.shape);
  if (!(v.data instanceof Float32Array)) throw new EmsegError('invalid-option', field, 'affinities must be a Float32Array (c, z, y, x)');
  const n = voxelsOf(v.shape);
  if (v.data.length !== n * v.offsets.length) {
    throw new EmsegError('mismatch', field, `${v.data.length} values are not ${v.offsets.length} channel(s) (one per offset) of ${v.shape.join(' x ')} voxels`);
  }
  if (v.data.length > MAX_ELEMENTS) throw new EmsegError('too-large', field, `${v.data.length} affinities is more than one volume segmented whole can hold`);
  checkValues(v.data, field);
}

/** Whether an offset is a nearest-neighbour one: one axis of distance 1, the others 0. */
export function isNearest(o: Offset3): boolean {
  return Math.abs(o[0]) + Math.abs(o[1]) + Math.abs(o[2]) === 1;
}

/** Whether every offset lies in a section (dz = 0): a planar network's affinities, each section segmented alone. */
export function isPlanar(offsets: readonly Offset3[]): boolean {
  return offsets.every((o) => o[0] === 0);
}

/**
 * The nearest-neighbour channel of each axis (either sign; the first one listed). y and x must be there, z too
 * unless the volume is one section deep or every offset is in-plane (then no voxel is joined across sections);
 * a missing one is refused naming `offsets`.
 */
export function nearestChannels(offsets: readonly Offset3[], shape: Shape3): NearestChannels {
  const found = [0, 1, 2].map((axis) => offsets.findIndex((o) => isNearest(o) && o[axis] !== 0));
  const needed = (axis: number) => shape[axis]! > 1 && !(axis === 0 && isPlanar(offsets));
  const missing = found.findIndex((c, axis) => c < 0 && needed(axis));
  if (missing >= 0) {
    const axis = 'zyx'[missing];
    throw new EmsegError('invalid-option', 'offsets', `has no nearest-neighbour channel along ${axis} (an offset of 1 along ${axis} only, e.g. `
      + `${JSON.stringify([0, 1, 2].map((a) => (a === missing ? -1 : 0)))}); the segmentation needs the three nearest-neighbour affinities`);
  }
  return found as unknown as NearestChannels;
}

/** The voxel range [from, to) along an axis of `size` whose neighbour at `d` lies inside. */
export function inside(size: number, d: number): [number, number] {
  return [Math.max(0, -d), Math.min(size, size - d)];
}

/**
 * Calls `visit(v, u, a)` for every voxel v whose neighbour u = v + offset lies inside, with a the affinity of
 * channel c at v; in raster order of v, so every method visits edges in one fixed order.
 */
export function forEachEdge(v: AffinityVolume, c: number, visit: (v: number, u: number, a: number) => void): void {
  const [Z, Y, X] = v.shape;
  const o = v.offsets[c]!;
  const [z0, z1] = inside(Z, o[0]);
  const [y0, y1] = inside(Y, o[1]);
  const [x0, x1] = inside(X, o[2]);
  const delta = (o[0] * Y + o[1]) * X + o[2];
  const base = c * Z * Y * X;
  for (let z = z0; z < z1; z++) {
    for (let y = y0; y < y1; y++) {
      const row = (z * Y + y) * X;
      for (let i = row + x0; i < row + x1; i++) visit(i, i + delta, v.data[base + i]!);
    }
  }
}
