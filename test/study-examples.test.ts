/**
 * The example studies on a fresh clone, without ../shared (issue 27): `emseg study examples/studies/depth.json` only
 * said that ../shared/... did not exist. Each example now says what data it needs, and samples.json runs on the
 * bundled samples.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readStudyFile } from '../src/study/schema.js';
import { REPO_ROOT } from './helpers/data.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');
const folder = join(REPO_ROOT, 'examples', 'studies');
const examples = readdirSync(folder).filter((f) => f.endsWith('.json'));

test('every example study says what data it needs, and says it when the data is not there', () => {
  // A folder with no ../shared beside it: the data paths, relative to the working folder as in every command, are missing.
  // (a folder inside a fresh temp folder, so that nothing on this machine can sit at ../shared)
  const cwd = join(mkdtempSync(join(tmpdir(), 'emseg-fresh-clone-')), 'clone');
  mkdirSync(cwd);
  assert.ok(!existsSync(join(cwd, '..', 'shared')));
  for (const f of examples) {
    assert.ok(readStudyFile(join(folder, f)).data.needs, `${f}: data.needs`);
    const r = spawnSync(process.execPath, [emseg, 'study', join(folder, f), '--check'], { cwd, encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 1, `${f}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /field "data\.needs": this study needs /, f);
  }
});

test('examples/studies/samples.json runs from the repository root on the bundled samples', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'emseg-samples-study-')), 'study');
  const r = spawnSync(process.execPath, [emseg, 'study', join('examples', 'studies', 'samples.json'), '--steps', '2', '--out', out],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(existsSync(join(out, 'study.json')));
  assert.match(r.stdout + r.stderr, /2 run\(s\) trained/);
});
