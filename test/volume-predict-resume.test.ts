/**
 * Blockwise prediction that can be trusted across faults: a SIGKILLed run rerun with the same command computes
 * only the blocks without a valid done marker; a corrupt input chunk fails its blocks (retried, reported with
 * coordinates, never marked done, non-zero exit) and a rerun after the repair computes only those; three shards
 * write byte for byte the output of one run; `emseg status` reads these outputs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Vec3 } from '../src/io/formats/volume.js';
import { STATUS_FAILED_EXIT } from '../src/cli/info.js';
import { readRunStatus } from '../src/pipeline/markers.js';
import { runVolumePredict, type VolumePredictJob } from '../src/pipeline/volume-predict.js';
import { REPO_ROOT } from './helpers/data.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { outputFiles } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const BLOCK: Vec3 = [1, 64, 64];
const POLL_MS = 10;
/** Done markers to wait for before the kill: some blocks finished, most not. */
const KILL_AFTER = 4;

async function fixture(shape: Vec3, chunks: Vec3 = [1, 64, 64]) {
  const dir = tempDir('vresume');
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), chunks);
  return { dir, input: join(zarr, '0'), model: zooModel(dir, 'reference-net', 5) };
}

const args = (f: { input: string; model: string }, out: string) =>
  ['predict', '--model', f.model, '--input', f.input, '--out', out, '--block', BLOCK.join(','), '--quiet', '--threads', '1'];

function doneMarkers(out: string): number {
  const dir = join(out, '.emseg', 'blocks');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.done.json')).length : 0;
}

const HOUR_MS = 3_600_000;

/** Moves the finish times of the output's done markers `ms` into the past (as if the run had ended then). */
function ageDoneMarkers(out: string, ms: number): void {
  const dir = join(out, '.emseg', 'blocks');
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.done.json'))) {
    const rec = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { finished: string };
    rec.finished = new Date(Date.parse(rec.finished) - ms).toISOString();
    writeFileSync(join(dir, name), JSON.stringify(rec));
  }
}

function assertSameFiles(a: string, b: string): void {
  const fa = outputFiles(a);
  const fb = outputFiles(b);
  assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
  for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs`);
}

function counts(stdout: string): { computed: number; skipped: number; failed: number } {
  const m = /computed (\d+) skipped (\d+) failed (\d+)/.exec(stdout);
  assert.ok(m, `no summary in: ${stdout}`);
  return { computed: Number(m[1]), skipped: Number(m[2]), failed: Number(m[3]) };
}

test('a SIGKILLed run, rerun with the same command, computes only the unfinished blocks', async () => {
  const f = await fixture([4, 512, 512]);
  const out = join(f.dir, 'maps.zarr');
  const child = spawn(process.execPath, [CLI, ...args(f, out)], { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  while (doneMarkers(out) < KILL_AFTER && child.exitCode === null) await sleep(POLL_MS);
  child.kill('SIGKILL');
  await exited;
  const before = doneMarkers(out);
  const total = 4 * 8 * 8;
  assert.ok(before >= KILL_AFTER && before < total, `killed with ${before} of ${total} blocks done`);
  // Seen an hour later, the killed run shows no ETA: nothing finishes blocks any more.
  ageDoneMarkers(out, HOUR_MS);
  const stalled = spawnSync(process.execPath, [CLI, 'status', out], { encoding: 'utf8' });
  assert.equal(stalled.status, 0, stalled.stderr);
  assert.match(stalled.stdout, /^ETA: +none: no block finished in the last 1h\d\dm/m);
  const rerun = spawnSync(process.execPath, [CLI, ...args(f, out)], { encoding: 'utf8' });
  assert.equal(rerun.status, 0, rerun.stderr);
  const c = counts(rerun.stdout);
  assert.equal(c.skipped, before);
  assert.equal(c.computed, total - before);
  const status = await readRunStatus(out);
  assert.deepEqual([status.done, status.remaining, status.failed.length], [total, 0, 0]);
  // The result is that of an uninterrupted run.
  const clean = join(f.dir, 'clean.zarr');
  assert.equal(spawnSync(process.execPath, [CLI, ...args(f, clean)]).status, 0);
  assertSameFiles(out, clean);
});

test('a corrupt input chunk: its blocks fail with coordinates, are never marked done, and the command exits non-zero', async () => {
  const f = await fixture([2, 192, 128]);
  const chunk = join(f.input, '1', '1', '0');
  const good = join(f.dir, 'chunk.bak');
  cpSync(chunk, good);
  // Garbage where a blosc chunk should be (truncated blosc chunks, also ones stored uncompressed, are covered
  // by test/volume-hostile.test.ts).
  writeFileSync(chunk, 'this is not a blosc chunk');
  const out = join(f.dir, 'maps.zarr');
  const run = spawnSync(process.execPath, [CLI, ...args(f, out)], { encoding: 'utf8' });
  assert.notEqual(run.status, 0);
  const c = counts(run.stdout);
  assert.ok(c.failed >= 1 && c.computed + c.failed === 2 * 3 * 2, run.stdout);
  assert.match(run.stderr, /block \[1,1,0\]/);
  const status = await readRunStatus(out);
  assert.equal(status.failed.length, c.failed);
  assert.ok(status.failed.every((b) => b.grid[0] === 1 && b.attempts === 3 && b.code === 'corrupt'));
  assert.equal(status.done, c.computed);
  const shown = spawnSync(process.execPath, [CLI, 'status', out], { encoding: 'utf8' });
  assert.equal(shown.status, STATUS_FAILED_EXIT, `status exits ${STATUS_FAILED_EXIT} when blocks failed: ${shown.stderr}`);
  assert.match(shown.stdout, new RegExp(`${c.computed}/12 done.*${c.failed} failed`));
  // Nothing runs (every remaining block failed): no ETA, and what to do.
  assert.match(shown.stdout, /^ETA: +none: stopped with \d+ failed block\(s\); run the command again/m);
  cpSync(good, chunk);
  const again = spawnSync(process.execPath, [CLI, ...args(f, out)], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(counts(again.stdout), { computed: c.failed, skipped: c.computed, failed: 0 });
});

test('three shards together write byte for byte the output of one run', async () => {
  const f = await fixture([2, 160, 192]);
  const job: VolumePredictJob = { models: [f.model], input: f.input, out: join(f.dir, 'one.zarr'), membraneProb: false, tta: false,
    bf16: false, tile: 512, backend: 'auto', dtype: 'uint8', block: BLOCK };
  const one = await runVolumePredict(job);
  assert.ok(one.complete);
  const sharded = join(f.dir, 'sharded.zarr');
  const parts = [];
  for (let i = 0; i < 3; i++) parts.push(await runVolumePredict({ ...job, out: sharded, shard: { index: i, count: 3 } }));
  assert.deepEqual(parts.map((p) => p.complete), [false, false, true], 'only the last shard completes the output');
  assert.equal(parts.reduce((n, p) => n + p.computed, 0), one.plan.count);
  assert.ok(parts.every((p) => p.computed > 0 && p.skipped === 0));
  assertSameFiles(job.out, sharded);
});
