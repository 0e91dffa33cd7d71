import { ComponentLabeller } from '../image/components.js';

/**
 * Watershed seeds: the 4-connected regions where the (smoothed) membrane probability is below `threshold`, those
 * smaller than `minArea` pixels dropped (label 0). Labels are 1..n, not necessarily consecutive.
 */
export function seedRegions(pMembrane: Float32Array, height: number, width: number, threshold: number,
  minArea: number): Int32Array {
  const mask = new Uint8Array(pMembrane.length);
  for (let i = 0; i < mask.length; i++) mask[i] = pMembrane[i]! < threshold ? 1 : 0;
  const seeds = new Int32Array(pMembrane.length);
  const count = new ComponentLabeller().label(mask, width, height, seeds);
  const area = new Int32Array(count + 1);
  for (const l of seeds) area[l]++;
  for (let i = 0; i < seeds.length; i++) if (area[seeds[i]!]! < minArea) seeds[i] = 0;
  return seeds;
}

/**
 * Adds a seed to every 4-connected region of the unsmoothed map below `threshold` that holds no seed yet and has at
 * least `minArea` pixels, in place. Thin and small cells (a strip along the image edge, a narrow neurite) lose
 * their low values to the smoothing and get no seed of their own, so the watershed floods them from a neighbour and
 * the cells merge; the agglomeration still joins such a seed's segment to a neighbour when the map shows no
 * membrane between them.
 */
export function addUnseededRegions(seeds: Int32Array, pMembrane: Float32Array, height: number, width: number,
  threshold: number, minArea: number): void {
  const mask = new Uint8Array(pMembrane.length);
  for (let i = 0; i < mask.length; i++) mask[i] = pMembrane[i]! < threshold ? 1 : 0;
  const regions = new Int32Array(pMembrane.length);
  const count = new ComponentLabeller().label(mask, width, height, regions);
  const area = new Int32Array(count + 1);
  const seeded = new Uint8Array(count + 1);
  let next = 1;
  for (let i = 0; i < regions.length; i++) {
    area[regions[i]!]++;
    if (seeds[i] !== 0) seeded[regions[i]!] = 1;
    if (seeds[i]! >= next) next = seeds[i]! + 1;
  }
  const label = new Int32Array(count + 1);
  for (let r = 1; r <= count; r++) if (!seeded[r] && area[r]! >= minArea) label[r] = next++;
  for (let i = 0; i < regions.length; i++) if (label[regions[i]!]! !== 0) seeds[i] = label[regions[i]!]!;
}
