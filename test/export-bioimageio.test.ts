import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { unzipSync } from 'fflate';
import ort from 'onnxruntime-node';
import { checkModelRdf } from '../src/export/bioimageio/check.js';
import { decodeNpy, encodeNpy } from '../src/export/bioimageio/npy.js';
import { preprocessingFor } from '../src/export/bioimageio/preprocessing.js';
import { readYamlSubset, writeYaml, type YamlValue } from '../src/export/bioimageio/yaml.js';
import { decodeModelProto } from '../src/export/onnx/proto.js';
import { runExport } from '../src/export/run.js';
import { closeGapsOptions } from '../src/pipeline/close-gaps.js';
import { isEmsegError } from '../src/errors.js';
import { normaliseSection, parseIntensity } from '../src/image/intensity.js';
import { encodePng } from '../src/io/png.js';
import { probePlan, saveModel } from '../src/models/model-dir.js';
import { resolveSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { withInputSections } from '../src/nn/spec.js';
import { SAMPLE_IMAGES, SHIPPED_MODEL } from '../src/pipeline/assets.js';

type Obj = { [key: string]: YamlValue };
const TOLERANCE = 1e-4;
const SAMPLE = join(SAMPLE_IMAGES, '23.png');
const dir = mkdtempSync(join(tmpdir(), 'emseg-export-'));
const exportOptions = { format: 'bioimageio' as const, overwrite: false, sample: SAMPLE, emsegVersion: 'test', command: 'test' };

let files: Map<string, Uint8Array>;
let rdf: Obj;

before(async () => {
  const out = join(dir, 'emseg-isbi.zip');
  await runExport({ ...exportOptions, model: SHIPPED_MODEL, out });
  files = new Map(Object.entries(unzipSync(readFileSync(out))));
  rdf = readYamlSubset(Buffer.from(files.get('rdf.yaml')!).toString('utf8'), 'rdf.yaml') as Obj;
});

const get = (o: YamlValue, ...path: (string | number)[]): YamlValue =>
  path.reduce<YamlValue>((v, k) => (v as Record<string | number, YamlValue>)[k]!, o);

test('the shipped model\'s rdf.yaml follows the model spec 0.5 rules (fields, files, sha256, sizes, halo)', () => {
  assert.deepEqual(checkModelRdf(rdf, files), []);
  for (const field of ['type', 'format_version', 'name', 'description', 'authors', 'cite', 'license', 'documentation',
    'inputs', 'outputs', 'weights', 'covers']) assert.ok(rdf[field] !== undefined, field);
  assert.match(rdf.format_version as string, /^0\.5\.\d+$/);
  const dois = (rdf.cite as Obj[]).map((c) => c.doi);
  assert.deepEqual(dois, ['10.1093/bioinformatics/btw165', '10.3389/fnana.2015.00142']);
  // Sizes and halo, checked here directly against the test tensors.
  const input = decodeNpy(files.get(get(rdf, 'inputs', 0, 'test_tensor', 'source') as string)!, 'test input');
  const output = decodeNpy(files.get(get(rdf, 'outputs', 0, 'test_tensor', 'source') as string)!, 'test output');
  const { min, step } = get(rdf, 'inputs', 0, 'axes', 2, 'size') as { min: number; step: number };
  const halo = get(rdf, 'outputs', 0, 'axes', 2, 'halo') as number;
  const [, , h, w] = input.shape as [number, number, number, number];
  assert.ok((h - min) % step === 0 && (w - min) % step === 0 && h >= min);
  assert.ok(2 * halo < min, 'the halo leaves data in the smallest block');
  assert.deepEqual(output.shape, [1, 2, h, w]);
  assert.deepEqual(get(rdf, 'outputs', 0, 'axes', 1, 'channel_names'), ['interior', 'membrane']);
  const weights = files.get('model.onnx')!;
  assert.equal(get(rdf, 'weights', 'onnx', 'sha256'), createHash('sha256').update(weights).digest('hex'));
  assert.match(Buffer.from(files.get('README.md')!).toString('utf8'), /High values \(near 1\) mean membrane/);
});

test('the gap-closing setting tuned for the model travels with it: rdf.yaml config, README and ONNX metadata', () => {
  const { options, from } = closeGapsOptions([SHIPPED_MODEL], {});
  assert.equal(from, SHIPPED_MODEL, 'the shipped model carries a record');
  assert.deepEqual(get(rdf, 'config', 'emseg', 'close_gaps'), { ...options });
  assert.ok(Buffer.from(files.get('README.md')!).toString('utf8').includes(
    `--sigma ${options.sigma} --seed-threshold ${options.seedThreshold} --min-seed-area ${options.minSeedArea} ` +
    `--merge-threshold ${options.mergeThreshold} --extra-seed-threshold ${options.extraSeedThreshold}`));
  const proto = decodeModelProto(files.get('model.onnx')!) as { metadata_props: { key: string; value: string }[] };
  const entry = proto.metadata_props.find((p) => p.key === 'close_gaps');
  assert.deepEqual(JSON.parse(entry!.value), options);
});

/** The rdf's preprocessing, applied as a consumer would (only the steps this export writes). */
function preprocess(steps: Obj[], data: ArrayLike<number>): Float32Array {
  let x = Float32Array.from(data);
  for (const s of steps) {
    const k = (s.kwargs ?? {}) as Obj;
    if (s.id === 'ensure_dtype') continue;
    else if (s.id === 'scale_linear') x = x.map((v) => v * (k.gain as number) + (k.offset as number));
    else if (s.id === 'clip') x = x.map((v) => Math.min(k.max as number, Math.max(k.min as number, v)));
    else assert.fail(`unexpected preprocessing ${String(s.id)}`);
  }
  return x;
}

test('the package\'s test input, preprocessed as rdf.yaml says and run through model.onnx, gives its test output', async () => {
  const input = decodeNpy(files.get('test_input.npy')!, 'test input');
  const expected = decodeNpy(files.get('test_output.npy')!, 'test output');
  assert.ok(input.data instanceof Uint8Array, 'raw 8-bit test input');
  const x = preprocess(get(rdf, 'inputs', 0, 'preprocessing') as Obj[], input.data);
  const session = await ort.InferenceSession.create(files.get('model.onnx')!);
  const out = (await session.run({ raw: new ort.Tensor('float32', x, input.shape) })).probabilities!;
  await session.release();
  assert.deepEqual(out.dims, expected.shape);
  const got = out.data as Float32Array;
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - expected.data[i]!));
  assert.ok(max <= TOLERANCE, `max |onnx - test output| = ${max}`);
  const plane = got.length / 2;
  for (let i = 0; i < plane; i += 997) assert.ok(Math.abs(got[i]! + got[plane + i]! - 1) < 1e-5, 'channels sum to 1');
});

test('the rules catch broken packages and name the field', () => {
  const broken = (edit: (r: Obj) => void, extra?: (f: Map<string, Uint8Array>) => void) => {
    const r = JSON.parse(JSON.stringify(rdf)) as Obj;
    const f = new Map(files);
    edit(r);
    extra?.(f);
    return checkModelRdf(r, f).join('\n');
  };
  assert.match(broken((r) => { delete r.cite; }), /^cite:/m);
  assert.match(broken((r) => { (get(r, 'outputs', 0, 'axes', 2) as Obj).halo = 200; }), /outputs\[0\]\.axes\[2\]\.halo/);
  assert.match(broken((r) => { (get(r, 'inputs', 0, 'axes', 3, 'size') as Obj).step = 100; }), /inputs\[0\]\.axes\[3\]\.size/);
  assert.match(broken(() => {}, (f) => f.set('model.onnx', new Uint8Array([1, 2, 3]))), /weights\.onnx\.sha256/);
  assert.match(broken((r) => { (get(r, 'inputs', 0, 'data') as Obj).type = 'float32'; }), /inputs\[0\]\.data\.type/);
  assert.match(broken((r) => { r.documentation = 'missing.md'; }), /^documentation:/m);
});

test('preprocessing reproduces emseg\'s intensity rules (fixed range, dtype) on raw values', () => {
  const raw = Uint16Array.from([0, 100, 1000, 4095, 4200, 65535]);
  for (const rule of ['100,4095', 'dtype']) {
    const spec = parseIntensity(rule);
    const want = normaliseSection(spec, raw, { source: 'test', page: 0, index: 0 });
    const got = preprocess(preprocessingFor(spec, 'uint16') as Obj[], raw);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `${rule} at ${raw[i]}: ${v} vs ${want[i]}`));
  }
  const percentiles = preprocessingFor(parseIntensity('percentiles:1,99'), 'uint8') as Obj[];
  assert.deepEqual(percentiles.map((s) => s.id), ['ensure_dtype', 'scale_range', 'clip']);
  assert.deepEqual(get(percentiles[1]!, 'kwargs'), { axes: ['y', 'x'], min_percentile: 1, max_percentile: 99 });
});

test('the YAML writer quotes every string, so YAML\'s implicit types cannot change values, and reads back', () => {
  const doc: Obj = { plain: 'no', number_like: '1e3', colon: 'a: b', dash: '- x', quote: 'say "hi"\nback\\slash', unicode: 'µm',
    n: 0.1, big: 1e-7, yes: true, nothing: null, empty_list: [], empty_map: {}, nested: [[1, 2], { a: [{ b: 'c', d: [] }] }] };
  const text = writeYaml(doc);
  assert.match(text, /^plain: "no"$/m);
  assert.deepEqual(readYamlSubset(text, 'doc'), doc);
  assert.throws(() => writeYaml({ 'bad key': 1 }), (err) => isEmsegError(err, 'invalid-option'));
  assert.throws(() => writeYaml({ x: Number.NaN }), (err) => isEmsegError(err, 'invalid-option'));
});

test('.npy files follow the format: magic, version 1.0, 64-byte aligned header, little-endian C-order data', () => {
  const data = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
  const bytes = encodeNpy(data, [1, 2, 3]);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const headerLength = bytes[8]! | (bytes[9]! << 8);
  assert.equal((10 + headerLength) % 64, 0);
  assert.match(Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1'),
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(1, 2, 3\), \} *\n$/);
  assert.equal(new DataView(bytes.buffer, 10 + headerLength).getFloat32(0, true), 1.5);
  const back = decodeNpy(bytes, 'x.npy');
  assert.deepEqual([...back.data], [...data]);
  assert.deepEqual(back.shape, [1, 2, 3]);
  assert.throws(() => decodeNpy(bytes.subarray(0, 40), 'short.npy'), (err) => isEmsegError(err, 'corrupt'));
});

test('emseg export refuses bad input with EmsegErrors that name it, and writes ONNX that onnxruntime loads', async () => {
  await assert.rejects(runExport({ ...exportOptions, model: join(dir, 'nope'), out: join(dir, 'a.zip') }),
    (err) => isEmsegError(err, 'not-found') && err.path.endsWith('nope'));
  const existing = join(dir, 'exists.onnx');
  writeFileSync(existing, 'x');
  await assert.rejects(runExport({ ...exportOptions, format: 'onnx', model: SHIPPED_MODEL, out: existing }),
    (err) => isEmsegError(err, 'exists'));
  const tiny = join(dir, 'tiny.png');
  writeFileSync(tiny, encodePng(new Uint8Array(64 * 64).fill(128), 64, 64));
  await assert.rejects(runExport({ ...exportOptions, model: SHIPPED_MODEL, out: join(dir, 'b.zip'), sample: tiny }),
    (err) => isEmsegError(err, 'invalid-option') && err.path === '--sample');
  const wide = join(dir, 'wide');
  const spec = withInputSections(resolveSpec('reference-net'), 3);
  saveModel(wide, spec, initParams(probePlan(spec), 1), {});
  await assert.rejects(runExport({ ...exportOptions, model: wide, out: join(dir, 'c.zip') }),
    (err) => isEmsegError(err, 'unsupported-export') && /reads 3 sections/.test(err.message));
  assert.ok(!existsSync(join(dir, 'c.zip')));
  await runExport({ ...exportOptions, format: 'onnx', model: SHIPPED_MODEL, out: existing, overwrite: true });
  const proto = decodeModelProto(readFileSync(existing)) as { metadata_props: { key: string; value: string }[] };
  assert.deepEqual(JSON.parse(proto.metadata_props.find((p) => p.key === 'close_gaps')!.value), closeGapsOptions([SHIPPED_MODEL], {}).options);
  const session = await ort.InferenceSession.create(readFileSync(existing));
  assert.deepEqual(session.inputNames, ['raw']);
  assert.deepEqual(session.outputNames, ['probabilities']);
  await session.release();
});
