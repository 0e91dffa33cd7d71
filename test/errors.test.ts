/**
 * One vocabulary of error codes (src/errors.ts): every code of the EmsegErrorCode union is documented and used, and
 * bad user input through the public API is refused with an EmsegError of a stable code naming what was wrong (the
 * file, flag, field or argument), never a plain Error, a TypeError or a library's own exception.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmsegError, type EmsegErrorCode } from '../src/errors.js';
import {
  createLabelsImage, createOmeZarr, evaluateFiles, evaluateStacks, loadDataset, openStack, openVolume, parseModelSpec, parseShard, parseStudy, readStudyFile,
  segmentSection, type LabelPolarity,
} from '../src/index.js';
import { parseIntensity } from '../src/image/intensity.js';
import { checkTrainChoices, parseCheckpointEvery } from '../src/pipeline/train.js';
import { parseRedisUrl } from '../src/queue/connection.js';
import { REPO_ROOT } from './helpers/data.js';

const SRC = join(REPO_ROOT, 'src');
const ERRORS_FILE = join(SRC, 'errors.ts');
const dir = mkdtempSync(join(tmpdir(), 'emseg-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The union's members as written in src/errors.ts, each with the comment on its line. */
function unionMembers(): Map<string, string> {
  const text = readFileSync(ERRORS_FILE, 'utf8');
  const body = text.slice(text.indexOf('export type EmsegErrorCode ='), text.indexOf('export class EmsegError'));
  const members = new Map<string, string>();
  for (const m of body.matchAll(/^\s*\| '([a-z0-9-]+)';?[ \t]*(?:\/\/[ \t]*(.*))?$/gm)) members.set(m[1]!, (m[2] ?? '').trim());
  return members;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

test('every error code is documented in the union and used in src; every code src throws is in the union', () => {
  const members = unionMembers();
  assert.ok(members.size > 20, `found only ${members.size} codes in ${ERRORS_FILE}`);
  for (const [code, doc] of members) assert.ok(doc.length > 10, `code '${code}' has no comment saying when it is used`);
  const sources = sourceFiles(SRC).filter((f) => f !== ERRORS_FILE).map((f) => readFileSync(f, 'utf8'));
  const all = sources.join('\n');
  const unused = [...members.keys()].filter((code) => !all.includes(`'${code}'`));
  assert.deepEqual(unused, [], 'codes in the union that no source file uses: remove them or use them');
  // The constructor's parameter type already checks this; the scan also catches casts that would get around it.
  const thrown = new Set([...all.matchAll(/new Emseg(?:Io)?Error\(\s*'([a-z0-9-]+)'/g), ...all.matchAll(/super\('([a-z0-9-]+)'/g)]
    .map((m) => m[1]!));
  assert.ok(thrown.size > 20);
  assert.deepEqual([...thrown].filter((code) => !members.has(code)), [], 'codes thrown in src but missing from the union');
});

/** Runs `attempt` and checks that it refused with an EmsegError of `code` about `path`. */
async function refusedWith(attempt: () => unknown, code: EmsegErrorCode, path: string, what: string): Promise<void> {
  let err: unknown;
  try {
    await attempt();
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `${what}: accepted`);
  assert.ok(err instanceof EmsegError, `${what}: threw ${String(err)} instead of an EmsegError`);
  assert.equal(err.code, code, `${what}: ${err.message}`);
  assert.equal(err.path, path, `${what}: ${err.message}`);
}

test('bad user input through the public API is refused with an EmsegError of the expected code and path', async () => {
  const missing = join(dir, 'missing.tif');
  const notPng = join(dir, 'notes.png');
  writeFileSync(notPng, 'not an image\n');
  const badJson = join(dir, 'study.json');
  writeFileSync(badJson, '{ "name": ');
  const images = join(dir, 'img.png');
  const { encode } = await import('fast-png');
  writeFileSync(images, encode({ width: 2, height: 2, data: new Uint8Array(4), channels: 1, depth: 8 }));
  const gt = { width: 2, height: 2, depth: 1, data: new Uint8Array(4).fill(255) };
  const proposal = { width: 2, height: 2, depth: 1, data: Float32Array.of(0.5, Number.NaN, 0.5, 0.5) };
  const cases: [string, () => unknown, EmsegErrorCode, string][] = [
    ['io: a missing stack', () => openStack(missing), 'not-found', missing],
    ['io: a text file named .png', () => openStack(notPng), 'not-image', notPng],
    ['io: a missing volume', () => openVolume(join(dir, 'missing.zarr')), 'not-found', join(dir, 'missing.zarr')],
    ['io: an unknown label polarity', () => loadDataset({ images, labels: images, polarity: 'upside-down' as LabelPolarity }),
      'invalid-option', 'upside-down'],
    ['spec: a network spec without layers', () => parseModelSpec({ name: 'n' }, 'n.json'), 'invalid-spec', 'n.json'],
    ['study: an empty study', () => parseStudy({}, 'study.json'), 'invalid-study', ''],
    ['study: a study file that is not JSON', () => readStudyFile(badJson), 'invalid-study', ''],
    ['train: --checkpoint-every soon', () => parseCheckpointEvery('soon'), 'invalid-option', '--checkpoint-every'],
    ['train: --balance subsample with MALIS', () => checkTrainChoices(
      { optimizer: 'adam', schedule: 'constant', balance: 'subsample', select: 'v_rand', malisWeight: 0.5 }, (n) => `--${n}`),
    'invalid-option', '--balance'],
    ['train / predict: --intensity bright', () => parseIntensity('bright'), 'invalid-option', '--intensity'],
    ['segment: a map of the wrong size', () => segmentSection(new Float32Array(5), 2, 2), 'mismatch', 'map'],
    ['segment: a negative sigma', () => segmentSection(new Float32Array(4), 2, 2, { sigma: -1 }), 'invalid-option', 'sigma'],
    ['eval: a proposal holding NaN', () => evaluateStacks(gt, proposal), 'invalid-data', 'proposal'],
    ['eval: an unknown metric', () => evaluateStacks(gt, { ...proposal, data: new Float32Array(4) }, { metrics: ['rand' as never] }),
      'invalid-option', 'metrics'],
    ['eval: missing label files', () => evaluateFiles({ labels: missing, prediction: images }), 'not-found', missing],
    ['blocks: --shard 3/2', () => parseShard('3/2'), 'invalid-option', '--shard'],
    ['queue: --redis http://localhost', () => parseRedisUrl('http://localhost:6379'), 'invalid-option', '--redis'],
  ];
  for (const [what, attempt, code, path] of cases) await refusedWith(attempt, code, path, what);
});

test('a damaged labels list of an OME-Zarr image is refused as corrupt, naming it, not a SyntaxError; nothing is rewritten', async () => {
  const image = join(dir, 'image.zarr');
  await createOmeZarr(image, { shape: [1, 16, 16], dtype: 'uint8', chunks: [1, 16, 16], levels: 1 });
  const list = join(image, 'labels', '.zattrs');
  mkdirSync(join(image, 'labels'), { recursive: true });
  writeFileSync(list, '{ "labels": [ "cells", ');
  await refusedWith(() => createLabelsImage(image, 'more', { shape: [1, 16, 16], dtype: 'uint32', chunks: [1, 16, 16] }), 'corrupt', list,
    'labels into an image whose labels/.zattrs is damaged');
  assert.equal(readFileSync(list, 'utf8'), '{ "labels": [ "cells", ');
});
