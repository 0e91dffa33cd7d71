import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { zipSync } from 'fflate';
import type { Backend } from '../../backend/backend.js';
import { EmsegError } from '../../errors.js';
import { formatIntensity, normaliseSection, parseIntensity, type IntensitySpec } from '../../image/intensity.js';
import { encodePng } from '../../io/png.js';
import { sampleTypeOf, type SampleType, type StackData } from '../../image/stack.js';
import { CLOSE_GAPS_META_KEY, INTENSITY_FIELD, intensityRecord, META_FILE, type LoadedModel } from '../../models/model-dir.js';
import type { SegmentOptions } from '../../segment/index.js';
import { MEMBRANE_CLASS } from '../../infer/predict.js';
import { exportGeometry } from '../geometry.js';
import { buildOnnx, INPUT_NAME, OUTPUT_NAME } from '../onnx/export.js';
import { OPSET_VERSION } from '../onnx/proto.js';
import { referencePrediction } from '../reference.js';
import { checkModelRdf } from './check.js';
import { encodeNpy, type NpyArray } from './npy.js';
import { preprocessingFor } from './preprocessing.js';
import { packageReadme } from './readme.js';
import { writeYaml, type YamlValue } from './yaml.js';

/** The model spec version written (bioimage.io model 0.5.x). */
export const FORMAT_VERSION = '0.5.4';
/** Files inside the package. */
export const FILES = { rdf: 'rdf.yaml', weights: 'model.onnx', readme: 'README.md', cover: 'cover.png',
  testInput: 'test_input.npy', testOutput: 'test_output.npy' } as const;
/** Test tensors are at least this many pixels a side (when the sample is that large): big enough to show structure. */
const TEST_SIZE = 256;
const CITATIONS = [
  { text: 'Fakhry, Peng & Ji (2016). Deep models for brain EM image segmentation: novel insights and improved performance. Bioinformatics 32(15).',
    doi: '10.1093/bioinformatics/btw165' },
  { text: 'Arganda-Carreras et al. (2015). Crowdsourcing the creation of image segmentation algorithms for connectomics (ISBI 2012 challenge). Front. Neuroanat.',
    doi: '10.3389/fnana.2015.00142' },
];
const CLASS_NAMES = ['interior', 'membrane'];
/** Entry times in the zip are fixed, so exporting the same model twice gives the same bytes (the DOS epoch + 1 day). */
const ZIP_TIME = new Date(Date.UTC(1980, 0, 2));
const TAGS = ['electron-microscopy', 'membrane-segmentation', 'connectomics', 'semantic-segmentation', '2d', 'onnx', 'emseg'];

export interface SampleSection {
  path: string;
  width: number;
  height: number;
  data: StackData;
}

export interface BioimageioOptions {
  models: readonly LoadedModel[];
  /** The model or ensemble directory's meta.json (description, scores). */
  meta: Record<string, unknown>;
  name: string;
  authors: string[];
  license: string;
  emsegVersion: string;
  /** The command line, recorded in the README. */
  command: string;
  sample: SampleSection;
  backend: Backend;
  /** The gap-closing options tuned for the model (meta.json "close_gaps" over the defaults), when it has a record. */
  closeGaps?: SegmentOptions;
}

export interface BioimageioPackage {
  zip: Uint8Array;
  rdf: { [key: string]: YamlValue };
  files: Map<string, Uint8Array>;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The members' common intensity rule and the sample type it applies to; refuses what a package cannot say. */
function intensityOf(models: readonly LoadedModel[], sample: SampleSection): { spec: IntensitySpec; type: SampleType } {
  const records = models.map((m) => ({ ...intensityRecord(m.meta), dir: m.dir }));
  const first = records[0]!;
  const other = records.find((r) => r.intensity !== first.intensity);
  if (other) {
    throw new EmsegError('unsupported-export', other.dir, `was trained with --intensity ${other.intensity}, ${first.dir} with ${first.intensity}: `
      + 'one package has one preprocessing');
  }
  const spec = parseIntensity(first.intensity, `${first.dir}/${META_FILE} data.${INTENSITY_FIELD}`);
  const type = sampleTypeOf(sample.data);
  const trained = records.find((r) => r.sampleType !== undefined && r.sampleType !== type);
  if (trained && (spec.kind === 'dtype' || spec.kind === 'auto' || spec.kind === 'range')) {
    throw new EmsegError('invalid-option', '--sample', `${sample.path} is ${type}, but ${trained.dir} was trained on ${trained.sampleType} `
      + `images scaled by --intensity ${first.intensity}; give a ${trained.sampleType} sample section`);
  }
  return { spec, type };
}

/** The centred square crop of the sample used as test input: min + k*step pixels, about TEST_SIZE. */
function testCrop(sample: SampleSection, min: number, step: number): { data: StackData; size: number } {
  const fit = Math.min(sample.width, sample.height);
  if (fit < min) {
    throw new EmsegError('invalid-option', '--sample', `${sample.path} is ${sample.width}x${sample.height}; the test tensor needs at least ${min}x${min}`);
  }
  const size = Math.min(min + Math.ceil(Math.max(TEST_SIZE - min, 0) / step) * step, min + Math.floor((fit - min) / step) * step);
  const top = Math.floor((sample.height - size) / 2);
  const left = Math.floor((sample.width - size) / 2);
  const data = new (sample.data.constructor as new (n: number) => StackData)(size * size);
  for (let y = 0; y < size; y++) data.set(sample.data.subarray((top + y) * sample.width + left, (top + y) * sample.width + left + size), y * size);
  return { data, size };
}

/** The cover: the test section beside its membrane map (white = membrane), 2:1 as bioimage.io suggests. */
function coverImage(input: Float32Array, membrane: Float32Array, size: number): Uint8Array {
  const px = new Uint8Array(2 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      px[y * 2 * size + x] = Math.round(255 * Math.min(1, Math.max(0, input[y * size + x]!)));
      px[y * 2 * size + size + x] = Math.round(255 * membrane[y * size + x]!);
    }
  }
  return encodePng(px, 2 * size, size);
}

/**
 * A bioimage.io model package (zip): rdf.yaml (model spec 0.5), the ONNX graph, test tensors computed by emseg's own
 * forward pass (not by the exported graph, so a consumer's test compares two implementations), a README and a cover.
 * The rdf is checked against the spec's rules before anything is returned.
 */
export function buildBioimageioPackage(o: BioimageioOptions): BioimageioPackage {
  const wide = o.models.find((m) => m.spec.input.sections !== 1);
  if (wide) {
    throw new EmsegError('unsupported-export', o.name, `${wide.spec.name} reads ${wide.spec.input.sections} sections at once; bioimage.io `
      + 'packages are written for 2D models (one section, one grey channel); export it as ONNX (its metadata input_sections says which sections the channels are)');
  }
  const { spec: intensity, type } = intensityOf(o.models, o.sample);
  const onnx = buildOnnx(o.models, { name: o.name, description: describe(o), producerVersion: o.emsegVersion,
    metadata: { membrane_channel: String(MEMBRANE_CLASS), intensity: formatIntensity(intensity),
      ...(o.closeGaps ? { [CLOSE_GAPS_META_KEY]: JSON.stringify(o.closeGaps) } : {}) } });
  const geometries = o.models.map((m) => exportGeometry(m.spec));
  const halo = Math.max(...geometries.map((g) => g.halo));
  const step = geometries.reduce((s, g) => lcm(s, g.step), 1);
  const min = Math.ceil((2 * halo + 1) / step) * step;
  const crop = testCrop(o.sample, min, step);
  const input = normaliseSection(intensity, crop.data, { source: o.sample.path, page: 0, index: 0 });
  const output = referencePrediction(o.models, o.backend, input, crop.size, crop.size);
  const membrane = output.subarray(MEMBRANE_CLASS * crop.size * crop.size, (MEMBRANE_CLASS + 1) * crop.size * crop.size);
  const files = new Map<string, Uint8Array>([
    [FILES.weights, onnx.bytes],
    [FILES.testInput, encodeNpy(crop.data as NpyArray, [1, 1, crop.size, crop.size])],
    [FILES.testOutput, encodeNpy(output, [1, onnx.classes, crop.size, crop.size])],
    [FILES.cover, coverImage(input, membrane, crop.size)],
    [FILES.readme, Buffer.from(packageReadme({ name: o.name, description: describe(o), members: o.models.map((m) => basename(m.dir)),
      intensity: formatIntensity(intensity), inputType: type, halo, step, minSize: min, emsegVersion: o.emsegVersion, command: o.command,
      scores: (o.meta.evaluation as { scores?: Record<string, unknown> } | undefined)?.scores, closeGaps: o.closeGaps }), 'utf8')],
  ]);
  const rdf = modelRdf(o, files, { intensity, type, halo, step, min, classes: onnx.classes });
  const problems = checkModelRdf(rdf, files);
  if (problems.length) throw new EmsegError('internal', FILES.rdf, `the package would not follow the model spec: ${problems.join('; ')}`);
  const rdfBytes = Buffer.from(writeYaml(rdf), 'utf8');
  const entries: Record<string, Uint8Array> = { [FILES.rdf]: rdfBytes };
  for (const [name, bytes] of files) entries[name] = bytes;
  files.set(FILES.rdf, rdfBytes);
  return { zip: zipSync(entries, { mtime: ZIP_TIME }), rdf, files };
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a * b) / gcd(a, b);
}

function describe(o: BioimageioOptions): string {
  const text = typeof o.meta.description === 'string' ? o.meta.description : o.models[0]!.spec.description ?? '';
  return `Membrane probability maps of 2-d electron-microscopy sections (emseg, ${o.models.map((m) => m.spec.name).join(' + ')}). ${text}`.trim();
}

interface RdfFacts {
  intensity: IntensitySpec;
  type: SampleType;
  halo: number;
  step: number;
  min: number;
  classes: number;
}

function modelRdf(o: BioimageioOptions, files: Map<string, Uint8Array>, f: RdfFacts): { [key: string]: YamlValue } {
  const file = (name: string) => ({ source: name, sha256: sha256(files.get(name)!) });
  const space = (id: string) => ({ type: 'space', id, size: { min: f.min, step: f.step } });
  const outSpace = (id: string) => ({ type: 'space', id, size: { tensor_id: INPUT_NAME, axis_id: id }, halo: f.halo });
  const classNames = f.classes === CLASS_NAMES.length ? CLASS_NAMES : Array.from({ length: f.classes }, (_, k) => `class${k}`);
  return {
    type: 'model',
    format_version: FORMAT_VERSION,
    name: o.name,
    description: describe(o),
    authors: o.authors.map((name) => ({ name })),
    cite: CITATIONS,
    license: o.license,
    documentation: FILES.readme,
    covers: [FILES.cover],
    tags: TAGS,
    inputs: [{
      id: INPUT_NAME,
      description: `grey EM section (${f.type}); preprocessing = emseg --intensity ${formatIntensity(f.intensity)}`,
      axes: [{ type: 'batch' }, { type: 'channel', channel_names: ['raw'] }, space('y'), space('x')],
      test_tensor: file(FILES.testInput),
      data: { type: f.type },
      preprocessing: preprocessingFor(f.intensity, f.type),
    }],
    outputs: [{
      id: OUTPUT_NAME,
      description: `class probabilities; channel ${MEMBRANE_CLASS} ("membrane") is the membrane probability: high = membrane`,
      axes: [{ type: 'batch' }, { type: 'channel', channel_names: classNames }, outSpace('y'), outSpace('x')],
      test_tensor: file(FILES.testOutput),
      data: { type: 'float32', range: [0, 1] },
      postprocessing: [],
    }],
    weights: { onnx: { ...file(FILES.weights), opset_version: OPSET_VERSION } },
    config: { emseg: { version: o.emsegVersion, models: o.models.map((m) => m.spec.name), membrane_channel: MEMBRANE_CLASS,
      intensity: formatIntensity(f.intensity), ...(o.closeGaps ? { [CLOSE_GAPS_META_KEY]: { ...o.closeGaps } } : {}) } },
  };
}
