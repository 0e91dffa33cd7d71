/** Text and JSON of a 3-D neuron evaluation (`emseg eval --seg`; pipeline/evaluate-3d.ts). */
import type { LabelId, MergedSegment, NeuronScores, SplitNeuron } from '../metrics/index.js';
import { table } from './text.js';

export interface NeuronEvaluation extends NeuronScores {
  seg: string;
  labels: string;
  shape: readonly [number, number, number];
  /** Ground-truth voxels left out by the border mask, and on label 0. */
  masked: number;
  unlabelled: number;
  /** The border mask used: nm and the radius in pixels (absent without one). */
  border?: { nm: number; pixels: number };
}

const num = (v: number, digits = 6): string => (Number.isNaN(v) ? 'NaN' : v.toFixed(digits));
const at = (p: readonly number[]): string => p.join(',');

function worstTables(e: NeuronEvaluation): string {
  let text = '';
  if (e.worstSplits.length > 0) {
    text += '\nworst split neurons (ground-truth ids over several segments)\n';
    text += table(['gt id', 'voxels', 'segments', 'split bits', 'first voxel z,y,x'],
      e.worstSplits.map((s) => [String(s.id), String(s.size), String(s.pieces), num(s.bits), at(s.at)]), (c) => c > 0 && c < 4);
  }
  if (e.worstMerges.length > 0) {
    text += '\nworst merged segments (segmentation ids over several neurons)\n';
    text += table(['seg id', 'voxels', 'neurons', 'merge bits', 'first voxel z,y,x'],
      e.worstMerges.map((m) => [String(m.id), String(m.size), String(m.neurons), num(m.bits), at(m.at)]), (c) => c > 0 && c < 4);
  }
  return text;
}

/** What `emseg eval --seg` prints. */
export function formatNeuronEvaluation(e: NeuronEvaluation): string {
  const border = e.border ? `, border mask ${e.border.nm} nm (${num(e.border.pixels, 3)} px): ${e.masked} voxels left out` : '';
  let text = `segmentation ${e.seg}\nlabels       ${e.labels} (${e.shape.join('x')} z,y,x)\n`;
  text += `scored ${e.voxels} voxels (${e.unlabelled} unlabelled${border})\n\n`;
  text += table(['score', 'value'], [
    ['VOI split', num(e.voiSplit)], ['VOI merge', num(e.voiMerge)], ['VOI', num(e.voi)],
    ['ARAND', num(e.arand)], ['CREMI score', num(e.cremi)],
  ], (c) => c === 1);
  return text + worstTables(e);
}

/** Ids as strings: a uint64 id does not fit a JSON number. NaN scores are null. */
const idText = (id: LabelId): string => String(id);
const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

function splitJson(s: SplitNeuron): Record<string, unknown> {
  return { id: idText(s.id), voxels: s.size, segments: s.pieces, bits: s.bits, at: s.at };
}

function mergeJson(m: MergedSegment): Record<string, unknown> {
  return { id: idText(m.id), voxels: m.size, neurons: m.neurons, bits: m.bits, at: m.at };
}

/** `emseg eval --seg --json`. */
export function neuronEvaluationJson(e: NeuronEvaluation): Record<string, unknown> {
  return {
    segmentation: e.seg, labels: e.labels, shape: e.shape, voxels: e.voxels, unlabelled: e.unlabelled, masked: e.masked,
    ...(e.border ? { border: e.border } : {}),
    voi_split: finite(e.voiSplit), voi_merge: finite(e.voiMerge), voi: finite(e.voi), arand: finite(e.arand),
    rand_precision: finite(e.randPrecision), rand_recall: finite(e.randRecall), cremi_score: finite(e.cremi),
    worst_splits: e.worstSplits.map(splitJson), worst_merges: e.worstMerges.map(mergeJson),
  };
}
