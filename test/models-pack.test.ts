import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runPack } from '../src/cli/pack.js';
import { runPredict } from '../src/pipeline/predict.js';
import { readStack, writeStack } from '../src/io/index.js';
import { fromFloat16Array, fromFloat16Bits, toFloat16Bits } from '../src/models/float16.js';
import { WEIGHTS_FILE, loadModel, loadModels, probePlan, saveModel } from '../src/models/model-dir.js';
import { decodeSafetensors, encodeSafetensors } from '../src/models/safetensors.js';
import { initParams } from '../src/nn/params.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';
import { refused } from './helpers/errors.js';

test('float16 conversion: every finite half round-trips, and floats round to the nearest half (ties to even)', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = fromFloat16Bits(h);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(v))));
    else assert.equal(toFloat16Bits(v), h === 0x8000 ? 0x8000 : h, `half 0x${h.toString(16)}`);
  }
  const rng = new Rng(7);
  const random = () => rng.next();
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((random() - 0.5) * 2 ** Math.floor(random() * 40 - 26));
    const h = toFloat16Bits(x);
    const err = Math.abs(fromFloat16Bits(h) - x);
    // No other half is nearer than the chosen one.
    for (const other of [h - 1, h + 1]) {
      if ((other & 0x7c00) === 0x7c00 || other < 0 || other > 0xffff || ((other ^ h) & 0x8000)) continue;
      assert.ok(err <= Math.abs(fromFloat16Bits(other) - x), `${x}: 0x${h.toString(16)} is not the nearest half`);
    }
  }
  assert.equal(toFloat16Bits(1 + 2 ** -11), toFloat16Bits(1), 'tie to even (down)');
  assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), toFloat16Bits(1 + 2 ** -9), 'tie to even (up)');
  assert.equal(fromFloat16Bits(toFloat16Bits(1e6)), Infinity);
  assert.equal(fromFloat16Bits(toFloat16Bits(-1e-9)), -0);
  assert.equal(fromFloat16Bits(toFloat16Bits(65504)), 65504);
});

test('float16 arrays decode to the same floats as bit by bit, every bit pattern (NaN, infinities, -0, subnormals)', () => {
  const bits = Uint16Array.from({ length: 0x10000 }, (_, h) => (h * 40503) & 0xffff);
  const got = fromFloat16Array(bits);
  for (let i = 0; i < bits.length; i++) assert.ok(Object.is(got[i], Math.fround(fromFloat16Bits(bits[i]!))), `0x${bits[i]!.toString(16)}`);
});

test('safetensors stores float32 tensors as F16 on request and reads them back as float32', () => {
  const data = Float32Array.from([0.1, -2.5, 3e-6, 1000.7]);
  const buf = encodeSafetensors(new Map([['w', { shape: [4], data }]]), {}, 'f16');
  const back = decodeSafetensors(buf, 'x').tensors.get('w')!;
  assert.ok(back.data instanceof Float32Array);
  assert.deepEqual(Array.from(back.data), Array.from(data, (v) => fromFloat16Bits(toFloat16Bits(v))));
  assert.ok(buf.length < encodeSafetensors(new Map([['w', { shape: [4], data }]])).length);
});

const spec = parseModelSpec({
  name: 'tiny', window: 7,
  layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
});

test('emseg pack: an ensemble directory predicts exactly like its members listed one by one; f16 stores F16 weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-pack-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  saveModel(a, spec, initParams(probePlan(spec), 1), { step: 1 });
  saveModel(b, spec, initParams(probePlan(spec), 2), { step: 2 });
  const packed = join(dir, 'packed');
  assert.deepEqual(runPack({ models: [a, b], out: packed, f16: false, overwrite: false }), ['a', 'b']);
  assert.equal(loadModels(packed).length, 2);
  assert.throws(() => loadModel(packed), refused('invalid-model', 'packed'));
  assert.throws(() => runPack({ models: [a, b], out: packed, f16: false, overwrite: false }), refused('exists', 'packed'));

  const images = join(dir, 'images.tif');
  await writeStack(images, { width: 20, height: 16, depth: 2, data: Uint8Array.from({ length: 640 }, (_, i) => (i * 53) % 256) });
  const base = { input: images, format: 'isbi' as const, membraneProb: false, tta: false, bf16: false, tile: 8,
    backend: 'reference' as const, overwrite: false };
  await runPredict({ ...base, models: [a, b], out: join(dir, 'two.tif') });
  await runPredict({ ...base, models: [packed], out: join(dir, 'packed.tif') });
  assert.deepEqual((await readStack(join(dir, 'packed.tif'))).data, (await readStack(join(dir, 'two.tif'))).data);

  const half = join(dir, 'half');
  runPack({ models: [packed], out: half, f16: true, overwrite: false });
  assert.deepEqual(readdirSync(half).sort(), ['.emseg-manifest.json', 'a', 'b', 'ensemble.json', 'meta.json']);
  const file = readFileSync(join(half, 'a', WEIGHTS_FILE));
  const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString()) as Record<string, { dtype?: string }>;
  assert.deepEqual(new Set(Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, t]) => t.dtype)), new Set(['F16']));
  const original = loadModel(a).params.get('c1.weight')!.data;
  const stored = decodeSafetensors(file, 'a').tensors.get('c1.weight')!.data;
  stored.forEach((v, i) => assert.ok(Math.abs(v - original[i]!) <= Math.abs(original[i]!) * 2 ** -11 + 2 ** -25));
});
