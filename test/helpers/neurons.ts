/** Synthetic 3-D neurons for the segmentation tests: Voronoi cells, their affinities with noise, and their scores. */
import { affinityTargets, type Offset3, type Shape3 } from '../../src/image/affinities.js';
import { Contingency3d, neuronScores, type NeuronScores } from '../../src/metrics/index.js';
import { Rng } from '../../src/util/rng.js';

/**
 * Neuron ids 1..centres: the Voronoi cells of random centres, distance in z weighted by `zWeight` (below 1: cells
 * stretch along z, as neurites through sections). Ids are in the order of the centres; a centre's cell may be empty.
 */
export function voronoiNeurons(shape: Shape3, centres: number, seed: number, zWeight = 1): Uint32Array {
  const rng = new Rng(seed);
  const c = Array.from({ length: centres }, () => [rng.next() * shape[0], rng.next() * shape[1], rng.next() * shape[2]] as const);
  const [Z, Y, X] = shape;
  const ids = new Uint32Array(Z * Y * X);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        let best = 0;
        let bestD = Infinity;
        c.forEach(([cz, cy, cx], i) => {
          const d = ((z - cz) * zWeight) ** 2 + (y - cy) ** 2 + (x - cx) ** 2;
          if (d < bestD) { bestD = d; best = i + 1; }
        });
        ids[(z * Y + y) * X + x] = best;
      }
    }
  }
  return ids;
}

/** Affinities of `ids` for `offsets` (image/affinities.ts), plus Gaussian noise of `sigma` clipped to [0, 1]. */
export function noisyAffinities(ids: Uint32Array, shape: Shape3, offsets: readonly Offset3[], sigma: number, seed: number): Float32Array {
  const t = affinityTargets(ids, shape, offsets);
  const rng = new Rng(seed);
  const out = new Float32Array(t.targets.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, t.targets[i]! + (sigma > 0 ? sigma * rng.normal() : 0)));
  return out;
}

/** CREMI / SNEMI3D scores of `seg` against `gt` (both ids per voxel of `shape`). */
export function scoreNeurons(seg: Uint32Array, gt: Uint32Array, shape: Shape3): NeuronScores {
  const table = new Contingency3d();
  table.add(gt, seg, { shape });
  return neuronScores(table);
}

/** Nearest-neighbour affinities plus long-range ones (the mutex watershed's repulsive channels). */
export const LONG_RANGE_OFFSETS: readonly Offset3[] = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [-2, 0, 0], [0, -3, 0], [0, 0, -3], [0, -9, 0], [0, 0, -9]];
