/**
 * `emseg train` of a 3-d network: a labelled volume (HDF5, OME-Zarr, TIFF stacks; neuron ids) read whole, the
 * validation sections one z range (--val, or the last VALIDATION_FRACTION of the sections), targets made on the fly
 * from the ids (train/volume-sampler.ts) and validation by neuron scores (train/volume-task.ts).
 */
import type { Backend } from '../backend/backend.js';
import { DEFAULT_INTENSITY, parseIntensity, sectionNormaliser, formatIntensity } from '../image/intensity.js';
import { sampleTypeOf, type SampleType } from '../image/stack.js';
import { seesOneSection, volumeGeometry, type Vec3 } from '../infer/volume.js';
import { loadLabelledIds, type LabelledIds } from '../io/training-labels.js';
import { INTENSITY_FIELD, SAMPLE_TYPE_FIELD } from '../models/model-dir.js';
import type { ModelSpec } from '../nn/spec.js';
import { trainTask, type TrainConfig } from '../train/trainer.js';
import { volumeTask } from '../train/volume-task.js';
import { typedPath } from '../util/paths.js';
import { EmsegError } from '../errors.js';
import { buildTrainConfig, chooseValidation, type TrainJob, type TrainJobHooks } from './train-job.js';

/** Voxel sizes within this fraction of each other count as isotropic (axis permutations are then symmetries). */
const ISOTROPY_TOLERANCE = 0.25;

/** Whether every target lies in a section: then membrane masks can teach it (each section's cells, io/training-labels.ts). */
function inPlaneTargets(spec: ModelSpec): boolean {
  return (spec.targets ?? []).every((t) => (Array.isArray(t) ? t[0] === 0 : t.boundary === 'in-plane'));
}

async function loadVolume(o: TrainJob, spec: ModelSpec, hooks: TrainJobHooks): Promise<{ data: LabelledIds; source: Record<string, unknown> }> {
  const intensity = parseIntensity(o.intensity ?? DEFAULT_INTENSITY, '--intensity');
  const normalise = sectionNormaliser(intensity);
  let sampleType: SampleType | undefined;
  const masks = inPlaneTargets(spec);
  // Masks are read as the format says (PNG/TIFF stacks are masks); other networks need ids whatever the format.
  const labelKind = o.labelKind ?? (masks ? undefined : 'instance');
  const data = await loadLabelledIds({ images: o.images, labels: o.labels, ...(labelKind ? { labelKind } : {}), cellsFromMasks: masks,
    ...(o.polarity === undefined ? {} : { polarity: o.polarity }), notice: hooks.onNotice,
    ...(o.ignoreLabel === undefined ? {} : { ignoreLabel: o.ignoreLabel }), colour: o.toGrey ? 'to-grey' : 'reject',
    toFloat: (s) => {
      sampleType ??= sampleTypeOf(s.data);
      return normalise(s);
    } });
  const { kind, polarity, ignoreLabel } = data.reading;
  const source = { images: typedPath(o.images), labels: typedPath(o.labels), label_kind: kind, ...(kind === 'mask' ? { polarity } : {}),
    ids: data.idCount, ...(ignoreLabel === undefined ? {} : { ignore_label: ignoreLabel.toString() }),
    [INTENSITY_FIELD]: formatIntensity(intensity), [SAMPLE_TYPE_FIELD]: sampleType, ...(o.toGrey ? { to_grey: true } : {}) };
  return { data, source };
}

/**
 * Axis permutations are symmetries of the data only when the network is the same along every axis and the voxels
 * are cubes; a volume that records no voxel size is taken as the network is built (said, not guessed silently).
 */
function isotropy(spec: ModelSpec, data: LabelledIds, hooks: TrainJobHooks): boolean {
  const g = volumeGeometry(spec);
  const cubic = g.offset.every((v) => v === g.offset[0]) && g.stride.every((v) => v === g.stride[0]);
  if (!cubic) return false;
  const size = data.voxelSize?.size;
  if (!size) {
    hooks.onNotice?.('augmentation: the volume records no voxel size; taken as isotropic like the network (axis transposes on)');
    return true;
  }
  const iso = size.every((v) => Math.abs(v - size[0]!) <= ISOTROPY_TOLERANCE * size[0]!);
  if (!iso) hooks.onNotice?.(`augmentation: voxels of ${size.join(' x ')} are not cubes; only in-plane transposes`);
  return iso;
}

/**
 * The sample's output voxels: --tile in-plane, and along z as many as the network's strides make comparable; one
 * section for a network that sees no other (each section is then a sample of its own, as in 2-d training).
 */
function sampleTile(spec: ModelSpec, tile: number): Vec3 {
  const g = volumeGeometry(spec);
  if (seesOneSection(g)) return [1, tile, tile];
  return [Math.max(1, Math.round((tile * g.stride[0]) / g.stride[1])), tile, tile];
}

/** Validation: --val's sections (one range), or the last sections of the volume; the rest trains. */
function sections(o: TrainJob, depth: number, hooks: TrainJobHooks): { train: number[]; val: number[]; chosen?: string } {
  const holdOut = o.holdOut ?? [];
  const bad = [...(o.val ?? []), ...holdOut].find((z) => z >= depth);
  if (bad !== undefined) throw new EmsegError('invalid-option', o.val?.includes(bad) ? '--val' : '--hold-out', `section ${bad} does not exist (the volume has ${depth})`);
  const val = o.val ?? chooseValidation(depth, holdOut);
  const chosen = o.val ? undefined : `the last ${val.length} sections (z=${val[0]}:${val[val.length - 1]! + 1}), as --val was not given`;
  if (chosen) hooks.onNotice?.(`validation: ${chosen}; choose others with --val z=A:B`);
  const train = [...Array(depth).keys()].filter((z) => !val.includes(z) && !holdOut.includes(z));
  return { train, val, ...(chosen ? { chosen } : {}) };
}

export async function runTrainVolume(o: TrainJob, spec: ModelSpec, backend: Backend, hooks: TrainJobHooks) {
  const { data, source } = await loadVolume(o, spec, hooks);
  const split = sections(o, data.shape[0], hooks);
  const config: TrainConfig = { ...buildTrainConfig({ ...o, model: o.model, spec, out: o.out, trainSections: split.train,
    validationSections: split.val }), select: 'voi', ...(split.chosen ? { validationChosen: split.chosen } : {}),
  ...(o.init ? { initFrom: o.init } : {}),
  labels: { kind: source.label_kind, ...(source.polarity === undefined ? {} : { polarity: source.polarity }),
    ...(source.ignore_label === undefined ? {} : { ignore_label: source.ignore_label }) } };
  const task = volumeTask(config, data, backend, { tile: sampleTile(spec, o.tile), isotropic: isotropy(spec, data, hooks),
    ...(data.ignoreId === undefined ? {} : { ignoreId: data.ignoreId }), source });
  return trainTask(config, task, backend, hooks, o.resume);
}
