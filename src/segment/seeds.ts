import { ComponentLabeller } from '../metrics/components.js';

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
