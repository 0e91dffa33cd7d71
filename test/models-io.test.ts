import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel, probePlan, saveModel, WEIGHTS_FILE } from '../src/models/model-dir.js';
import { decodeSafetensors, encodeSafetensors } from '../src/models/safetensors.js';
import { resolveSpec } from '../src/models/zoo.js';
import { initParams } from '../src/nn/params.js';
import { refused } from './helpers/errors.js';

test('safetensors round-trips float32 and float64 tensors with metadata', () => {
  const tensors = new Map([
    ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) }],
    ['b', { shape: [1], data: Float64Array.from([Math.PI]) }],
  ]);
  const buf = encodeSafetensors(tensors, { k: 'v' });
  const back = decodeSafetensors(buf, 'x');
  assert.deepEqual(back.metadata, { k: 'v' });
  assert.deepEqual(back.tensors.get('a'), tensors.get('a'));
  assert.deepEqual(back.tensors.get('b'), tensors.get('b'));
});

test('corrupt safetensors files are refused naming the file', () => {
  assert.throws(() => decodeSafetensors(Buffer.from([1, 2, 3]), 'w.safetensors'), refused('invalid-model', 'w.safetensors'));
  const buf = encodeSafetensors(new Map([['a', { shape: [4], data: new Float32Array(4) }]]));
  assert.throws(() => decodeSafetensors(buf.subarray(0, buf.length - 4), 'w'), refused('invalid-model', 'w'));
});

test('a model directory saves and loads; weights that do not fit the spec are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-model-'));
  const spec = resolveSpec('fakhry-b');
  const params = initParams(probePlan(spec), 3);
  saveModel(dir, spec, params, { note: 'test' });
  const loaded = loadModel(dir);
  assert.equal(loaded.spec.name, 'fakhry-b');
  assert.deepEqual(loaded.params.get('conv1.weight')!.data, params.get('conv1.weight')!.data);
  assert.equal(loaded.meta.note, 'test');

  const other = mkdtempSync(join(tmpdir(), 'emseg-model-'));
  saveModel(other, resolveSpec('fakhry-a'), initParams(probePlan(resolveSpec('fakhry-a')), 1), {});
  writeFileSync(join(dir, WEIGHTS_FILE), readFileSync(join(other, WEIGHTS_FILE)));
  assert.throws(() => loadModel(dir), refused('weights-mismatch', 'weights.safetensors'));
});
