/**
 * Which intensity rule a job applies: `train` records its rule (and the images' sample type) in the model's
 * meta.json; `predict` applies the models' recorded rule unless --intensity says otherwise (then it warns).
 */
import { join } from 'node:path';
import { EmsegError } from '../errors.js';
import { DEFAULT_POLARITY, loadDataset, type LabelPolarity } from '../io/index.js';
import { sampleTypeOf, type SampleType } from '../image/stack.js';
import {
  DEFAULT_INTENSITY,
  formatIntensity,
  parseIntensity,
  sectionNormaliser,
  type IntensitySpec,
} from '../image/intensity.js';
import { INTENSITY_FIELD, SAMPLE_TYPE_FIELD, intensityRecord, META_FILE, type LoadedModel } from '../models/model-dir.js';
import type { TrainData } from '../train/trainer.js';
import { typedPath } from '../util/paths.js';
import { isContainerPath } from '../io/registry.js';
import { loadLabelledVolume, type LabelKind } from '../io/training-labels.js';

/** `dtype` from a model's record (or a model without one) is applied with `auto`'s checks: the user did not say it. */
function guarded(spec: IntensitySpec): IntensitySpec {
  return spec.kind === 'dtype' ? { kind: 'auto' } : spec;
}

function sameRule(a: IntensitySpec, b: IntensitySpec): boolean {
  return formatIntensity(guarded(a)) === formatIntensity(guarded(b));
}

export interface PredictIntensity {
  spec: IntensitySpec;
  /** Warnings for the user (an explicit rule that differs from the models'). */
  notices: string[];
}

/**
 * The rule for predicting `inputType` images with `models`: `flag` when given (warning where a model was trained
 * otherwise), else the models' common recorded rule. A recorded fixed range is refused for another sample type.
 */
export function predictIntensity(models: readonly LoadedModel[], inputType: SampleType, input: string, flag?: string): PredictIntensity {
  const records = models.map((m) => {
    const r = intensityRecord(m.meta);
    return { ...r, dir: m.dir, spec: parseIntensity(r.intensity, `${join(m.dir, META_FILE)} data.${INTENSITY_FIELD}`) };
  });
  if (flag !== undefined) {
    const spec = parseIntensity(flag);
    const differ = records.filter((r) => !sameRule(r.spec, spec));
    const rules = [...new Set(differ.map((r) => `${r.intensity}${r.recorded ? '' : ', the default of models without a record'}`))];
    const notices = differ.length === 0 ? [] : [`warning: --intensity ${formatIntensity(spec)} differs from the rule `
      + `${differ.map((r) => r.dir).join(', ')} ${differ.length === 1 ? 'was' : 'were'} trained with (${rules.join('; ')}); using ${formatIntensity(spec)} as asked`];
    return { spec, notices };
  }
  const first = records[0]!;
  const other = records.find((r) => !sameRule(r.spec, first.spec));
  if (other) {
    throw new EmsegError('invalid-option', '--intensity', `the models were trained with different intensity rules (${first.dir}: ${first.intensity}, `
      + `${other.dir}: ${other.intensity}); pass --intensity to choose one`);
  }
  const mismatched = records.find((r) => r.spec.kind === 'range' && r.sampleType !== undefined && r.sampleType !== inputType);
  if (mismatched) {
    throw new EmsegError('intensity-range', input, `is ${inputType} but ${mismatched.dir} was trained on ${mismatched.sampleType} images `
      + `scaled by --intensity ${mismatched.intensity}; pass --intensity for this input (e.g. dtype, percentiles or LOW,HIGH)`);
  }
  return { spec: guarded(first.spec), notices: [] };
}

export interface TrainingDataOptions {
  images: string;
  labels: string;
  /** Omitted: the ISBI default, and labels that read as mostly membrane are refused (io/dataset.ts). */
  polarity?: LabelPolarity;
  /** Where the warning about labels that read as mostly membrane with a given polarity goes. */
  notice?: (line: string) => void;
  /** An --intensity rule (default auto). */
  intensity?: string;
  /** Reduce colour images to their luma instead of refusing them. */
  toGrey?: boolean;
  /** Names the flag or study field in a parse error. */
  intensityPath?: string;
  /** Labels as people have them (io/training-labels.ts): mask or instance, an ignore value, the boundary width. */
  labelKind?: LabelKind;
  ignoreLabel?: bigint;
  boundaryWidth?: number;
}

/**
 * Does the job read its data through the volume path (io/training-labels.ts)? Only with a label flag or an HDF5 /
 * Zarr input: PNG/TIFF stacks of binary masks keep the stack reader, so today's runs give the same bytes.
 */
async function volumePath(o: TrainingDataOptions): Promise<boolean> {
  if (o.labelKind !== undefined || o.ignoreLabel !== undefined || o.boundaryWidth !== undefined) return true;
  return (await isContainerPath(o.images)) || (await isContainerPath(o.labels));
}

/** The volume path: any volume formats, masks or instance labels, ignored and unlabelled pixels. */
async function loadFromVolumes(o: TrainingDataOptions, spec: IntensitySpec): Promise<TrainData> {
  let sampleType: SampleType | undefined;
  const normalise = sectionNormaliser(spec);
  const data = await loadLabelledVolume({ ...o, colour: o.toGrey ? 'to-grey' : 'reject', notice: o.notice,
    toFloat: (s) => {
      sampleType ??= sampleTypeOf(s.data);
      return normalise(s);
    } });
  const r = data.reading;
  return { images: data.images, labels: data.labels, source: { images: typedPath(o.images), labels: typedPath(o.labels), label_kind: r.kind,
    ...(r.polarity ? { polarity: r.polarity } : {}), ...(r.boundaryWidth ? { boundary_width: r.boundaryWidth } : {}),
    ...(r.ignoreLabel === undefined ? {} : { ignore_label: r.ignoreLabel.toString() }),
    [INTENSITY_FIELD]: formatIntensity(spec), [SAMPLE_TYPE_FIELD]: sampleType, ...(o.toGrey ? { to_grey: true } : {}) } };
}

/** Images normalised by the rule, label masks, and the record (rule, sample type) that goes into the model's meta.json. */
export async function loadTrainingData(o: TrainingDataOptions): Promise<TrainData> {
  const spec = parseIntensity(o.intensity ?? DEFAULT_INTENSITY, o.intensityPath);
  if (await volumePath(o)) return loadFromVolumes(o, spec);
  let sampleType: SampleType | undefined;
  const normalise = sectionNormaliser(spec);
  const data = await loadDataset({ images: o.images, labels: o.labels, polarity: o.polarity, notice: o.notice, colour: o.toGrey ? 'to-grey' : 'reject',
    toFloat: (s) => {
      sampleType ??= sampleTypeOf(s.data);
      return normalise(s);
    } });
  // Paths as typed from the working folder, never absolute (util/paths.ts): the record travels with the model.
  return { images: data.images, labels: data.labels!, source: { images: typedPath(o.images), labels: typedPath(o.labels), polarity: o.polarity ?? DEFAULT_POLARITY,
    [INTENSITY_FIELD]: formatIntensity(spec), [SAMPLE_TYPE_FIELD]: sampleType, ...(o.toGrey ? { to_grey: true } : {}) } };
}
