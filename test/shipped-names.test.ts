/**
 * Shipped models by name from any working folder (issue 27): `--model emseg-isbi` was "not a model directory" outside
 * the checkout's root; `emseg models --shipped` lists them with what each is for and their recorded scores.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveModelDir, SHIPPED_MODELS_DIR, shippedModels } from '../src/models/shipped.js';
import { JOB_KINDS } from '../src/queue/kinds.js';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';
import { refused } from './helpers/errors.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');
const run = (cwd: string, args: string[]) => spawnSync(process.execPath, [emseg, ...args], { cwd, encoding: 'utf8', timeout: 600_000 });

test('every folder of models/ is a shipped model, with what it is for and its recorded scores', () => {
  const names = readdirSync(join(REPO_ROOT, 'models')).sort();
  const shipped = shippedModels();
  assert.deepEqual(shipped.map((m) => m.name), names);
  for (const m of shipped) {
    assert.ok(m.use.length > 20, `${m.name}: says what it is for`);
    // 2-d models record the ISBI scores of their maps; 3-d ones the neuron scores of their segmentation.
    assert.ok(typeof m.scores?.v_rand === 'number' || typeof m.scores?.voi === 'number', `${m.name}: recorded V_rand or VOI`);
  }
  assert.equal(SHIPPED_MODELS_DIR, join(REPO_ROOT, 'models'));
});

test('a shipped model\'s name (or name/member) resolves to the package\'s folder; a path that exists stays as it is', () => {
  assert.equal(resolveModelDir('emseg-isbi'), join(REPO_ROOT, 'models', 'emseg-isbi'));
  assert.equal(resolveModelDir('emseg-isbi/unet-w16-s3', '--init'), join(REPO_ROOT, 'models', 'emseg-isbi', 'unet-w16-s3'));
  const local = join(mkdtempSync(join(tmpdir(), 'emseg-shipped-')), 'emseg-isbi');
  mkdirSync(local);
  assert.equal(resolveModelDir(local), local);
  assert.throws(() => resolveModelDir('no-such-model'), refused('not-found', 'no-such-model', /emseg-isbi.*fakhry-isbi/));
  assert.throws(() => resolveModelDir('emseg-isbi/no-such-member', '--init'), refused('not-found', 'emseg-isbi/no-such-member'));
});

test('emseg predict --model emseg-isbi works from a folder outside the checkout; an unknown name lists the shipped ones', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'emseg-shipped-cwd-'));
  const input = join(SAMPLES, 'images', '23.png');
  const ok = run(cwd, ['predict', '--model', 'emseg-isbi', '--input', input, '--out', 'maps.tif', '--quiet']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(cwd, 'maps.tif')));
  const bad = run(cwd, ['predict', '--model', 'emseg-isb', '--input', input, '--out', 'other.tif', '--quiet']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /emseg-isb: not a model directory \(--model\): .*emseg-isbi, fakhry-isbi/);
  assert.ok(!existsSync(join(cwd, 'other.tif')));
});

test('emseg models --shipped lists them, as text and as JSON, from any folder', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'emseg-shipped-list-'));
  const text = run(cwd, ['models', '--shipped']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^emseg-isbi \(ensemble\): .+\n.*\n {2}scores: v_rand 0\.98/m);
  assert.match(text.stdout, /^fakhry-isbi \(model\): /m);
  const json = run(cwd, ['models', '--shipped', '--json']);
  assert.equal(json.status, 0, json.stderr);
  const list = JSON.parse(json.stdout) as { name: string; dir: string; scores: Record<string, number> }[];
  assert.deepEqual(list.map((m) => m.name), readdirSync(join(REPO_ROOT, 'models')).sort());
  assert.ok(list.every((m) => existsSync(m.dir) && (m.scores.pixel_error! > 0 || m.scores.voi! > 0)));
});

test('emseg submit predict --model emseg-isbi queues the shipped folder, not a path in the submit folder', () => {
  const spec = JOB_KINDS.predict.specOf({ models: ['emseg-isbi'], input: 'vol.zarr', out: 'maps.zarr', membraneProb: false, tta: false,
    bf16: false, tile: 256, backend: 'auto', dtype: 'uint8', restart: false, overwrite: false, toGrey: false, allowMissingChunks: false });
  assert.deepEqual(spec.models, [join(REPO_ROOT, 'models', 'emseg-isbi')]);
});
