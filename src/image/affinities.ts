/**
 * Training targets made on the fly from neuron ids (instance labels, CREMI / SNEMI3D style) for one patch: affinities
 * for any offsets, a boundary channel, a mask per channel saying where the target is known, and class-balance
 * weights. Pure array code over one patch (z, y, x, row-major), so memory is bounded by the patch; `train/` makes
 * targets with it, and `metrics/` and `segment/` can compare affinities with it (docs/MODELS.md, "Targets from
 * neuron ids").
 *
 * Conventions (those of Lee et al. 2017 and of the mutex watershed, Wolf et al. 2018; gunpowder's seg_to_affgraph):
 * - An offset is (dz, dy, dx); channel c at voxel v compares v with v + offsets[c]. Negative offsets point towards
 *   the previous voxel: [-1, 0, 0] is the voxel in the section before, [0, -9, 0] the voxel 9 rows up.
 * - Affinity 1: v and v + offset carry the same id and that id is not the background (0). Two background voxels,
 *   background and an id, or two different ids: 0. Only the two ends count: a long-range affinity is 1 across a
 *   third object between them.
 * - Mask 0 (the target is unknown, the loss ignores it): v + offset falls outside the patch, or either voxel carries
 *   the ignore label (option, default none: every id, 0 included, is a label), or either voxel lies where the
 *   `labelled` mask is 0 (sparse labels: unlabelled sections or regions teach nothing).
 * - Boundary (one channel): a background voxel is boundary; a voxel of an id is boundary when a nearest neighbour
 *   (y and x only, or z too) carries another id that is not the background. A voxel of an id next to background is
 *   not: the background already is the boundary there, so that neuron ids made from a binary membrane mask (membrane
 *   = background, cells = ids) give back that mask exactly, emseg's 2D membrane target. Where neurons touch, the
 *   voxels on both sides of the contact are boundary. The mask is 0 for unknown voxels and for a voxel of an id
 *   whose boundary no known neighbour decides while some neighbour is unknown (outside the patch, ignored,
 *   unlabelled): read the label patch one voxel larger than the output to have every output voxel's target.
 */
import { EmsegError } from '../errors.js';
import { MEMBRANE_POLARITY, multiChannelRecord, type ChannelMeaning, type MultiChannelRecord } from './map-meaning.js';

/** A voxel offset (dz, dy, dx). */
export type Offset3 = readonly [number, number, number];
/** A patch's size (z, y, x); a 2D section is [1, height, width]. */
export type Shape3 = readonly [number, number, number];
/** Neuron ids of a patch, row-major (z, y, x). */
export type NeuronIds = Uint8Array | Uint16Array | Uint32Array | Int32Array | BigUint64Array | readonly number[];

/**
 * A 2D training mask's value (1 = membrane, 0 = interior) for a pixel that gives no loss: an ignored label, an
 * unlabelled region or section (sparse labels). io/training-labels.ts writes it, train/sampler.ts skips it.
 */
export const UNKNOWN_CLASS = 255;

/** The background id (by convention; a target, not ignored, unless it is the ignore label). */
export const BACKGROUND_ID = 0;
/** The nearest-neighbour affinities of Lee et al. 2017: to the previous section, row and column. */
export const NEAREST_OFFSETS: readonly Offset3[] = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]];

/** Which neighbours decide a boundary: y and x only (sections labelled one by one, anisotropic data) or z too. */
export type BoundaryNeighbours = 'in-plane' | '3d';
export const BOUNDARY_NEIGHBOURS = ['in-plane', '3d'] as const satisfies readonly BoundaryNeighbours[];
/** A boundary channel among the targets. */
export interface BoundaryChannel { boundary: BoundaryNeighbours }
/** One target channel: the affinity at an offset, or the boundary. */
export type TargetChannel = Offset3 | BoundaryChannel;

export interface TargetOptions {
  /** Voxels of this id are unknown (mask 0 for every target that reads them); default none. */
  ignoreLabel?: number | bigint;
  /** Per voxel, 0 / false = unlabelled (unknown), anything else = labelled; default: every voxel is labelled. */
  labelled?: ArrayLike<number | boolean>;
}

/** C channels of targets and their masks, channel-major (c, z, y, x); both are 0 or 1. */
export interface Targets {
  shape: Shape3;
  channels: number;
  targets: Uint8Array;
  mask: Uint8Array;
}

/** Local codes of a patch's voxels: UNKNOWN (ignored or unlabelled), BACKGROUND, or 1.. per distinct id. */
const UNKNOWN = -1;
const BACKGROUND = 0;
const IN_PLANE: readonly Offset3[] = [[0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]];
const ACROSS: readonly Offset3[] = [[-1, 0, 0], [1, 0, 0]];
const NEIGHBOURS: Record<BoundaryNeighbours, readonly Offset3[]> = { 'in-plane': IN_PLANE, '3d': [...ACROSS, ...IN_PLANE] };

/** The largest id each array kind holds: a larger ignore label could never match. */
function maxIdOf(labels: NeuronIds): bigint {
  if (labels instanceof BigUint64Array) return (1n << 64n) - 1n;
  if (labels instanceof Uint8Array) return 0xffn;
  if (labels instanceof Uint16Array) return 0xffffn;
  if (labels instanceof Uint32Array) return 0xffff_ffffn;
  if (labels instanceof Int32Array) return 0x7fff_ffffn;
  return BigInt(Number.MAX_SAFE_INTEGER);
}

/** The ignore label as the array's elements are (bigint for BigUint64Array), or undefined; refused if impossible. */
function ignoreOf(labels: NeuronIds, ignore: number | bigint | undefined): number | bigint | undefined {
  if (ignore === undefined) return undefined;
  const whole = typeof ignore === 'bigint' || Number.isSafeInteger(ignore);
  if (!whole || ignore < 0 || BigInt(ignore) > maxIdOf(labels)) {
    throw new EmsegError('invalid-option', 'ignoreLabel', `${String(ignore)} is not an id the labels can hold `
      + `(a whole number from 0 to ${maxIdOf(labels)} for ${labels.constructor.name})`);
  }
  return labels instanceof BigUint64Array ? BigInt(ignore) : Number(ignore);
}

function checkShape(shape: Shape3, labels: NeuronIds, labelled: ArrayLike<unknown> | undefined): void {
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((s) => Number.isSafeInteger(s) && s > 0)) {
    throw new EmsegError('invalid-option', 'shape', `${JSON.stringify(shape)} is not a patch size [z, y, x] of whole numbers above 0`);
  }
  const n = shape[0] * shape[1] * shape[2];
  if (labels.length !== n) {
    throw new EmsegError('mismatch', 'labels', `${labels.length} ids for a patch of ${shape.join(' x ')} = ${n} voxels`);
  }
  if (labelled !== undefined && labelled.length !== n) {
    throw new EmsegError('mismatch', 'labelled', `${labelled.length} values for a patch of ${shape.join(' x ')} = ${n} voxels`);
  }
}

/** The code of one id not seen before (ids must be whole numbers from 0: a float or negative "id" is refused). */
function newCode(v: number | bigint, ids: Map<number | bigint, number>): number {
  if (typeof v === 'number' && !(Number.isSafeInteger(v) && v >= 0)) {
    throw new EmsegError('invalid-data', 'labels', `holds ${v}, which is no neuron id (ids are whole numbers from 0)`);
  }
  if (v === 0 || v === 0n) return BACKGROUND;
  let code = ids.get(v);
  if (code === undefined) ids.set(v, code = ids.size + 1);
  return code;
}

/** Per voxel its local code; one pass, with the last id remembered (neighbouring voxels mostly share one). */
function encode(labels: NeuronIds, ignore: number | bigint | undefined, labelled: ArrayLike<number | boolean> | undefined): Int32Array {
  const codes = new Int32Array(labels.length);
  const ids = new Map<number | bigint, number>();
  let last: number | bigint | undefined;
  let lastCode = UNKNOWN;
  for (let i = 0; i < labels.length; i++) {
    if (labelled !== undefined && !labelled[i]) { codes[i] = UNKNOWN; continue; }
    const v = labels[i]!;
    if (v !== last) lastCode = v === ignore ? UNKNOWN : newCode(v, ids);
    last = v;
    codes[i] = lastCode;
  }
  return codes;
}

function isBoundary(channel: TargetChannel): channel is BoundaryChannel {
  return !Array.isArray(channel);
}

/** Refuses a channel that cannot work, naming `${field}[i]`. */
function checkChannel(channel: TargetChannel, shape: Shape3, field: string): void {
  if (isBoundary(channel)) {
    if (typeof channel !== 'object' || channel === null || !(BOUNDARY_NEIGHBOURS as readonly unknown[]).includes(channel.boundary)) {
      throw new EmsegError('invalid-option', field, `${JSON.stringify(channel)} is neither an offset [dz, dy, dx] nor a boundary `
        + `channel {"boundary": ${BOUNDARY_NEIGHBOURS.map((b) => `"${b}"`).join(' | ')}}`);
    }
    return;
  }
  const o = channel as readonly number[];
  if (o.length !== 3 || !o.every(Number.isSafeInteger) || o.every((d) => d === 0)) {
    throw new EmsegError('invalid-option', field, `${JSON.stringify(o)} is not an offset [dz, dy, dx] of whole numbers, not all 0`);
  }
  const axis = o.findIndex((d, a) => Math.abs(d) >= shape[a]!);
  if (axis >= 0) {
    throw new EmsegError('invalid-option', field, `offset [${o.join(', ')}] is longer than the patch (${shape.join(' x ')}) along `
      + `${'zyx'[axis]}: no voxel of it would have a target`);
  }
}

/** The range [from, to) of a coordinate along an axis of `size` whose neighbour at `d` lies inside too. */
function inside(size: number, d: number): [number, number] {
  return [Math.max(0, -d), Math.min(size, size - d)];
}

/** One affinity channel into `target` and `mask` (zeroed: voxels whose neighbour is outside stay unknown). */
function affinityChannel(codes: Int32Array, shape: Shape3, offset: Offset3, target: Uint8Array, mask: Uint8Array): void {
  const [, Y, X] = shape;
  const [z0, z1] = inside(shape[0], offset[0]);
  const [y0, y1] = inside(Y, offset[1]);
  const [x0, x1] = inside(X, offset[2]);
  const delta = (offset[0] * Y + offset[1]) * X + offset[2];
  for (let z = z0; z < z1; z++) {
    for (let y = y0; y < y1; y++) {
      const row = (z * Y + y) * X;
      for (let i = row + x0; i < row + x1; i++) {
        const a = codes[i]!;
        const b = codes[i + delta]!;
        if (a === UNKNOWN || b === UNKNOWN) continue;
        mask[i] = 1;
        target[i] = a === b && a !== BACKGROUND ? 1 : 0;
      }
    }
  }
}

/**
 * One neighbour direction of the boundary channel, for the voxels of an id: sets target where the neighbour carries
 * another id, and `unsure` where it is unknown (outside the patch, ignored or unlabelled).
 */
function boundaryDirection(codes: Int32Array, shape: Shape3, offset: Offset3, target: Uint8Array, unsure: Uint8Array): void {
  const [Z, Y, X] = shape;
  const [z0, z1] = inside(Z, offset[0]);
  const [y0, y1] = inside(Y, offset[1]);
  const [x0, x1] = inside(X, offset[2]);
  const delta = (offset[0] * Y + offset[1]) * X + offset[2];
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      const rowInside = z >= z0 && z < z1 && y >= y0 && y < y1;
      const row = (z * Y + y) * X;
      for (let x = 0; x < X; x++) {
        const i = row + x;
        const a = codes[i]!;
        if (a <= BACKGROUND) continue;
        const b = rowInside && x >= x0 && x < x1 ? codes[i + delta]! : UNKNOWN;
        if (b === UNKNOWN) unsure[i] = 1;
        else if (b !== a && b !== BACKGROUND) target[i] = 1;
      }
    }
  }
}

/** The boundary channel into `target` and `mask` (zeroed). */
function boundaryChannel(codes: Int32Array, shape: Shape3, neighbours: BoundaryNeighbours, target: Uint8Array, mask: Uint8Array): void {
  const unsure = new Uint8Array(codes.length);
  for (const offset of NEIGHBOURS[neighbours]) boundaryDirection(codes, shape, offset, target, unsure);
  for (let i = 0; i < codes.length; i++) {
    const a = codes[i]!;
    if (a === UNKNOWN) continue;
    if (a === BACKGROUND) target[i] = 1;
    mask[i] = target[i] || !unsure[i] ? 1 : 0;
  }
}

/**
 * The targets of a patch of neuron ids (`labels`, row-major z, y, x, of `shape`), one channel per entry of
 * `channels` in that order: an offset's affinities or the boundary (conventions at the top of this file). The ids
 * are read once; each channel is one pass over the patch. Refused: a shape that does not fit the labels or the
 * `labelled` mask ('mismatch'), an offset that is not three whole numbers, is all 0 or is as long as the patch
 * along an axis, an ignore label the labels cannot hold ('invalid-option', naming the field), a float or negative
 * id ('invalid-data').
 */
export function labelTargets(labels: NeuronIds, shape: Shape3, channels: readonly TargetChannel[], options: TargetOptions = {}, field = 'channels'): Targets {
  checkShape(shape, labels, options.labelled);
  if (!Array.isArray(channels) || channels.length === 0) throw new EmsegError('invalid-option', field, 'no target channel asked for');
  channels.forEach((c, i) => checkChannel(c, shape, `${field}[${i}]`));
  const ignore = ignoreOf(labels, options.ignoreLabel);
  const codes = encode(labels, ignore, options.labelled);
  const n = codes.length;
  const targets = new Uint8Array(channels.length * n);
  const mask = new Uint8Array(channels.length * n);
  channels.forEach((channel, c) => {
    const [t, m] = [targets.subarray(c * n, (c + 1) * n), mask.subarray(c * n, (c + 1) * n)];
    if (isBoundary(channel)) boundaryChannel(codes, shape, channel.boundary, t, m);
    else affinityChannel(codes, shape, channel, t, m);
  });
  return { shape, channels: channels.length, targets, mask };
}

/** Affinities for `offsets` (channel c = offsets[c]) and their masks; refusals name `offsets[i]`. */
export function affinityTargets(labels: NeuronIds, shape: Shape3, offsets: readonly Offset3[], options: TargetOptions = {}): Targets {
  return labelTargets(labels, shape, offsets, options, 'offsets');
}

/** The boundary channel alone, its neighbours y and x ('in-plane') or z too ('3d'). */
export function boundaryTargets(labels: NeuronIds, shape: Shape3, neighbours: BoundaryNeighbours, options: TargetOptions = {}): Targets {
  if (!(BOUNDARY_NEIGHBOURS as readonly unknown[]).includes(neighbours)) {
    throw new EmsegError('invalid-option', 'neighbours', `${JSON.stringify(neighbours)} is not one of ${BOUNDARY_NEIGHBOURS.join(', ')}`);
  }
  return labelTargets(labels, shape, [{ boundary: neighbours }], options, 'neighbours');
}

/** Loss weights of one channel's classes. */
export interface ClassWeights { positive: number; negative: number }

/**
 * Class-balance weights of one channel, so that its positives (target 1) and negatives (0) weigh equally within the
 * mask: with N known voxels of which P are positive, w+ = N / (2 P) and w- = N / (2 (N - P)), each class then
 * weighing N / 2 and the channel N, a mean of 1 per known voxel (the 2D trainer's 0.5 / fraction, src/train/sampler.ts).
 * A class absent from the channel weighs 0 and the other 1 per voxel (still N in all); no known voxel: both 0.
 */
export function channelClassWeights(t: Targets, channel: number): ClassWeights {
  const n = t.shape[0] * t.shape[1] * t.shape[2];
  let known = 0;
  let positive = 0;
  for (let i = channel * n; i < (channel + 1) * n; i++) {
    known += t.mask[i]!;
    positive += t.mask[i]! & t.targets[i]!;
  }
  const negative = known - positive;
  if (positive === 0 || negative === 0) return { positive: positive > 0 ? 1 : 0, negative: negative > 0 ? 1 : 0 };
  return { positive: known / (2 * positive), negative: known / (2 * negative) };
}

/** Per voxel and channel (the layout of `t.targets`) its class-balance weight (channelClassWeights); 0 where the mask is. */
export function classBalanceWeights(t: Targets): Float32Array {
  const n = t.shape[0] * t.shape[1] * t.shape[2];
  const weights = new Float32Array(t.channels * n);
  for (let c = 0; c < t.channels; c++) {
    const w = channelClassWeights(t, c);
    for (let i = c * n; i < (c + 1) * n; i++) {
      if (t.mask[i]) weights[i] = t.targets[i] ? w.positive : w.negative;
    }
  }
  return weights;
}

/** What each target channel means, in the map vocabulary: an affinity at its offset, or a P(boundary) membrane map. */
export function targetMeanings(channels: readonly TargetChannel[]): ChannelMeaning[] {
  return channels.map((c): ChannelMeaning => isBoundary(c)
    ? { kind: 'membrane', polarity: MEMBRANE_POLARITY, name: `boundary-${c.boundary}` }
    : { kind: 'affinity', offset: [c[0], c[1], c[2]] });
}

/** The record a map predicted for these target channels carries under "emseg" (map-meaning.ts, multiChannelRecord). */
export function targetsRecord(channels: readonly TargetChannel[]): MultiChannelRecord {
  return multiChannelRecord(targetMeanings(channels));
}
