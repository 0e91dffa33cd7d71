/**
 * `emseg tune-segment --method`: the 3-D neuron methods scored (CREMI / SNEMI3D, metrics/neuron-scores.ts) over a
 * grid of their parameters on a labelled volume, best VOI first. For watershed-agglomerate the fragments are made
 * once per seed boundary and agglomerated once down to 0: every merge threshold is a prefix of that one merge
 * history (segment/affinity/agglomerate.ts), so a grid of thresholds costs one agglomeration.
 */
import { EmsegError } from '../errors.js';
import { EmsegIoError } from '../io/errors.js';
import type { Vec3 } from '../io/formats/volume.js';
import { openVolume } from '../io/registry.js';
import { Contingency3d, neuronScores, type IdArray } from '../metrics/index.js';
import { affinityFragments, cutHistory, mergeHistory, mutexWatershed, type Labelling } from '../segment/affinity/index.js';
import { NEURON_DEFAULTS, type NeuronMethod } from './defaults.js';
import { readAffinities, type NeuronSegmentJob } from './neurons.js';
import { NEURONS_META_KEY, checkModelDir, recordTunedNeurons } from './tuned-neurons.js';

export interface TuneNeuronsJob {
  pred: string;
  labels: string;
  method: NeuronMethod;
  /** watershed-agglomerate: values to try. */
  mergeAffinity?: readonly number[];
  seedBoundary?: readonly number[];
  scale?: number;
  maxBytes?: number;
  onProgress?: (done: number, total: number) => void;
  /** Records the best row in this model directory's meta.json ("segment_neurons", tuned-neurons.ts). */
  modelDir?: string;
  /** Told where the best row was recorded. */
  notice?: (line: string) => void;
}

export interface TuneNeuronsRow {
  /** The parameters of the row ({} for the mutex watershed, which has none). */
  options: Record<string, number>;
  neurons: number;
  voi: number;
  voiSplit: number;
  voiMerge: number;
  arand: number;
  cremi: number;
}

async function readLabels(path: string, shape: Vec3): Promise<IdArray> {
  const r = await openVolume(path);
  try {
    if (r.shape.some((v, a) => v !== shape[a])) throw new EmsegIoError('mismatch', r.path, `has shape ${r.shape.join('x')} (z,y,x), the maps ${shape.join('x')}`);
    if (r.dtype === 'float32') throw new EmsegIoError('invalid-data', r.path, 'holds float32 values; neuron ids must be integers');
    return (await r.readRegion({ start: [0, 0, 0], end: shape })) as IdArray;
  } finally {
    await r.close();
  }
}

function row(options: Record<string, number>, seg: Labelling, gt: IdArray, shape: Vec3): TuneNeuronsRow {
  const table = new Contingency3d();
  table.add(gt, seg.labels, { shape });
  const s = neuronScores(table, 0);
  return { options, neurons: seg.count, voi: s.voi, voiSplit: s.voiSplit, voiMerge: s.voiMerge, arand: s.arand, cremi: s.cremi };
}

function checkGrid(values: readonly number[], flag: string): void {
  if (values.length === 0 || values.some((v) => !(v >= 0 && v <= 1))) throw new EmsegError('invalid-option', flag, `expected values in [0, 1], got ${values.join(',')}`);
}

/** Scores the method over its grid; rows best VOI first (ties: lower ARAND, then the grid's order). */
export async function tuneNeuronSegment(job: TuneNeuronsJob): Promise<TuneNeuronsRow[]> {
  if (job.method === 'link') throw new EmsegError('invalid-option', '--method', 'tune-segment grids the affinity methods (watershed-agglomerate, mutex)');
  if (job.modelDir !== undefined) checkModelDir(job.modelDir); // before the work, not after it
  const probe: NeuronSegmentJob = { pred: job.pred, out: '', method: job.method, scale: job.scale, maxBytes: job.maxBytes };
  const { volume, reader } = await readAffinities(probe);
  await reader.close();
  const gt = await readLabels(job.labels, volume.shape);
  const rows: TuneNeuronsRow[] = [];
  if (job.method === 'mutex') {
    rows.push(row({}, mutexWatershed(volume), gt, volume.shape));
  } else {
    const merges = job.mergeAffinity ?? [NEURON_DEFAULTS.mergeAffinity.value];
    const seeds = job.seedBoundary ?? [NEURON_DEFAULTS.seedBoundary.value];
    checkGrid(merges, '--merge-affinity');
    checkGrid(seeds, '--seed-boundary');
    let done = 0;
    for (const seedBoundary of seeds) {
      const fragments = affinityFragments(volume, { seedBoundary });
      const history = mergeHistory(volume, fragments);
      for (const mergeAffinity of merges) {
        rows.push(row({ seedBoundary, mergeAffinity }, cutHistory(fragments, history, mergeAffinity), gt, volume.shape));
        job.onProgress?.(++done, seeds.length * merges.length);
      }
    }
  }
  const sorted = rows.map((r, i) => ({ r, i })).sort((a, b) => a.r.voi - b.r.voi || a.r.arand - b.r.arand || a.i - b.i).map((x) => x.r);
  if (job.modelDir !== undefined) recordBest(job, sorted[0]!);
  return sorted;
}

/** The best row (method, thresholds, scores, the labels) into the model's meta.json. */
function recordBest(job: TuneNeuronsJob, best: TuneNeuronsRow): void {
  const method = job.method as 'watershed-agglomerate' | 'mutex';
  const { voi, voiSplit, voiMerge, arand, cremi } = best;
  const file = recordTunedNeurons(job.modelDir!, { method, ...best.options, scores: { voi, voiSplit, voiMerge, arand, cremi }, labels: job.labels });
  const options = Object.entries(best.options).map(([k, v]) => `${k} ${v}`).join(', ');
  job.notice?.(`recorded --method ${method}${options ? ` (${options})` : ''}, VOI ${voi.toFixed(4)}, ARAND ${arand.toFixed(4)} in ${file} "${NEURONS_META_KEY}": `
    + 'emseg segment --method on maps this model predicts uses it for the options not given as flags (--method auto: the method too)');
}
