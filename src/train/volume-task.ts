/**
 * Training 3-d networks on a labelled volume (a TrainingTask, trainer.ts): samples from the training sections
 * (volume-sampler.ts), sigmoid cross-entropy per target channel, and validation as the field scores it: the held-back
 * sections predicted whole, segmented into neurons (watershed + mean-affinity agglomeration, Lee et al. 2017) and
 * scored against the ground-truth ids by variation of information and adapted Rand error (metrics/neuron-scores.ts).
 */
import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import { NEAREST_OFFSETS, type Offset3, type TargetChannel } from '../image/affinities.js';
import { VolumePredictor, predictVolume, seesOneSection, volumeGeometry, volumeOf, type Box, type Vec3 } from '../infer/volume.js';
import { Contingency3d, neuronScores } from '../metrics/index.js';
import type { ParamSet } from '../nn/params.js';
import { agglomerateGraph, affinityFragments, neuronsOfMerges, regionGraph, relabel, type AffinityVolume } from '../segment/affinity/index.js';
import type { TrainConfig, TrainingTask } from './trainer.js';
import { VolumeSampler, type LabelledVolume } from './volume-sampler.js';

/**
 * Merge thresholds validation agglomerates at; the best one's scores count (the model is chosen, not the threshold).
 * Down to 0.1: of 0.3 / 0.5 / 0.7 the lowest was always the best (docs/NEURONS.md).
 */
export const VALIDATION_MERGE_THRESHOLDS = [0.1, 0.2, 0.3, 0.5, 0.7] as const;
/** Output voxels per axis of the tiles validation predicts with (memory, not results: tiles do not change outputs). */
const VALIDATION_TILE: Vec3 = [64, 64, 64];
/** The same for a network that sees one section at a time: wider in-plane, where its halo is. */
const VALIDATION_TILE_PLANAR: Vec3 = [8, 256, 256];
/** Probability that one section of an anisotropic sample is blanked (serial sections get lost or damaged). */
export const MISSING_SECTION_PROBABILITY = 0.05;
/** Serial sections are aligned imperfectly: how often an anisotropic sample is cut and shifted, and by how much. */
export const MISALIGNMENT = { probability: 0.1, shift: 4 } as const;

export interface VolumeTaskOptions {
  /** Output voxels per axis of a training sample (rounded up to the network's exact sizes). */
  tile: Vec3;
  isotropic: boolean;
  ignoreId?: number;
  source: Record<string, unknown>;
}

/** The held-back sections as one z range (a volume is validated as one block). */
export function validationRange(sections: readonly number[], shape: Vec3): Box | null {
  if (sections.length === 0) return null;
  const lo = Math.min(...sections);
  const hi = Math.max(...sections) + 1;
  if (hi - lo !== new Set(sections).size) {
    throw new EmsegError('invalid-option', '--val', `a volume's validation sections must be one range (z=${lo}:${hi} has gaps)`);
  }
  if (hi > shape[0]) throw new EmsegError('invalid-option', '--val', `section ${hi - 1} does not exist (the volume has ${shape[0]})`);
  return { start: [lo, 0, 0], end: [hi, shape[1], shape[2]] };
}

export function volumeTask(config: TrainConfig, volume: LabelledVolume, backend: Backend, o: VolumeTaskOptions): TrainingTask {
  const channels = config.spec.targets as TargetChannel[] | undefined;
  if (!channels?.length) throw new EmsegError('invalid-spec', config.spec.name, 'names no targets (affinity offsets or a boundary): a 3-d network trains on its "targets"');
  if (config.balance === 'subsample') throw new EmsegError('invalid-option', '--balance', 'subsample is for 2-d membrane masks; use weights or none');
  for (const [flag, on] of [['--malis-weight', config.malis], ['--border-weight', config.border], ['--close-gaps', config.closeGaps]] as const) {
    if (on) throw new EmsegError('invalid-option', flag, 'applies to 2-d networks only');
  }
  const g = volumeGeometry(config.spec, o.tile);
  const sampler = new VolumeSampler(volume, config.trainSections, { input: g.input, output: g.output, offset: g.offset, channels,
    balance: config.balance, ...(o.ignoreId === undefined ? {} : { ignoreId: o.ignoreId }), isotropic: o.isotropic,
    jitter: config.jitter, elastic: config.elastic, ...serialSectionFaults(o.isotropic || g.input[0] === 1) });
  const region = validationRange(config.validationSections, volume.shape);
  return {
    plan: g.plan, inputShape: [config.batch, 1, ...g.input], windowsPerSample: volumeOf(g.output) * channels.length, source: o.source,
    next(batch, rng) {
      const b = sampler.next(batch, rng);
      return { input: b.input, target: { targets: b.targets, weights: b.weights } };
    },
    validate: (params) => region && validateVolume(config, params, backend, volume, region, channels, o.ignoreId),
  };
}

/** Lost and misaligned sections, augmentations of anisotropic stacks; none where a sample is isotropic or one section. */
function serialSectionFaults(none: boolean): { missingSection: number; misalign?: typeof MISALIGNMENT } {
  return none ? { missingSection: 0 } : { missingSection: MISSING_SECTION_PROBABILITY, misalign: MISALIGNMENT };
}

function validateVolume(config: TrainConfig, params: ParamSet, backend: Backend, volume: LabelledVolume, region: Box,
  channels: TargetChannel[], ignoreId: number | undefined): { scores: Record<string, number>; score: number } {
  const planar = seesOneSection(volumeGeometry(config.spec));
  const predictor = new VolumePredictor([{ spec: config.spec, params }], backend, planar ? VALIDATION_TILE_PLANAR : VALIDATION_TILE);
  const maps = predictVolume(predictor, volume.images, volume.shape, region);
  const shape: Vec3 = [region.end[0] - region.start[0], volume.shape[1], volume.shape[2]];
  const affinities = nearestAffinities(maps, shape, channels);
  const gt = volume.ids.subarray(region.start[0] * shape[1] * shape[2], region.end[0] * shape[1] * shape[2]);
  const fragments = affinityFragments(affinities);
  const graph = regionGraph(affinities, fragments);
  let best: { scores: Record<string, number>; score: number } | null = null;
  for (const threshold of VALIDATION_MERGE_THRESHOLDS) {
    const { table } = neuronsOfMerges(fragments.count, agglomerateGraph(graph, threshold).merges);
    const table3 = new Contingency3d(ignoreId === undefined ? {} : { gtBackground: ignoreId });
    table3.add(gt, relabel(fragments.labels, table), { shape });
    const s = neuronScores(table3, 0);
    const scores = { voi: s.voi, voi_split: s.voiSplit, voi_merge: s.voiMerge, arand: s.arand, merge_threshold: threshold };
    if (!best || (Number.isFinite(s.voi) && -s.voi > best.score)) best = { scores, score: -s.voi };
  }
  return best!;
}

/**
 * The nearest-neighbour affinities segmentation reads: the network's affinity channels at NEAREST_OFFSETS, or for a
 * boundary head, aff(v, v + o) = 1 - max(b(v), b(v + o)) (either voxel on a boundary separates them).
 */
export function nearestAffinities(maps: Float32Array, shape: Vec3, channels: readonly TargetChannel[]): AffinityVolume {
  const n = volumeOf(shape);
  const index = NEAREST_OFFSETS.map((o) => channels.findIndex((c) => Array.isArray(c) && c.every((v, a) => v === o[a])));
  // A planar network's affinities (every offset in-plane) have no z channel: its sections are segmented one by one.
  const axes = channels.every((c) => Array.isArray(c) && c[0] === 0) ? [1, 2] : [0, 1, 2];
  if (axes.every((k) => index[k]! >= 0)) {
    const data = new Float32Array(axes.length * n);
    axes.forEach((k, j) => data.set(maps.subarray(index[k]! * n, (index[k]! + 1) * n), j * n));
    return { data, shape, offsets: axes.map((k) => NEAREST_OFFSETS[k]!) };
  }
  const b = channels.findIndex((c) => !Array.isArray(c));
  if (b < 0) throw new EmsegError('invalid-spec', 'targets', 'neither the three nearest affinities nor a boundary channel: nothing to segment by');
  return boundaryAffinities(maps.subarray(b * n, (b + 1) * n), shape);
}

function boundaryAffinities(boundary: Float32Array, shape: Vec3): AffinityVolume {
  const n = volumeOf(shape);
  const data = new Float32Array(3 * n);
  const strides = [shape[1] * shape[2], shape[2], 1];
  NEAREST_OFFSETS.forEach((o: Offset3, k) => {
    const a = o.findIndex((v) => v !== 0);
    for (let i = 0; i < n; i++) {
      const coord = Math.floor(i / strides[a]!) % shape[a]!;
      data[k * n + i] = coord === 0 ? 0 : 1 - Math.max(boundary[i]!, boundary[i - strides[a]!]!);
    }
  });
  return { data, shape, offsets: NEAREST_OFFSETS };
}
