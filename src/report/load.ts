/** Loads labels, prediction and (optionally) raw images as whole stacks for the metrics, checking them against each other. */
import { parseIntensity, sectionNormaliser } from '../image/intensity.js';
import {
  DEFAULT_POLARITY,
  EmsegIoError,
  LABEL_POLARITIES,
  MAX_STACK_ELEMENTS,
  descriptionAttributes,
  labelsToMask,
  openStack,
  type LabelPolarity,
  type ReadOptions,
  type Slice,
  type StackReader,
} from '../io/index.js';
import { toFloat32, type ImageStack } from '../image/stack.js';
import { ISBI_POLARITY, convertValue, decideMapPolarity, flagPolarity, type MapPolarity } from '../image/map-meaning.js';
import { MembraneCount, ValueSpread, recordedAsMap } from '../io/plausibility.js';
import { EmsegError } from '../errors.js';
import { cellBoundaryMap, type CellLabels } from '../metrics/index.js';
import { openSections } from '../io/volume-slices.js';

/** Where one section came from, for captions and error messages. */
export interface SectionSource {
  file: string;
  /** Page within the file, from 0. */
  page: number;
}

export interface LoadedInputs {
  /** Metric convention: 0 = membrane, 1 = interior. */
  gt: ImageStack<Uint8Array>;
  /** Probability of non-membrane in [0, 1] (flipped already when the file held P(membrane)). */
  proposal: ImageStack<Float32Array>;
  /** Raw EM intensities in [0, 1], when asked for. */
  images?: ImageStack<Float32Array>;
  labelFiles: string[];
  predictionFiles: string[];
  imageFiles?: string[];
  /** Source of each prediction section. */
  sources: SectionSource[];
  /** What the prediction's values meant (flag, record or ISBI); the proposal is P(non-membrane) either way. */
  mapPolarity: MapPolarity;
}

export interface LoadOptions {
  labels: string | readonly string[];
  prediction: string | readonly string[];
  images?: string | readonly string[];
  /** How the raw images become [0,1] for display (an --intensity rule; default: divided by the type's full range). */
  imagesIntensity?: string;
  /** Reduce colour raw images to their luma instead of refusing them. */
  imagesToGrey?: boolean;
  /** Omitted: the ISBI default, and labels that then read as mostly membrane are refused (they look inverted). */
  polarity?: LabelPolarity;
  /** The prediction holds P(membrane) (true) or the ISBI polarity (false); omitted: what the maps record, else ISBI. */
  membraneProb?: boolean;
  /** The prediction is a membrane map even if its values are spread like a raw image's (an untrained model's map). */
  predIsMap?: boolean;
  /** The prediction is a 2-D cell segmentation (label stack): scored as the map of where its cells meet (metrics/cell-map.ts). */
  cells?: boolean;
  /** Where warnings go (labels that read as mostly membrane with a polarity the user gave). */
  notice?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

const where = (r: StackReader): string => (r.files.length === 1 ? r.files[0]! : `${r.files[0]} .. ${r.files.at(-1)} (${r.files.length} files)`);
/** The input as the user gave it when it is one path (a folder, a file), else its files. */
const named = (input: string | readonly string[], r: StackReader): string => (typeof input === 'string' ? input : where(r));
const size = (r: StackReader): string => `${r.width}x${r.height} with ${r.depth} section${r.depth === 1 ? '' : 's'}`;

/** A path as PNG/TIFF files or a volume (HDF5, OME-Zarr) read section by section; a list is PNG/TIFF files. */
function sectionsOf(path: string | readonly string[], options: ReadOptions = {}): Promise<StackReader> {
  return typeof path === 'string' ? openSections(path, options) : openStack(path, options);
}

function checkPair(what: string, other: StackReader, labels: StackReader): void {
  if (other.width !== labels.width || other.height !== labels.height || other.depth !== labels.depth) {
    throw new EmsegIoError('mismatch', where(other), `${what} is ${size(other)} but the labels ${where(labels)} are ${size(labels)}; they must match section for section`);
  }
}

function pageText(s: Slice): string {
  return s.page > 0 || s.index > 0 ? ` (section ${s.index}, page ${s.page + 1})` : '';
}

/** A slice of cell labels: whole numbers (a float image is a map, not cells). */
function cellLabels(s: Slice): CellLabels {
  if (s.data instanceof Float32Array || s.data instanceof Float64Array) {
    throw new EmsegIoError('invalid-data', s.source, `holds floating-point values${pageText(s)}; --cells are integer cell labels (emseg segment's output), a map is --pred`);
  }
  return s.data as CellLabels;
}

/** Checks and converts one prediction slice of `polarity` in place: values in [0, 1], as the metrics' P(non-membrane). */
function toProposal(s: Slice, polarity: MapPolarity): Float32Array {
  const p = toFloat32(s.data);
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    if (!(v >= 0 && v <= 1)) {
      const at = `pixel (${i % s.width}, ${Math.floor(i / s.width)})${pageText(s)}`;
      throw new EmsegIoError('invalid-data', s.source, `prediction value ${v} at ${at} is ${Number.isNaN(v) ? 'NaN' : 'outside [0, 1]'}; expected a probability (of non-membrane, or of membrane with --membrane-prob)`);
    }
    p[i] = convertValue(v, polarity, ISBI_POLARITY);
  }
  return p;
}

export async function loadInputs(o: LoadOptions): Promise<LoadedInputs> {
  const polarity = o.polarity ?? DEFAULT_POLARITY;
  if (!LABEL_POLARITIES.includes(polarity)) {
    throw new EmsegError('invalid-option', 'polarity', `unknown label polarity "${String(polarity)}"; use one of ${LABEL_POLARITIES.join(', ')}`);
  }
  const labels = await sectionsOf(o.labels);
  const prediction = await sectionsOf(o.prediction);
  checkPair('prediction', prediction, labels);
  const images = o.images === undefined ? undefined : await sectionsOf(o.images, { colour: o.imagesToGrey ? 'to-grey' : 'reject' });
  const display = o.imagesIntensity === undefined ? (s: Slice) => toFloat32(s.data) : sectionNormaliser(parseIntensity(o.imagesIntensity));
  if (images) checkPair('image stack', images, labels);
  const { width, height, depth } = labels;
  const n = width * height;
  if (n * depth > MAX_STACK_ELEMENTS) {
    throw new EmsegIoError('too-large', where(labels), `${width}x${height}x${depth} is too large to evaluate at once`);
  }

  const total = depth * (images ? 3 : 2);
  let done = 0;
  const step = (): void => o.onProgress?.(++done, total);

  const gt: ImageStack<Uint8Array> = { width, height, depth, data: new Uint8Array(n * depth) };
  const membraneCount = new MembraneCount();
  for await (const s of labels.slices()) {
    const membrane = labelsToMask(s.data, polarity, s.source);
    membraneCount.add(membrane);
    const out = gt.data.subarray(s.index * n, (s.index + 1) * n);
    for (let i = 0; i < n; i++) out[i] = 1 - membrane[i]!;
    step();
  }
  membraneCount.check(polarity, o.polarity !== undefined, named(o.labels, labels), o.notice);
  const proposal: ImageStack<Float32Array> = { width, height, depth, data: new Float32Array(n * depth) };
  const sources: SectionSource[] = [];
  const attributes = descriptionAttributes(prediction.description);
  // What the values mean: the flag, else the polarity the maps record (emseg predict's TIFF maps do), else ISBI;
  // decided here once, as for segment (a multi-channel map is refused). Cells are a map of their own making.
  const meaning = o.cells ? ISBI_POLARITY : decideMapPolarity(attributes, prediction.files[0]!, { given: flagPolarity(o.membraneProb) });
  // A raw image given as the prediction scores as garbage with no error: refused by its value spread.
  const spread = o.cells || o.predIsMap || recordedAsMap(attributes) ? undefined : new ValueSpread();
  for await (const s of prediction.slices()) {
    spread?.add(s.data);
    const section = proposal.data.subarray(s.index * n, (s.index + 1) * n);
    if (o.cells) cellBoundaryMap(cellLabels(s), width, height, section);
    else section.set(toProposal(s, meaning));
    sources.push({ file: s.source, page: s.page });
    step();
  }
  spread?.check(named(o.prediction, prediction));
  let raw: ImageStack<Float32Array> | undefined;
  if (images) {
    raw = { width, height, depth, data: new Float32Array(n * depth) };
    for await (const s of images.slices()) {
      raw.data.set(display(s), s.index * n);
      step();
    }
  }
  return {
    gt,
    proposal,
    ...(raw ? { images: raw, imageFiles: images!.files } : {}),
    labelFiles: labels.files,
    predictionFiles: prediction.files,
    mapPolarity: meaning,
    sources,
  };
}
