/**
 * `--json` on every command that reports (issue 27): predict, segment (stack and OME-Zarr outputs), train, convert and
 * export print one JSON object on stdout and nothing else there; progress and notices stay on stderr. (eval and status
 * had it already: test/eval.test.ts, test/queue.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, SAMPLES } from './helpers/data.js';

const emseg = join(REPO_ROOT, 'bin', 'emseg.js');
const dir = mkdtempSync(join(tmpdir(), 'emseg-json-'));
const section = join(SAMPLES, 'images', '23.png');

/** Runs emseg in `dir` (no --quiet: progress must not reach stdout) and parses stdout as one JSON document. */
function json(args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [emseg, ...args, '--json'], { cwd: dir, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `${args[0]}: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as Record<string, unknown>; // throws on anything else there
  assert.equal(parsed.command, args[0]);
  return parsed;
}

test('predict and segment --json (stack outputs)', () => {
  const maps = json(['predict', '--model', 'emseg-isbi', '--input', section, '--out', 'maps.tif']);
  assert.deepEqual(maps.written, ['maps.tif']);
  const cells = json(['segment', '--pred', 'maps.tif', '--out', 'cells.tif']);
  assert.equal((cells.segments as number[]).length, 1);
  assert.ok((cells.segments as number[])[0]! > 10);
});

test('convert, then predict and segment to OME-Zarr, --json', () => {
  const converted = json(['convert', section, 'vol.zarr']);
  assert.deepEqual(converted.shape, [1, 512, 512]);
  const maps = json(['predict', '--model', 'emseg-isbi', '--input', 'vol.zarr', '--out', 'maps.zarr']);
  assert.equal(maps.complete, true);
  const cells = json(['segment', '--pred', 'maps.zarr', '--out', 'cells.zarr']);
  assert.equal(cells.complete, true);
  assert.ok((cells.cells as number) > 10);
});

test('train and export --json', () => {
  const trained = json(['train', '--images', join(SAMPLES, 'images'), '--labels', join(SAMPLES, 'labels'), '--out', 'model',
    '--model', 'fakhry-a', '--val', 'none', '--steps', '1', '--tile', '16', '--batch', '1']);
  assert.equal(trained.steps, 1);
  assert.equal((trained.best as { step: number }).step, 1);
  const exported = json(['export', 'fakhry-isbi', '--format', 'onnx', '--out', 'model.onnx']);
  assert.ok((exported.bytes as number) > 0);
  assert.ok(existsSync(join(dir, 'model.onnx')));
});
