/**
 * Test-time augmentation of 3-d networks: each tile is also predicted through the 8 symmetries of the sections'
 * plane and the outputs averaged once each view is undone. A boundary channel is its own image under a symmetry; an
 * affinity channel of offset o becomes, in the original box, the affinity of the transformed displacement o*: the
 * channel of offset o* at the same voxel, or the channel of offset -o* read |o*| voxels away (the pair {v, v + o*}
 * is the pair {u, u - o*} of u = v + o*). Tiles then read that far beyond the outputs they keep (`ttaMargin`).
 */
import { EmsegError } from '../errors.js';
import type { TargetChannel } from '../image/affinities.js';
import { IN_PLANE_SYMMETRIES, inverseSymmetry, originalDisplacement, type Symmetry } from '../image/box-symmetry.js';
/** A voxel displacement or size (z, y, x), as infer/volume.ts's. */
type Vec3 = readonly [number, number, number];

/** Where a network channel's undone values go: output channel `to`, each voxel taking the value `shift` away. */
export interface Route { to: number; shift: Vec3 }

/** One view of a tile: the symmetry it is predicted through, the one that undoes it, and each channel's route. */
export interface TileView { symmetry: Symmetry | null; inverse: Symmetry | null; routes: readonly Route[] }

const STILL: Vec3 = [0, 0, 0];

/** The plain view: nothing transformed, every channel to itself. */
export function identityView(channels: number): TileView {
  return { symmetry: null, inverse: null, routes: Array.from({ length: channels }, (_, c) => ({ to: c, shift: STILL })) };
}

const same = (a: readonly number[], b: readonly number[]) => a.every((v, i) => v === b[i]);

function routeOf(targets: readonly TargetChannel[], c: number, s: Symmetry, model: string): Route {
  const t = targets[c]!;
  if (!Array.isArray(t)) return { to: c, shift: STILL };
  const d = originalDisplacement(t as Vec3, s);
  const direct = targets.findIndex((u) => Array.isArray(u) && same(u, d));
  if (direct >= 0) return { to: direct, shift: STILL };
  const opposite = targets.findIndex((u) => Array.isArray(u) && same(u, d.map((v) => -v)));
  if (opposite >= 0) return { to: opposite, shift: targets[opposite] as Vec3 };
  throw new EmsegError('invalid-option', '--tta', `${model}'s affinity offsets are not closed under the flips and transposition of the plane: `
    + `[${t.join(', ')}] becomes [${d.join(', ')}], which is no channel's offset (nor its opposite)`);
}

/** The 8 views of the plane for a network with these targets (no targets: channels are maps, each its own image). */
export function planeViews(targets: readonly TargetChannel[] | undefined, channels: number, model: string): TileView[] {
  return IN_PLANE_SYMMETRIES.map((symmetry) => ({ symmetry, inverse: inverseSymmetry(symmetry),
    routes: targets ? targets.map((_, c) => routeOf(targets, c, symmetry, model)) : identityView(channels).routes }));
}

/** Per axis, the voxels beyond a kept output that the views read: the longest shift, rounded up to the stride. */
export function ttaMargin(views: readonly TileView[], stride: Vec3): Vec3 {
  const reach = [0, 1, 2].map((a) => Math.max(0, ...views.flatMap((v) => v.routes.map((r) => Math.abs(r.shift[a]!)))));
  return [0, 1, 2].map((a) => Math.ceil(reach[a]! / stride[a]!) * stride[a]!) as unknown as Vec3;
}
