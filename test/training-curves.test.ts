import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrainingCurve, trainingCurvesChart, TRAINING_LOG } from '../src/report/training-curves.js';
import { isEmsegError } from '../src/errors.js';
import { REPO_ROOT } from './helpers/data.js';

const HOUR_MS = 3_600_000;

/** A log as `emseg train` writes it: step records with elapsed time, validation records after some steps. */
function writeLog(dir: string, records: object[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, TRAINING_LOG), `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
}

function fakeRun(dir: string, msPerStep: number, scores: { step: number; v_rand: number; pixel_error: number }[]): void {
  const last = scores.at(-1)!.step;
  const records: object[] = [];
  for (let step = 1; step <= last; step++) {
    records.push({ type: 'step', step, steps: last, loss: 1 / step, lr: 1e-3, windowsPerSecond: 1000, elapsedMs: step * msPerStep });
    const v = scores.find((s) => s.step === step);
    if (v) records.push({ type: 'validation', ...v, best: true });
  }
  writeLog(dir, records);
}

test('training curves: validation scores are placed at the wall time of the step they validated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-curves-'));
  try {
    fakeRun(join(dir, 'a'), HOUR_MS / 10, [{ step: 5, v_rand: 0.8, pixel_error: 0.1 }, { step: 10, v_rand: 0.9, pixel_error: 0.08 }]);
    const c = readTrainingCurve(join(dir, 'a'));
    assert.equal(c.name, 'a');
    assert.deepEqual(c.points.map((p) => [p.step, p.hours]), [[5, 0.5], [10, 1]]);
    assert.equal(c.points[1]!.scores.v_rand, 0.9);
    assert.equal('best' in c.points[1]!.scores, false, 'booleans are not scores');
    assert.equal(c.hours, 1);
    // A validation without scores (--val none) is no point.
    writeLog(join(dir, 'b'), [{ type: 'step', step: 1, elapsedMs: 100 }, { type: 'validation', step: 1, best: true }]);
    assert.equal(readTrainingCurve(join(dir, 'b')).points.length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training curves: a broken log names the file and line; a folder without a log is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-curves-'));
  try {
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', TRAINING_LOG), '{"type":"step","step":1,"elapsedMs":5}\n{"type":"step",\n');
    assert.throws(() => readTrainingCurve(join(dir, 'bad')), (e) => isEmsegError(e, 'corrupt') && e.path.endsWith(`${TRAINING_LOG}:2`));
    assert.throws(() => readTrainingCurve(join(dir, 'none')), (e) => isEmsegError(e, 'not-found'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('emseg curves draws one line per run and metric, and does not replace its output without --overwrite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-curves-'));
  try {
    fakeRun(join(dir, 'fast'), 1000, [{ step: 2, v_rand: 0.7, pixel_error: 0.2 }, { step: 4, v_rand: 0.75, pixel_error: 0.15 }]);
    fakeRun(join(dir, 'slow'), 5000, [{ step: 2, v_rand: 0.6, pixel_error: 0.3 }, { step: 4, v_rand: 0.85, pixel_error: 0.1 }]);
    const out = join(dir, 'c.svg');
    const bin = join(REPO_ROOT, 'bin', 'emseg.js');
    const stdout = execFileSync(process.execPath, [bin, 'curves', `net-a=${join(dir, 'fast')}`, join(dir, 'slow'), '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /net-a: 0\.00 h, 2 validations/);
    const svg = readFileSync(out, 'utf8');
    assert.ok(svg.startsWith('<svg'));
    for (const name of ['net-a', 'slow']) assert.ok(svg.includes(name), `legend names ${name}`);
    const chart = trainingCurvesChart([readTrainingCurve(join(dir, 'fast'))], ['v_rand', 'pixel_error'], 't', 'h');
    assert.equal((chart.svg.match(/<path d="M/g) ?? []).length, 2, "one line per metric for one run");
    const again = spawnSync(process.execPath, [bin, 'curves', join(dir, 'slow'), '--out', out], { encoding: 'utf8' });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /--overwrite/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
