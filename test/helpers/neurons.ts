/** Synthetic 3-D neurons for the segmentation tests: Voronoi cells, their affinities with noise, and their scores. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { multiChannelRecord } from '../../src/image/map-meaning.js';
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

/**
 * A multi-channel OME-Zarr map (zarr v2, uncompressed, one chunk per channel) with a channel axis "c" and the
 * record of its affinity channels, as a network predicting affinities would write it.
 */
export function writeAffinityZarr(dir: string, data: Float32Array, shape: Shape3, offsets: readonly Offset3[], dtype: 'float32' | 'uint8' = 'float32'): void {
  const C = offsets.length;
  mkdirSync(join(dir, '0'), { recursive: true });
  writeFileSync(join(dir, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
  const axes = [{ name: 'c', type: 'channel' }, ...['z', 'y', 'x'].map((name) => ({ name, type: 'space' }))];
  const multiscales = [{ version: '0.4', name: 'affinities', axes, datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1, 1] }] }] }];
  const emseg = multiChannelRecord(offsets.map((o) => ({ kind: 'affinity' as const, offset: [o[0], o[1], o[2]] as [number, number, number] })));
  writeFileSync(join(dir, '.zattrs'), JSON.stringify({ multiscales, emseg }));
  writeFileSync(join(dir, '0', '.zarray'), JSON.stringify({ zarr_format: 2, shape: [C, ...shape], chunks: [1, ...shape], dtype: dtype === 'uint8' ? '|u1' : '<f4',
    compressor: null, fill_value: 0, order: 'C', filters: null }));
  const n = shape[0] * shape[1] * shape[2];
  for (let c = 0; c < C; c++) {
    const chunk = data.slice(c * n, (c + 1) * n);
    // uint8 maps hold round(255 p), as emseg predict writes them.
    const bytes = dtype === 'uint8' ? Uint8Array.from(chunk, (v) => Math.round(v * 255)) : new Uint8Array(chunk.buffer);
    writeFileSync(join(dir, '0', `${c}.0.0.0`), bytes);
  }
}
