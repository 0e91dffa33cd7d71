/**
 * CREMI / SNEMI3D scores of a 3-D instance segmentation from its contingency table (contingency3d.ts); the
 * formulas and conventions are in docs/MODELS.md, "3-D neuron segmentations". Counts are exact integers; the
 * sums are float64.
 */
import type { Contingency3d, LabelId, VoxelPosition } from './contingency3d.js';

/** Worst neurons and segments listed by default. */
export const DEFAULT_WORST_COUNT = 10;

/** A ground-truth neuron spread over several segmentation ids. */
export interface SplitNeuron {
  id: LabelId;
  /** Counted voxels of the neuron. */
  size: number;
  /** Segmentation ids it touches (label 0 is one of them when present). */
  pieces: number;
  /** Its share of VOI split, in bits: -sum_j (c_ij / n) log2(c_ij / a_i). */
  bits: number;
  /** First voxel of it seen (z, y, x). */
  at: VoxelPosition;
}

/** A segmentation id covering several ground-truth neurons. */
export interface MergedSegment {
  id: LabelId;
  /** Its voxels on counted ground truth. */
  size: number;
  /** Ground-truth neurons it touches. */
  neurons: number;
  /** Its share of VOI merge, in bits: -sum_i (c_ij / n) log2(c_ij / b_j). */
  bits: number;
  at: VoxelPosition;
}

export interface NeuronScores {
  /** Voxels scored (ground-truth foreground, not masked). */
  voxels: number;
  /** H(seg | gt), bits: over-segmentation. */
  voiSplit: number;
  /** H(gt | seg), bits: under-segmentation. */
  voiMerge: number;
  /** voiSplit + voiMerge. */
  voi: number;
  /** SNEMI3D adapted Rand error: 1 - max F-score of the Rand index (seg 0 voxels are singletons). */
  arand: number;
  /** Rand precision sumAB / sumB and recall sumAB / sumA of the adapted Rand error. */
  randPrecision: number;
  randRecall: number;
  /** CREMI score: sqrt(voi * arand). */
  cremi: number;
  worstSplits: SplitNeuron[];
  worstMerges: MergedSegment[];
}

/** The scores; NaN everywhere when no voxel was counted. `worst`: how many neurons/segments to list. */
export function neuronScores(t: Contingency3d, worst = DEFAULT_WORST_COUNT): NeuronScores {
  const n = t.counted;
  const splits: SplitNeuron[] = [];
  const mergeBits = new Map<LabelId, { bits: number; neurons: number }>();
  let sumA = 0;
  let sumAB = 0;
  for (const [id, row] of t.rows) {
    sumA += row.size * row.size;
    let bits = 0;
    for (const [s, c] of row.pieces) {
      bits -= (c / n) * Math.log2(c / row.size);
      const b = t.columns.get(s)!.size;
      const m = mergeBits.get(s) ?? { bits: 0, neurons: 0 };
      m.bits -= (c / n) * Math.log2(c / b);
      m.neurons++;
      mergeBits.set(s, m);
      // Segmentation label 0 is a singleton per voxel for the Rand error: c_i0 pairs of size 1.
      sumAB += s === 0 ? c : c * c;
    }
    splits.push({ id, size: row.size, pieces: row.pieces.size, bits, at: row.first });
  }
  let sumB = 0;
  const merges: MergedSegment[] = [];
  for (const [id, col] of t.columns) {
    sumB += id === 0 ? col.size : col.size * col.size;
    const m = mergeBits.get(id)!;
    merges.push({ id, size: col.size, neurons: m.neurons, bits: m.bits, at: col.first });
  }
  if (n === 0) return emptyScores();
  const voiSplit = sum(splits.map((s) => s.bits));
  const voiMerge = sum(merges.map((m) => m.bits));
  const precision = sumAB / sumB;
  const recall = sumAB / sumA;
  const arand = 1 - (2 * precision * recall) / (precision + recall);
  const voi = voiSplit + voiMerge;
  return {
    voxels: n, voiSplit, voiMerge, voi, arand, randPrecision: precision, randRecall: recall, cremi: Math.sqrt(voi * arand),
    worstSplits: worstOf(splits, worst, (s) => s.pieces > 1),
    worstMerges: worstOf(merges, worst, (m) => m.neurons > 1),
  };
}

function sum(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** The `count` entries with the most bits among those that split/merge at all; ties by size, then id. */
function worstOf<T extends { bits: number; size: number; id: LabelId }>(items: T[], count: number, keep: (t: T) => boolean): T[] {
  return items.filter(keep).sort((a, b) => b.bits - a.bits || b.size - a.size || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, count);
}

function emptyScores(): NeuronScores {
  return {
    voxels: 0, voiSplit: NaN, voiMerge: NaN, voi: NaN, arand: NaN, randPrecision: NaN, randRecall: NaN, cremi: NaN,
    worstSplits: [], worstMerges: [],
  };
}
