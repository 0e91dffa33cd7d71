import { createHash } from 'node:crypto';
import { decodeNpy } from './npy.js';
import type { YamlValue } from './yaml.js';

/**
 * Checks a model rdf (bioimage.io model spec 0.5) and the files of its package against the spec's rules that an
 * export can get wrong: required fields, file references and their sha256, test tensors whose shapes fit the
 * declared axes (parameterised sizes min + k*step, size references, channel names), halos smaller than half the
 * smallest input, known pre/postprocessing. Returns the problems found, each naming the field.
 */

type Obj = { [key: string]: YamlValue };

const FORMAT_VERSION = /^0\.5\.\d+$/;
const MAX_NAME_LENGTH = 128;
const PROCESSING_IDS = new Set(['binarize', 'clip', 'ensure_dtype', 'scale_linear', 'sigmoid',
  'fixed_zero_mean_unit_variance', 'zero_mean_unit_variance', 'scale_range', 'scale_mean_variance']);
const DATA_TYPES = new Set(['float32', 'float64', 'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64', 'bool']);
const NPY_TYPES: Record<string, string> = { Uint8Array: 'uint8', Uint16Array: 'uint16', Uint32Array: 'uint32', Float32Array: 'float32' };
/** Oldest ONNX opset the spec accepts. */
const MIN_OPSET = 7;

const isObj = (v: YamlValue | undefined): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isList = (v: YamlValue | undefined): v is YamlValue[] => Array.isArray(v);
const isText = (v: YamlValue | undefined): v is string => typeof v === 'string' && v.trim() !== '';
const isCount = (v: YamlValue | undefined): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

interface TensorShapes {
  /** id -> axis id -> size of the test tensor. */
  sizes: Map<string, Map<string, number>>;
  /** id -> axis id -> smallest allowed size (inputs). */
  minimum: Map<string, Map<string, number>>;
}

export function checkModelRdf(rdf: Obj, files: ReadonlyMap<string, Uint8Array>): string[] {
  const problems: string[] = [];
  const need = (ok: boolean, field: string, why: string) => { if (!ok) problems.push(`${field}: ${why}`); };
  need(rdf.type === 'model', 'type', 'must be "model"');
  need(typeof rdf.format_version === 'string' && FORMAT_VERSION.test(rdf.format_version), 'format_version', 'must be 0.5.x');
  need(isText(rdf.name) && (rdf.name as string).length <= MAX_NAME_LENGTH, 'name', `must be a non-empty text of at most ${MAX_NAME_LENGTH} characters`);
  need(isText(rdf.description), 'description', 'is required');
  need(isText(rdf.license), 'license', 'is required (an SPDX identifier)');
  need(isList(rdf.authors) && rdf.authors.length > 0 && rdf.authors.every((a) => isObj(a) && isText(a.name)), 'authors', 'needs at least one author with a name');
  need(isList(rdf.cite) && rdf.cite.length > 0 && rdf.cite.every((c) => isObj(c) && isText(c.text) && (isText(c.doi) || isText(c.url))),
    'cite', 'needs at least one entry with text and a doi or url');
  const fileOk = (ref: YamlValue | undefined, field: string) => need(isText(ref) && files.has(ref as string), field, `names no file of the package (${String(ref)})`);
  fileOk(rdf.documentation, 'documentation');
  if (isList(rdf.covers)) rdf.covers.forEach((c, i) => fileOk(c, `covers[${i}]`));
  const shapes: TensorShapes = { sizes: new Map(), minimum: new Map() };
  for (const kind of ['inputs', 'outputs'] as const) {
    const tensors = rdf[kind];
    if (!isList(tensors) || tensors.length === 0) {
      problems.push(`${kind}: needs at least one tensor`);
      continue;
    }
    tensors.forEach((t, i) => checkTensor(t, `${kind}[${i}]`, kind === 'inputs', files, shapes, problems));
  }
  if (isList(rdf.outputs)) rdf.outputs.forEach((t, i) => checkSizes(t, `outputs[${i}]`, shapes, problems));
  checkWeights(rdf.weights, files, problems);
  return problems;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkFile(ref: YamlValue | undefined, field: string, files: ReadonlyMap<string, Uint8Array>, problems: string[]): Uint8Array | null {
  if (!isObj(ref) || !isText(ref.source)) {
    problems.push(`${field}: needs a source`);
    return null;
  }
  const bytes = files.get(ref.source as string);
  if (!bytes) {
    problems.push(`${field}.source: names no file of the package (${ref.source as string})`);
    return null;
  }
  if (ref.sha256 !== sha256(bytes)) problems.push(`${field}.sha256: does not match ${ref.source as string}`);
  return bytes;
}

function checkTensor(t: YamlValue, field: string, input: boolean, files: ReadonlyMap<string, Uint8Array>, shapes: TensorShapes,
  problems: string[]): void {
  if (!isObj(t) || !isText(t.id) || !isList(t.axes)) {
    problems.push(`${field}: needs an id and axes`);
    return;
  }
  const id = t.id as string;
  if (shapes.sizes.has(id)) problems.push(`${field}.id: "${id}" is used twice`);
  const bytes = checkFile(t.test_tensor, `${field}.test_tensor`, files, problems);
  let npy: ReturnType<typeof decodeNpy> | null = null;
  try {
    npy = bytes ? decodeNpy(bytes, `${field}.test_tensor`) : null;
  } catch (err) {
    problems.push(`${field}.test_tensor: ${(err as Error).message}`);
  }
  const data = isObj(t.data) ? t.data : {};
  need(typeof data.type === 'string' && DATA_TYPES.has(data.type), `${field}.data.type`, 'is not a data type of the spec', problems);
  if (npy) {
    const npyType = NPY_TYPES[npy.data.constructor.name];
    need(npyType === data.type, `${field}.data.type`, `is ${String(data.type)} but the test tensor holds ${npyType}`, problems);
    need(npy.shape.length === t.axes.length, `${field}.axes`, `${t.axes.length} axes, but the test tensor has ${npy.shape.length}`, problems);
  }
  const sizes = new Map<string, number>();
  const minimum = new Map<string, number>();
  t.axes.forEach((a, k) => {
    const at = `${field}.axes[${k}]`;
    if (!isObj(a) || !['batch', 'channel', 'space', 'index', 'time'].includes(a.type as string)) {
      problems.push(`${at}: unknown axis`);
      return;
    }
    const axisId = (a.id as string | undefined) ?? (a.type === 'batch' || a.type === 'channel' ? (a.type as string) : '');
    if (sizes.has(axisId)) problems.push(`${at}.id: "${axisId}" is used twice`);
    const size = npy?.shape[k] ?? 0;
    sizes.set(axisId, size);
    if (a.type === 'channel') {
      need(isList(a.channel_names) && a.channel_names.length === size, `${at}.channel_names`, `must name the test tensor's ${size} channels`, problems);
    } else if (a.type === 'space' && isObj(a.size) && isCount(a.size.min) && isCount(a.size.step)) {
      const { min, step } = a.size as { min: number; step: number };
      minimum.set(axisId, min);
      need(size >= min && (step === 0 ? size === min : (size - min) % step === 0), `${at}.size`,
        `the test tensor's ${size} is not ${min} + k * ${step}`, problems);
    } else if (a.type === 'space' && input && !isCount(a.size) && !isObj(a.size)) {
      problems.push(`${at}.size: is required`);
    }
    if (a.halo !== undefined) need(input === false && isObj(a.size) && a.size.tensor_id !== undefined, `${at}.halo`, 'is for output axes whose size references an input', problems);
  });
  shapes.sizes.set(id, sizes);
  shapes.minimum.set(id, minimum);
  const steps = input ? t.preprocessing : t.postprocessing;
  if (steps !== undefined) {
    need(isList(steps) && steps.every((s) => isObj(s) && PROCESSING_IDS.has(s.id as string)),
      `${field}.${input ? 'pre' : 'post'}processing`, 'has a step the spec does not know', problems);
  }
}

/** Output sizes that reference an input must equal it (+ offset) on the test tensors; halos must leave data. */
function checkSizes(t: YamlValue, field: string, shapes: TensorShapes, problems: string[]): void {
  if (!isObj(t) || !isList(t.axes)) return;
  const own = shapes.sizes.get(t.id as string);
  t.axes.forEach((a, k) => {
    if (!isObj(a) || !isObj(a.size) || a.size.tensor_id === undefined) return;
    const at = `${field}.axes[${k}]`;
    const ref = shapes.sizes.get(a.size.tensor_id as string)?.get(a.size.axis_id as string);
    const offset = typeof a.size.offset === 'number' ? a.size.offset : 0;
    if (ref === undefined) {
      problems.push(`${at}.size: references an unknown tensor axis`);
      return;
    }
    need(own?.get(a.id as string) === ref + offset, `${at}.size`, `the test tensor is ${own?.get(a.id as string)}, the reference says ${ref + offset}`, problems);
    if (a.halo !== undefined) {
      const min = shapes.minimum.get(a.size.tensor_id as string)?.get(a.size.axis_id as string) ?? ref;
      need(isCount(a.halo) && 2 * (a.halo as number) < min + offset, `${at}.halo`, `2 x ${String(a.halo)} must be smaller than the smallest size ${min + offset}`, problems);
    }
  });
}

function checkWeights(weights: YamlValue | undefined, files: ReadonlyMap<string, Uint8Array>, problems: string[]): void {
  if (!isObj(weights) || Object.keys(weights).length === 0) {
    problems.push('weights: needs at least one weights format');
    return;
  }
  const onnx = weights.onnx;
  if (onnx === undefined) return;
  checkFile(onnx, 'weights.onnx', files, problems);
  need(isObj(onnx) && isCount(onnx.opset_version) && (onnx.opset_version as number) >= MIN_OPSET, 'weights.onnx.opset_version',
    `must be an opset of at least ${MIN_OPSET}`, problems);
}

function need(ok: boolean, field: string, why: string, problems: string[]): void {
  if (!ok) problems.push(`${field}: ${why}`);
}
