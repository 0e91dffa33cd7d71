/**
 * Symmetries of a box of voxels (z, y, x): an axis permutation and flips. Training draws them as augmentations
 * (train/volume-sampler.ts); test-time augmentation predicts through them and undoes them (infer/volume.ts).
 */
type Triple = readonly [number, number, number];

/** Output axis k reads input axis perm[k], reversed where flip[k]. */
export interface Symmetry { perm: Triple; flip: readonly [boolean, boolean, boolean] }

/** `data` (of `size`) seen through a symmetry. */
export function transformBox<T extends Float32Array | Uint32Array>(data: T, size: Triple, s: Symmetry): { data: T; size: [number, number, number] } {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const outSize: [number, number, number] = [size[s.perm[0]]!, size[s.perm[1]]!, size[s.perm[2]]!];
  const strides = [size[1] * size[2], size[2], 1];
  const step = [0, 1, 2].map((k) => (s.flip[k] ? -1 : 1) * strides[s.perm[k]!]!);
  const origin = [0, 1, 2].reduce((o, k) => o + (s.flip[k] ? (outSize[k]! - 1) * strides[s.perm[k]!]! : 0), 0);
  let o = 0;
  for (let i = 0; i < outSize[0]; i++) {
    for (let j = 0; j < outSize[1]; j++) {
      let from = origin + i * step[0]! + j * step[1]!;
      for (let k = 0; k < outSize[2]; k++, from += step[2]!) out[o++] = data[from]!;
    }
  }
  return { data: out, size: outSize };
}

/** The symmetry that undoes `s`: transformBox through s, then through inverse(s), gives the box back. */
export function inverseSymmetry(s: Symmetry): Symmetry {
  const perm = [0, 0, 0];
  s.perm.forEach((from, k) => { perm[from] = k; });
  return { perm: perm as unknown as Triple, flip: [s.flip[perm[0]!]!, s.flip[perm[1]!]!, s.flip[perm[2]!]!] };
}

/** A displacement (dz, dy, dx) seen in the box transformed by `s`, as the original box's displacement. */
export function originalDisplacement(d: Triple, s: Symmetry): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  s.perm.forEach((from, k) => { out[from] = s.flip[k] ? 0 - d[k]! : d[k]!; }); // 0 - 0 is +0, not -0
  return out;
}

/** The 8 symmetries of the sections' plane (flips of y and x, and their transposition); z untouched. */
export const IN_PLANE_SYMMETRIES: readonly Symmetry[] = [false, true].flatMap((transpose) => [false, true].flatMap((fy) =>
  [false, true].map((fx) => ({ perm: (transpose ? [0, 2, 1] : [0, 1, 2]) as Triple, flip: [false, fy, fx] as const }))));
