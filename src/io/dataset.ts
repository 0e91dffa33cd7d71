/** A dataset = grey images + binary membrane labels, paired slice by slice with explicit label polarity. */
import { EmsegIoError } from './errors.js';
import { MAX_STACK_ELEMENTS } from './limits.js';
import type { LabelPolarity } from './label-polarity.js';
import { MembraneCount } from './plausibility.js';
import { openStack } from './stack.js';
import { fullScale, sampleTypeOf, toFloat32 } from '../image/stack.js';
import type { ReadOptions, Slice, StackReader } from './stack.js';
import type { ImageStack, StackData } from '../image/stack.js';
import { UNKNOWN_CLASS } from '../image/affinities.js';

export type { LabelPolarity };

export interface DatasetOptions extends ReadOptions {
  /** File, folder, glob or list of them. */
  images: string | readonly string[];
  /** Same forms; omit for images only (inference). */
  labels?: string | readonly string[];
  /**
   * How the labels encode membrane. Omitted: the ISBI default, and labels that then read as mostly membrane are
   * refused (code 'polarity', they look inverted); given: the user's choice, and such labels only get a warning.
   */
  polarity?: LabelPolarity;
  /** Where that warning goes (the CLI prints it on stderr). */
  notice?: (line: string) => void;
  /** Image slice to network input in [0,1]; default toFloat32 (divide by the type's full range). */
  toFloat?: (slice: Slice) => Float32Array;
}

/** One image slice as float32 raw intensities in [0,1], and its mask (1 = membrane, 0 = interior). */
export interface DatasetSlice {
  index: number;
  width: number;
  height: number;
  image: Float32Array;
  label?: Uint8Array;
  imageFile: string;
  labelFile?: string;
}

export interface Dataset {
  images: ImageStack<Float32Array>;
  /** 1 = membrane, 0 = interior. */
  labels?: ImageStack<Uint8Array>;
  imageFiles: string[];
  labelFiles: string[];
}

/** The ISBI 2012 labels' polarity: what labels are read as unless the user says otherwise. */
export const DEFAULT_POLARITY: LabelPolarity = 'membrane-0-interior-255';

export const LABEL_POLARITIES = ['membrane-0-interior-255', 'membrane-255-interior-0', 'membrane-1-interior-0', 'membrane-0-interior-1',
  'membrane-0-interior-max', 'membrane-max-interior-0'] as const satisfies readonly LabelPolarity[];

/** 'max' stands for the label slice's full scale. */
const POLARITY_VALUES: Record<LabelPolarity, { membrane: number | 'max'; interior: number | 'max' }> = {
  'membrane-0-interior-255': { membrane: 0, interior: 255 },
  'membrane-255-interior-0': { membrane: 255, interior: 0 },
  'membrane-1-interior-0': { membrane: 1, interior: 0 },
  'membrane-0-interior-1': { membrane: 0, interior: 1 },
  'membrane-0-interior-max': { membrane: 0, interior: 'max' },
  'membrane-max-interior-0': { membrane: 'max', interior: 0 },
};

export function polarityValues(polarity: LabelPolarity): { membrane: number | 'max'; interior: number | 'max' } {
  const values = POLARITY_VALUES[polarity];
  if (!values) {
    throw new EmsegIoError('invalid-option', String(polarity), `unknown label polarity; use one of ${LABEL_POLARITIES.join(', ')}`);
  }
  return values;
}

/**
 * Label slice to mask (1 = membrane). Any value other than the polarity's two is an error naming the file, except
 * `ignore` when given: those pixels become UNKNOWN_CLASS (no loss).
 */
export function labelsToMask(data: StackData, polarity: LabelPolarity, path: string, ignore?: number): Uint8Array {
  const values = polarityValues(polarity);
  const max = fullScale(sampleTypeOf(data));
  const membrane = values.membrane === 'max' ? max : values.membrane;
  const interior = values.interior === 'max' ? max : values.interior;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v === membrane) out[i] = 1;
    else if (v === ignore) out[i] = UNKNOWN_CLASS;
    else if (v !== interior) throw notBinary(data, i, polarity, path);
  }
  return out;
}

function notBinary(data: StackData, i: number, polarity: LabelPolarity, path: string): EmsegIoError {
  const seen = new Set<number>();
  for (let k = 0; k < data.length && seen.size < 6; k++) seen.add(data[k]!);
  const values = [...seen].sort((a, b) => a - b).join(', ');
  const hint = seen.size <= 2 ? ` (values ${values}: pick the matching polarity, one of ${LABEL_POLARITIES.join(', ')}; 'max' = ${fullScale(sampleTypeOf(data))} here)` : ` (values include ${values})`;
  return new EmsegIoError('not-binary', path, `label pixel ${i} is ${data[i]}, but polarity ${polarity} allows only its two values${hint}`);
}

/** Opens images and labels and checks the pairs (count and size) before any pixel is read. */
async function openPairs(options: DatasetOptions): Promise<{ images: StackReader; labels?: StackReader }> {
  polarityValues(options.polarity ?? DEFAULT_POLARITY); // fail on a bad option before any file is read
  const images = await openStack(options.images, options);
  if (options.labels === undefined) return { images };
  const labels = await openStack(options.labels, options);
  if (labels.depth !== images.depth) {
    throw new EmsegIoError('mismatch', labels.files[0]!, `${labels.depth} label slices (${describeFiles(labels)}) but ${images.depth} image slices (${describeFiles(images)}); they must pair one to one`);
  }
  if (labels.width !== images.width || labels.height !== images.height) {
    throw new EmsegIoError('mismatch', labels.files[0]!, `labels are ${labels.width}x${labels.height} but images (${images.files[0]}) are ${images.width}x${images.height}`);
  }
  return { images, labels };
}

function describeFiles(r: StackReader): string {
  return r.files.length === 1 ? r.files[0]! : `${r.files[0]} .. ${r.files.at(-1)}, ${r.files.length} files`;
}

/** Image/label pairs one slice at a time (for stacks too large to hold). */
export async function* iterateDataset(options: DatasetOptions): AsyncGenerator<DatasetSlice> {
  yield* pairs(await openPairs(options), options);
}

async function* pairs({ images, labels }: { images: StackReader; labels?: StackReader }, options: DatasetOptions): AsyncGenerator<DatasetSlice> {
  const polarity = options.polarity ?? DEFAULT_POLARITY;
  const toFloat = options.toFloat ?? ((s: Slice) => toFloat32(s.data));
  const labelSlices = labels?.slices();
  const membrane = new MembraneCount();
  for await (const img of images.slices()) {
    const base = { index: img.index, width: img.width, height: img.height, image: toFloat(img), imageFile: img.source };
    if (!labelSlices) {
      yield base;
      continue;
    }
    const lab = (await labelSlices.next()).value;
    if (!lab) throw new EmsegIoError('mismatch', labels!.files.at(-1)!, 'label stack ended early (file changed while reading?)');
    const label = labelsToMask(lab.data, polarity, lab.source);
    membrane.add(label);
    yield { ...base, label, labelFile: lab.source };
  }
  // Judged on the whole stack (one odd section is no reason to refuse); a streaming reader learns it at the end.
  const named = typeof options.labels === 'string' ? options.labels : labels && describeFiles(labels);
  if (labels) membrane.check(polarity, options.polarity !== undefined, named!, options.notice);
}

/** Loads a whole dataset: images as float32 raw intensities, labels as a 1 = membrane mask. */
export async function loadDataset(options: DatasetOptions): Promise<Dataset> {
  const opened = await openPairs(options);
  const { images: reader, labels: labelReader } = opened;
  const { width, height, depth } = reader;
  const n = width * height;
  if (n * depth > MAX_STACK_ELEMENTS) {
    throw new EmsegIoError('too-large', reader.files[0]!, `dataset of ${width}x${height}x${depth} is too large to load at once; use iterateDataset`);
  }
  const images = { width, height, depth, data: new Float32Array(n * depth) };
  const labels = labelReader ? { width, height, depth, data: new Uint8Array(n * depth) } : undefined;
  for await (const s of pairs(opened, options)) {
    images.data.set(s.image, s.index * n);
    if (s.label) labels!.data.set(s.label, s.index * n);
  }
  return { images, labels, imageFiles: reader.files, labelFiles: labelReader?.files ?? [] };
}
