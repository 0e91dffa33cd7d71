/**
 * A full disk, a read-only file system and refused permissions stop a run at once and say what happened, instead
 * of being retried per block (minutes of futile work) or reported as something else (EROFS as "ENOENT mkdir").
 * The retry decision and the errno mapping are tested with synthetic errors (no privileges needed); the real thing
 * runs on a tiny tmpfs and a read-only bind mount where the machine allows mounting (else those tests skip with the
 * reason), for a blockwise prediction, a conversion and queue workers.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { STATUS_FAILED_EXIT } from '../src/cli/info.js';
import { isEmsegError } from '../src/errors.js';
import { EmsegIoError, fromFsError, lastingError, worthRetrying } from '../src/io/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import type { Vec3 } from '../src/io/formats/volume.js';
import { openVolume } from '../src/io/registry.js';
import { planBlocks } from '../src/pipeline/blocks.js';
import { openMarkers, readRunStatus } from '../src/pipeline/markers.js';
import { runTask } from '../src/pipeline/engine/run.js';
import { eachBlock } from '../src/pipeline/blocks.js';
import { workTask } from './helpers/tasks.js';
import { isStalled } from '../src/pipeline/progress.js';
import { openVolumePredict, runVolumePredict, type VolumePredictJob } from '../src/pipeline/volume-predict.js';
import { queueStatus } from '../src/queue/status.js';
import { makeDirs, makeDirsSync } from '../src/util/mkdirs.js';
import { REPO_ROOT } from './helpers/data.js';
import { mountReadOnly, mountTinyTmpfs, unmountAll } from './helpers/mounts.js';
import { startRedis, type RedisServer } from './helpers/redis-server.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [2, 128, 128];
const BLOCK: Vec3 = [1, 64, 64];
/** A tmpfs that holds the output's metadata and markers; a filler file then takes the rest. */
const TMPFS_KIB = 1024;
const FILL_CHUNK = 64 * 1024;
const WAIT_MS = 120_000;
const POLL_MS = 100;

/** An fs error as Node makes them (code, errno, syscall, path), without a real disk behind it. */
function errnoError(code: string, path = '/data/out.zarr/0/0/0/0'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: synthetic, write '${path}'`), { code, errno: -1, syscall: 'write', path });
}

let fx: { dir: string; input: string; model: string };
let server: RedisServer | undefined;
const workers = new Set<ChildProcess>();

before(async () => {
  const dir = tempDir('fs-faults');
  const { zarr } = await writeVolume(dir, SHAPE, await sampleVolume(SHAPE), BLOCK);
  fx = { dir, input: join(zarr, '0'), model: zooModel(dir, 'reference-net', 5) };
});

after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await server?.stop();
  unmountAll();
});

const job = (out: string, notices: string[] = []): VolumePredictJob => ({ models: [fx.model], input: fx.input, out, membraneProb: false,
  tta: false, bf16: false, tile: 512, threads: 1, backend: 'auto', dtype: 'float32', block: BLOCK, notice: (m) => notices.push(m) });

/** Writes zeros to `path` until the file system is full (ENOSPC), so the next write of any size fails. */
function fillUp(path: string): void {
  const fd = openSync(path, 'w');
  const zeros = Buffer.alloc(FILL_CHUNK);
  try {
    for (let size = FILL_CHUNK; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          writeSync(fd, zeros, 0, size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

test('fromFsError names a full disk, a read-only file system and refused permissions with their own codes', () => {
  const cases: [string, string][] = [['ENOSPC', 'disk-full'], ['EDQUOT', 'disk-full'], ['EFBIG', 'disk-full'], ['EROFS', 'read-only'],
    ['EACCES', 'permission'], ['EPERM', 'permission'], ['EIO', 'fs-failed'], ['ENOENT', 'not-found']];
  for (const [errno, code] of cases) {
    const err = fromFsError(errnoError(errno), '/data/out.zarr/0/0/0/0', 'writing');
    assert.ok(err instanceof EmsegIoError && err.code === code, `${errno} -> ${err.code}`);
    assert.equal(err.path, '/data/out.zarr/0/0/0/0');
  }
});

test('worthRetrying: never for a full disk, a read-only file system or a refused permission, raw, mapped or wrapped', () => {
  for (const errno of ['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EACCES', 'EPERM']) {
    assert.equal(worthRetrying(errnoError(errno)), false, errno);
    assert.equal(worthRetrying(fromFsError(errnoError(errno), '/x', 'writing')), false, `${errno} mapped`);
    assert.equal(worthRetrying(new Error('writing chunks failed', { cause: errnoError(errno) })), false, `${errno} as a cause`);
  }
  for (const transient of [errnoError('EIO'), errnoError('ETIMEDOUT'), new EmsegIoError('corrupt', '/x', 'bad chunk'), new Error('boom'), 'text', undefined]) {
    assert.equal(worthRetrying(transient), true, String((transient as { code?: string })?.code ?? transient));
  }
  // The error a run stops with: mapped, naming the file the errno named.
  const stop = lastingError(new Error('wrapped', { cause: errnoError('ENOSPC', '/data/m.zarr/0/1/0/0') }), '/data/m.zarr', 'writing');
  assert.deepEqual([stop.code, stop.path], ['disk-full', '/data/m.zarr/0/1/0/0']);
});

test('a run is stalled only when no block finished for minutes, and for many mean block intervals', () => {
  assert.equal(isStalled(30, 1), false, 'a short pause');
  assert.equal(isStalled(600, 1), true, 'ten minutes without a block, at a block a second');
  assert.equal(isStalled(600, 300), false, 'slow blocks (five minutes each) are not a stall');
  assert.equal(isStalled(600, undefined), true, 'one block done, then nothing for ten minutes');
});

test('the block runner: a full disk stops the run after one attempt of the failing block; a transient error is retried', async () => {
  const dir = tempDir('fs-faults-blocks');
  const plan = planBlocks([3, 8, 8], [1, 8, 8]);
  const markers = await openMarkers(dir, plan, { model: 'm', input: 'i' });
  const calls: number[] = [];
  await assert.rejects(runTask(workTask(plan, markers, async (b) => {
    calls.push(b.index);
    throw errnoError('ENOSPC', join(dir, 'chunk'));
  }), eachBlock(plan)), (err) => isEmsegError(err, 'disk-full') && err.path === join(dir, 'chunk'));
  assert.deepEqual(calls, [0], 'one attempt, and no block after it');
  const status = await readRunStatus(dir);
  assert.deepEqual(status.failed.map((f) => [f.index, f.code, f.attempts]), [[0, 'disk-full', 1]]);
  assert.equal(status.stoppedBy?.index, 0, 'the status knows the run stopped there');
  calls.length = 0;
  const retried: number[] = [];
  const outcome = await runTask(workTask(plan, markers, async (b, attempt) => {
    calls.push(b.index);
    if (b.index === 1) {
      if (attempt > 1) retried.push(attempt - 1);
      throw errnoError('EIO');
    }
    return [];
  }), eachBlock(plan));
  assert.deepEqual(calls, [0, 1, 1, 1, 2], 'the flaky block is tried three times, the others run');
  assert.deepEqual(retried, [1, 2]);
  assert.deepEqual([outcome.computed, outcome.failed.map((f) => f.index)], [2, [1]]);
});

test('predict onto a full disk stops at the first failing block, at once, with code disk-full; it resumes once there is room', async (t) => {
  const m = mountTinyTmpfs(fx.dir, 'tiny-predict', TMPFS_KIB);
  if ('skip' in m) return t.skip(m.skip);
  const out = join(m.path, 'maps.zarr');
  await (await openVolumePredict(job(out))).close(); // metadata and run record: what fits before the disk fills
  const filler = join(m.path, 'filler');
  fillUp(filler);
  const notices: string[] = [];
  await assert.rejects(runVolumePredict(job(out, notices)), (err) => isEmsegError(err, 'disk-full') && err.path.startsWith(out));
  assert.deepEqual(notices.filter((n) => /attempt/.test(n)), [], 'no block was retried');
  assert.equal((await readRunStatus(out)).done, 0);
  rmSync(filler);
  const resumed = await runVolumePredict(job(out));
  assert.ok(resumed.complete && resumed.failed.length === 0);
});

test('convert onto a full disk fails with code disk-full', async (t) => {
  const m = mountTinyTmpfs(fx.dir, 'tiny-convert', TMPFS_KIB);
  if ('skip' in m) return t.skip(m.skip);
  fillUp(join(m.path, 'filler'));
  const src = await openVolume(fx.input);
  try {
    await assert.rejects(convertToOmeZarr(src, join(m.path, 'raw.zarr')), (err) => isEmsegError(err, 'disk-full') && err.path.startsWith(m.path));
  } finally {
    await src.close();
  }
});

test('a read-only file system is reported as such (not ENOENT mkdir), naming the path, for predict, resume and convert', async (t) => {
  const source = join(fx.dir, 'ro-source');
  mkdirSync(source);
  await (await openVolumePredict(job(join(source, 'started.zarr')))).close(); // an output begun before the remount
  const m = mountReadOnly(source, fx.dir, 'ro');
  if ('skip' in m) return t.skip(m.skip);
  const fresh = join(m.path, 'new.zarr');
  await assert.rejects(runVolumePredict(job(fresh)), (err) => isEmsegError(err, 'read-only') && err.path === fresh);
  const notices: string[] = [];
  const started = join(m.path, 'started.zarr');
  await assert.rejects(runVolumePredict(job(started, notices)), (err) => isEmsegError(err, 'read-only') && err.path.startsWith(started));
  assert.deepEqual(notices.filter((n) => /attempt/.test(n)), [], 'no block was retried');
  const src = await openVolume(fx.input);
  try {
    // Named by the output the user gave, not by convert's hidden temporary folder.
    const out = join(m.path, 'raw.zarr');
    await assert.rejects(convertToOmeZarr(src, out), (err) => isEmsegError(err, 'read-only') && err.path.startsWith(out) && !err.message.includes('.tmp'));
  } finally {
    await src.close();
  }
  // The folder helpers say EROFS where Node's recursive mkdir says ENOENT.
  assert.throws(() => makeDirsSync(join(m.path, 'a', 'b')), (err: NodeJS.ErrnoException) => err.code === 'EROFS');
  await assert.rejects(makeDirs(join(m.path, 'a', 'b')), (err: NodeJS.ErrnoException) => err.code === 'EROFS');
  const cli = spawnSync(process.execPath, [CLI, 'predict', '--model', fx.model, '--input', fx.input, '--out', join(m.path, 'cli.zarr'),
    '--block', BLOCK.join(','), '--quiet', '--threads', '1'], { encoding: 'utf8' });
  assert.notEqual(cli.status, 0);
  assert.match(cli.stderr, /read-only file system/);
  assert.doesNotMatch(cli.stderr, /ENOENT/);
});

test('queue workers on a full disk fail each block after one attempt (not retried by the queue); status exits non-zero', async (t) => {
  const m = mountTinyTmpfs(fx.dir, 'tiny-queue', TMPFS_KIB);
  if ('skip' in m) return t.skip(m.skip);
  server = await startRedis();
  const out = join(m.path, 'maps.zarr');
  const sub = spawnSync(process.execPath, [CLI, 'submit', 'predict', '--model', fx.model, '--input', fx.input, '--out', out,
    '--block', BLOCK.join(','), '--redis', server.url, '--attempts', '3', '--backoff', '100'], { encoding: 'utf8' });
  assert.equal(sub.status, 0, sub.stderr);
  const id = sub.stdout.trim();
  fillUp(join(m.path, 'filler'));
  const w = spawn(process.execPath, [CLI, 'worker', '--redis', server.url, '--threads', '1', '--quiet'], { stdio: 'ignore' });
  workers.add(w);
  const total = SHAPE[0] * (SHAPE[1] / BLOCK[1]) * (SHAPE[2] / BLOCK[2]);
  const deadline = Date.now() + WAIT_MS;
  let s = (await queueStatus(server.url, id))[0]!;
  while (s.failed.length < total && Date.now() < deadline) {
    await sleep(POLL_MS);
    s = (await queueStatus(server.url, id))[0]!;
  }
  w.kill('SIGTERM');
  assert.equal(s.failed.length, total, JSON.stringify(s));
  assert.ok(s.failed.every((f) => f.attempts === 1 && f.message.includes(out)), JSON.stringify(s.failed));
  const st = spawnSync(process.execPath, [CLI, 'status', '--redis', server.url, id], { encoding: 'utf8' });
  assert.equal(st.status, STATUS_FAILED_EXIT, st.stderr);
  assert.match(st.stdout, /^ETA: +none: stopped/m);
});
