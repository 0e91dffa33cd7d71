/**
 * CREMI's in-plane border mask: the ground-truth voxels within a distance of a label boundary of their section
 * are left out of the scores, so that a boundary drawn a few nm off does not count. As cremi-python's
 * `create_border_mask_2d`: a pixel is on a boundary when one of its 4-neighbours inside the section holds another
 * label (the section's edge is no boundary); a pixel is masked when a boundary pixel lies within Euclidean distance
 * `radius` pixels (distance <= radius, boundary pixels included), which is what its `distance_transform_edt(...) <=
 * max_dist` computes. Here by stamping the disc of that radius on every boundary pixel: exact, and bounded by
 * pixels x disc, without a distance map.
 */
import type { IdArray } from './contingency3d.js';

/** The offsets (dy, dx) with dy^2 + dx^2 <= radius^2. */
function disc(radius: number): Array<readonly [number, number]> {
  const r = Math.floor(radius);
  const out: Array<readonly [number, number]> = [];
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) if (dy * dy + dx * dx <= radius * radius) out.push([dy, dx]);
  }
  return out;
}

function onBoundary(gt: IdArray, base: number, y: number, x: number, h: number, w: number): boolean {
  const i = base + y * w + x;
  const v = gt[i];
  return (x > 0 && gt[i - 1] !== v) || (x + 1 < w && gt[i + 1] !== v)
    || (y > 0 && gt[i - w] !== v) || (y + 1 < h && gt[i + w] !== v);
}

/**
 * The mask (1 = left out) of a slab of whole sections, shape (d, h, w), z-major: each section on its own.
 * `radius` in pixels (CREMI: border nm / in-plane voxel size); a negative radius masks nothing.
 */
export function borderMask(gt: IdArray, shape: readonly [number, number, number], radius: number): Uint8Array {
  const [d, h, w] = shape;
  const mask = new Uint8Array(d * h * w);
  if (!(radius >= 0)) return mask;
  const offsets = disc(radius);
  for (let z = 0; z < d; z++) {
    const base = z * h * w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!onBoundary(gt, base, y, x, h, w)) continue;
        for (const [dy, dx] of offsets) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) mask[base + yy * w + xx] = 1;
        }
      }
    }
  }
  return mask;
}
