/**
 * 3-d networks over volumes: outputs for any region of a volume, cut into network tiles ("blocks" of the network,
 * not of the engine) whose inputs are read mirrored at the volume's faces (the one border rule, image/mirror.ts).
 *
 * A 3-d network with valid convolutions maps an input of `input` voxels to `output` voxels offset by `offset` per
 * axis. Tiles keep `step` outputs per axis (a multiple of the network's stride along it, at most `output`) and are
 * placed at multiples of `step` from the region's start; when regions start at multiples of the stride, every tile
 * input starts at the same phase of the pooling grid, so the outputs do not depend on the region or tile size.
 */
import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import { reflect } from '../image/mirror.js';
import { Network } from '../nn/network.js';
import { planModel, smallestInput3d, type Plan } from '../nn/plan.js';
import { SpecError, type ModelSpec } from '../nn/spec.js';
import type { Profile } from '../util/profile.js';
import { PREDICT_STEPS, type ModelWeights } from './predict.js';
import { identityView, planeViews, ttaMargin, type TileView } from './volume-tta.js';
import { transformBox } from '../image/box-symmetry.js';

/** A voxel position or size (z, y, x). */
export type Vec3 = readonly [number, number, number];
/** A box of voxels [start, end) per axis; may reach outside the volume (mirrored there). */
export interface Box { start: Vec3; end: Vec3 }

/** Output voxels per axis a tile keeps when none is asked for: a few network strides, small enough for 2 GB. */
export const DEFAULT_VOLUME_TILE = 64;

export interface VolumeGeometry {
  plan: Plan;
  /** Network input and output voxels per axis. */
  input: Vec3;
  output: Vec3;
  /** Input voxels before the first output voxel, per axis. */
  offset: Vec3;
  /** Outputs kept per tile per axis: multiples of `stride`. */
  step: Vec3;
  /** The network's total down-sampling per axis; regions must start at multiples of it. */
  stride: Vec3;
}

const AXES = [0, 1, 2] as const;
const map3 = (f: (a: 0 | 1 | 2) => number): Vec3 => [f(0), f(1), f(2)];
export const volumeOf = (v: Vec3): number => v[0] * v[1] * v[2];
const untimed: Pick<Profile, 'time'> = { time: (_name, fn) => fn() };

/** The product of the down-sampling strides (pooling, strided convolution) along each axis (z, y, x). */
export function volumeStride(plan: Plan): Vec3 {
  return plan.nodes.reduce<Vec3>((s, node) => {
    const stride = (node.type === 'pool3d' || node.type === 'conv3d') ? (node.params as { stride: Vec3 }).stride : undefined;
    return stride ? map3((a) => s[a] * stride[a]) : s;
  }, [1, 1, 1]);
}

function planAt(spec: ModelSpec, input: Vec3): Plan | undefined {
  try {
    return planModel(spec, input[1], input[2], { depth: input[0] });
  } catch (err) {
    if (err instanceof SpecError) return undefined;
    throw err;
  }
}

const outputOf = (p: Plan): Vec3 => [p.z!.size, p.output[1], p.output[2]];

/**
 * The tile geometry of a 3-d network keeping about `tile` outputs per axis (rounded up to the stride, at least
 * the network's smallest output). Refused for a network that is not 3-d or whose outputs do not grow by one stride
 * per stride of input (padded networks: not in the zoo).
 */
export function volumeGeometry(spec: ModelSpec, tile: Vec3 = [DEFAULT_VOLUME_TILE, DEFAULT_VOLUME_TILE, DEFAULT_VOLUME_TILE]): VolumeGeometry {
  if (spec.input.dims !== 3) throw new EmsegError('invalid-spec', spec.name, 'is a 2-d network: volumes are predicted by 3-d networks');
  const smallest = smallestInput3d(spec).plan;
  const input0: Vec3 = [smallest.inputDepth!, smallest.input[1], smallest.input[2]];
  const output0 = outputOf(smallest);
  const offset = map3((a) => (input0[a] - output0[a]) / 2);
  if (!offset.every(Number.isInteger)) {
    throw new EmsegError('invalid-spec', spec.name, `loses ${input0.map((v, a) => v - output0[a]!).join(', ')} voxels per axis: an odd loss has no centre`);
  }
  const stride = volumeStride(smallest);
  const output = map3((a) => output0[a] + Math.max(0, Math.ceil((tile[a] - output0[a]) / stride[a])) * stride[a]);
  const input = map3((a) => output[a] + 2 * offset[a]);
  const plan = planAt(spec, input);
  if (!plan || outputOf(plan).some((v, a) => v !== output[a])) {
    throw new EmsegError('invalid-spec', spec.name, `gives no exact output at input ${input.join(' x ')}: only valid-convolution 3-d networks tile volumes`);
  }
  const step = map3((a) => Math.floor(output[a] / stride[a]) * stride[a]);
  return { plan, input, output, offset, step, stride };
}

/** The input box a region's outputs need: tiles of `step` from its start, each reading `input` voxels. */
export function inputBox(g: VolumeGeometry, region: Box): Box {
  const start = map3((a) => region.start[a] - g.offset[a]);
  const tiles = map3((a) => Math.ceil((region.end[a] - region.start[a]) / g.step[a]));
  const end = map3((a) => region.start[a] + (tiles[a] - 1) * g.step[a] - g.offset[a] + g.input[a]);
  return { start, end };
}

/**
 * The part of a volume of `shape` inside `box`, mirrored where the box leaves the volume: `inside` holds the
 * clamped part of the box (read by the caller from any store), row-major z, y, x.
 */
export function mirrorFill(inside: Float32Array, shape: Vec3, box: Box): Float32Array {
  const clamp = clampBox(box, shape);
  const size = map3((a) => box.end[a] - box.start[a]);
  const inSize = map3((a) => clamp.end[a] - clamp.start[a]);
  if (inside.length !== volumeOf(inSize)) {
    throw new EmsegError('internal', 'mirrorFill', `${inside.length} voxels read for a region of ${inSize.join(' x ')}`);
  }
  const out = new Float32Array(volumeOf(size));
  // Each output index maps to the mirrored volume index, then to its place in the clamped read.
  const index = AXES.map((a) => Int32Array.from({ length: size[a] }, (_, i) => reflect(box.start[a] + i, shape[a]) - clamp.start[a]));
  let o = 0;
  for (let z = 0; z < size[0]; z++) {
    for (let y = 0; y < size[1]; y++) {
      const row = (index[0]![z]! * inSize[1] + index[1]![y]!) * inSize[2];
      for (let x = 0; x < size[2]; x++) out[o++] = inside[row + index[2]![x]!]!;
    }
  }
  return out;
}

/** The part of the volume a box's voxels, mirrored at the faces, come from (reflect never leaves the volume). */
export function clampBox(box: Box, shape: Vec3): Box {
  const reflected = (a: 0 | 1 | 2) => Array.from({ length: box.end[a] - box.start[a] }, (_, i) => reflect(box.start[a] + i, shape[a]));
  return { start: map3((a) => Math.min(...reflected(a))), end: map3((a) => Math.max(...reflected(a)) + 1) };
}

/** Whether a network sees one section at a time (a planar one): no context across sections, no pooling along z. */
export function seesOneSection(g: Pick<VolumeGeometry, 'offset' | 'stride'>): boolean {
  return g.offset[0] === 0 && g.stride[0] === 1;
}

/** Options of a volume prediction. */
export interface VolumePredictOptions {
  /** Also predict each tile through the 8 symmetries of the plane and average (infer/volume-tta.ts). */
  tta?: boolean;
}

/**
 * Multi-channel probabilities of 3-d networks (an ensemble is averaged) for regions of a volume, tile by tile; memory
 * is bounded by the tile and the region asked for.
 */
export class VolumePredictor {
  /** The tiles as regions see them: with test-time augmentation, wider than the outputs they keep by `keepFrom`. */
  readonly geometry: VolumeGeometry;
  readonly channels: number;
  private readonly nets: Network[];
  private readonly views: readonly TileView[];
  /** Per axis, the first output voxel of a tile that is kept. */
  private readonly keepFrom: Vec3;

  constructor(readonly models: readonly ModelWeights[], readonly backend: Backend, tile?: Vec3, options: VolumePredictOptions = {}) {
    if (models.length === 0) throw new EmsegError('invalid-option', 'models', 'a volume prediction needs at least one model');
    const first = models[0]!.spec;
    const base = volumeGeometry(first, tile);
    this.channels = base.plan.output[0];
    this.views = options.tta ? ttaViews(first, base, this.channels, models) : [identityView(this.channels)];
    this.keepFrom = options.tta ? ttaMargin(this.views, base.stride) : [0, 0, 0];
    const netTile = options.tta ? map3((a) => base.step[a] + 2 * this.keepFrom[a]) : tile;
    const wide = options.tta ? volumeGeometry(first, netTile) : base;
    this.geometry = { ...wide, offset: map3((a) => base.offset[a] + this.keepFrom[a]), step: base.step };
    this.nets = models.map((m) => {
      const g = volumeGeometry(m.spec, netTile);
      if (g.input.some((v, a) => v !== wide.input[a]) || g.plan.output[0] !== this.channels) {
        throw new EmsegError('mismatch', m.spec.name, `differs from ${first.name} in its field or channels; an ensemble's 3-d models must match`);
      }
      return new Network(g.plan, m.params, backend);
    });
  }

  /**
   * Channel-major (c, z, y, x) outputs of `region`, from `input`: the voxels of inputBox(region) (mirrored outside
   * the volume). `region.start` must be a multiple of the stride for block-size-independent results. `profile`
   * gets the time of each tile step (PREDICT_STEPS, as 2-d prediction: `emseg predict --profile`).
   */
  predictRegion(input: Float32Array, region: Box, profile: Pick<Profile, 'time'> = untimed): Float32Array {
    const g = this.geometry;
    const box = inputBox(g, region);
    const inSize = map3((a) => box.end[a] - box.start[a]);
    if (input.length !== volumeOf(inSize)) throw new EmsegError('internal', 'predictRegion', `${input.length} input voxels for ${inSize.join(' x ')}`);
    const size = map3((a) => region.end[a] - region.start[a]);
    const out = new Float32Array(this.channels * volumeOf(size));
    const tiles = map3((a) => Math.ceil(size[a] / g.step[a]));
    for (let tz = 0; tz < tiles[0]; tz++) {
      for (let ty = 0; ty < tiles[1]; ty++) {
        for (let tx = 0; tx < tiles[2]; tx++) this.addTile(input, inSize, [tz * g.step[0], ty * g.step[1], tx * g.step[2]], size, out, profile);
      }
    }
    const n = this.nets.length * this.views.length;
    if (n > 1) profile.time(PREDICT_STEPS.average, () => { for (let i = 0; i < out.length; i++) out[i]! /= n; });
    return out;
  }

  /** One tile at `at` (relative to the region): its input cut from `input`, each network run on each view, kept outputs added. */
  private addTile(input: Float32Array, inSize: Vec3, at: Vec3, size: Vec3, out: Float32Array, profile: Pick<Profile, 'time'>): void {
    const g = this.geometry;
    const window = profile.time(PREDICT_STEPS.read, () => copyBox(input, inSize, at, g.input));
    for (const view of this.views) {
      const x = profile.time(PREDICT_STEPS.read, () => this.backend.fromArray(view.symmetry ? transformBox(window, g.input, view.symmetry).data : window, [1, 1, ...g.input]));
      try {
        for (const net of this.nets) {
          const y = profile.time(PREDICT_STEPS.network, () => net.predict(x));
          try {
            profile.time(PREDICT_STEPS.place, () => this.addKept(asFloat32(this.backend.toArray(y)), view, at, size, out));
          } finally {
            y.dispose();
          }
        }
      } finally {
        x.dispose();
      }
    }
  }

  /** Adds a tile's kept outputs (`step` per axis from `keepFrom`, cut at the region's end), each view undone, at `at` into `out`. */
  private addKept(tileOut: Float32Array, view: TileView, at: Vec3, size: Vec3, out: Float32Array): void {
    const g = this.geometry;
    const tile = g.output;
    const n = volumeOf(tile);
    const keep = map3((a) => Math.min(g.step[a], size[a] - at[a]));
    view.routes.forEach((route, c) => {
      const plane = tileOut.subarray(c * n, (c + 1) * n);
      const back = view.inverse ? transformBox(plane, tile, view.inverse).data : plane;
      const from = map3((a) => this.keepFrom[a] + route.shift[a]);
      for (let z = 0; z < keep[0]; z++) {
        for (let y = 0; y < keep[1]; y++) {
          const src = ((from[0] + z) * tile[1] + from[1] + y) * tile[2] + from[2];
          const to = ((route.to * size[0] + at[0] + z) * size[1] + at[1] + y) * size[2] + at[2];
          for (let x = 0; x < keep[2]; x++) out[to + x]! += back[src + x]!;
        }
      }
    });
  }
}

/** Network outputs as float32 (the float64 reference backend's are copied; transformBox reads either kind the same). */
const asFloat32 = (a: ArrayLike<number>): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));

/** The views of test-time augmentation, refused where a tile is not the same along y and x (transposition). */
function ttaViews(spec: ModelSpec, g: VolumeGeometry, channels: number, models: readonly ModelWeights[]): TileView[] {
  if (g.input[1] !== g.input[2] || g.offset[1] !== g.offset[2] || g.stride[1] !== g.stride[2]) {
    throw new EmsegError('invalid-option', '--tta', `tiles of ${g.output.join(' x ')} outputs are not square in-plane: give --tile with equal y and x`);
  }
  const targets = JSON.stringify(spec.targets);
  const other = models.find((m) => JSON.stringify(m.spec.targets) !== targets);
  if (other) throw new EmsegError('mismatch', other.spec.name, `its targets differ from ${spec.name}'s; an ensemble's 3-d models must match`);
  return planeViews(spec.targets, channels, spec.name);
}

/** The `size` box at `at` of a row-major volume of `shape` (inside it), as a copy of the same array type. */
export function copyBox<T extends Float32Array | Uint32Array>(src: T, shape: Vec3, at: Vec3, size: Vec3): T {
  const out = new (src.constructor as new (n: number) => T)(volumeOf(size));
  for (let z = 0; z < size[0]; z++) {
    for (let y = 0; y < size[1]; y++) {
      const from = ((at[0] + z) * shape[1] + at[1] + y) * shape[2] + at[2];
      out.set(src.subarray(from, from + size[2]), (z * size[1] + y) * size[2]);
    }
  }
  return out;
}

/** Outputs for a whole in-memory volume (row-major z, y, x): validation regions, tests and small volumes. */
export function predictVolume(predictor: VolumePredictor, volume: Float32Array, shape: Vec3, region: Box = { start: [0, 0, 0], end: shape }): Float32Array {
  const box = inputBox(predictor.geometry, region);
  const clamp = clampBox(box, shape);
  const inside = copyBox(volume, shape, clamp.start, map3((a) => clamp.end[a] - clamp.start[a]));
  return predictor.predictRegion(mirrorFill(inside, shape, box), region);
}
