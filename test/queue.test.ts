/**
 * The block queue end to end, with a real redis-server (private, on a free loopback port) and real `emseg worker`
 * processes: the output equals a single-process `emseg predict` byte for byte, also when a worker is killed with
 * SIGKILL mid-run, when Redis restarts mid-run (append-only persistence), with a poison block, with a worker
 * started before any job, with the same plan submitted twice, and with blocks that outlive their job lock; a
 * worker killed alone leaves no orphaned block child; a wrong password, a closed port and a Redis gone for good
 * end worker, submit and status with one clear line instead of endless retries. Queued segmentation (its passes
 * queued one after another) equals a single-process `emseg segment`, also with a worker killed mid-run; so do the
 * queued 3-D neurons (`submit segment --method watershed-agglomerate --block`: fragments, edges, relabel).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Vec3 } from '../src/io/formats/volume.js';
import { openVolume } from '../src/io/registry.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { STATUS_FAILED_EXIT } from '../src/cli/info.js';
import { connectOnce, QUEUE_NAME } from '../src/queue/connection.js';
import { mapPath, parsePathMap, type BlockResult } from '../src/queue/jobs.js';
import { queueStatus, type JobsetStatus } from '../src/queue/status.js';
import { startWorker } from '../src/queue/worker.js';
import { REPO_ROOT } from './helpers/data.js';
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { outputFiles } from './helpers/volumes.js';
import { writeMaps } from './helpers/segment-maps.js';
import { noisyAffinities, voronoiNeurons, writeAffinityZarr } from './helpers/neurons.js';
import { NEAREST_OFFSETS } from '../src/image/affinities.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [2, 256, 256];
const BLOCK = '1,64,64';
const TOTAL = 2 * 4 * 4;
/** Maps of the queued segmentation: 3 x 3 x 3 blocks of 64 with a halo of 16. */
const SEG_SHAPE: Vec3 = [3, 192, 192];
const POLL_MS = 100;
const WAIT_MS = 60_000;
/** Short locks so a dead worker's block is taken back in seconds, not the default 30 s. */
const FAST_LOCKS = ['--lock-ms', '2000', '--stalled-ms', '1000'];
/** Time for a frozen worker's last commands to reach Redis (well under the lock). */
const SETTLE_MS = 100;
/** Blocks journaled before a fault is injected: the run is under way, most blocks not done. */
const FAULT_AFTER = 4;

let fx: { dir: string; input: string; model: string; reference: string };

before(async () => {
  const dir = tempDir('queue');
  const { zarr } = await writeVolume(dir, SHAPE, await sampleVolume(SHAPE), [1, 64, 64]);
  const input = join(zarr, '0');
  const model = zooModel(dir, 'reference-net', 5);
  const reference = join(dir, 'single.zarr');
  const r = await runVolumePredict({ models: [model], input, out: reference, membraneProb: false, tta: false, bf16: false, tile: 512,
    threads: 1, backend: 'auto', dtype: 'uint8', block: [1, 64, 64] });
  assert.ok(r.complete);
  fx = { dir, input, model, reference };
});

const workers = new Set<ChildProcess>();
const servers = new Set<RedisServer>();
after(async () => {
  for (const w of workers) killGroup(w);
  for (const s of servers) await s.stop();
});

async function redis(options: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
  const s = await startRedis(options);
  servers.add(s);
  return s;
}

function killGroup(w: ChildProcess): void {
  try {
    process.kill(-w.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

function emseg(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

function submit(url: string, out: string, extra: string[] = []): string {
  const r = emseg(['submit', 'predict', '--model', fx.model, '--input', fx.input, '--out', out, '--block', BLOCK, '--redis', url, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** A worker in its own process group (the group is the "machine": kill -9 takes its block children too). */
function worker(url: string, name: string, journal: string, extra: string[] = []): { proc: ChildProcess; exited: Promise<unknown> } {
  const proc = spawn(process.execPath, [CLI, 'worker', '--redis', url, '--threads', '1', '--name', name, '--journal', journal, '--quiet', ...extra],
    { stdio: 'ignore', detached: true });
  workers.add(proc);
  return { proc, exited: new Promise((res) => proc.on('exit', res)) };
}

async function stopWorker(w: { proc: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  w.proc.kill('SIGTERM');
  await w.exited;
  killGroup(w.proc);
  workers.delete(w.proc);
}

function journal(path: string): BlockResult[] {
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as BlockResult) : [];
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** Waits until no block of the set is queued or running and the pyramid job (if the set can finish) has run. */
async function settled(url: string, jobset: string): Promise<JobsetStatus> {
  return waitUntil(`job set ${jobset} to settle`, async () => {
    const [s] = await queueStatus(url, jobset);
    const idle = s!.active + s!.waiting === 0;
    return idle && (s!.failed.length > 0 || s!.pyramid === 'completed') ? s : undefined;
  });
}

/** Every chunk and metadata file (the pyramid included) equals the single-process run's, byte for byte. */
function assertSameAsSingle(out: string): void {
  const a = outputFiles(out);
  const b = outputFiles(fx.reference);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs from the single-process output`);
}

function doneMarkers(out: string): number {
  const dir = join(out, '.emseg', 'blocks');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.done.json')).length : 0;
}

test('a password URL; a worker started before any job; two submits of the same plan; two workers write what one process writes', async () => {
  const server = await redis({ password: 'pa ss/word' });
  const bad = server.url.replace(encodeURIComponent('pa ss/word'), 'wrong');
  await assert.rejects(connectOnce(bad), (err: { code?: string }) => err.code === 'redis-auth');
  const out = join(fx.dir, 'two.zarr');
  const log = join(fx.dir, 'two.jsonl');
  const early = worker(server.url, 'early', log);
  await sleep(500); // it is polling an empty queue
  const id = submit(server.url, out);
  assert.equal(submit(server.url, out), id, 'the same plan gives the same job set');
  const late = worker(server.url, 'late', log);
  const s = await settled(server.url, id);
  assert.deepEqual([s.done, s.failed.length, s.total], [TOTAL, 0, TOTAL]);
  await stopWorker(early);
  await stopWorker(late);
  const runs = journal(log);
  assert.equal(runs.length, TOTAL, 'every block computed once, none twice (the second submit added no job)');
  assert.deepEqual([...new Set(runs.map((r) => r.index))].sort((a, b) => a - b), [...Array(TOTAL).keys()]);
  assert.ok(runs.some((r) => r.worker === 'early'), 'the worker started before any job took blocks');
  assertSameAsSingle(out);
  const st = emseg(['status', '--redis', server.url, id]);
  assert.equal(st.status, 0, st.stderr);
});

test('kill -9 of a worker mid-run: its block is taken by another worker, and the output is identical', async () => {
  const server = await redis();
  const out = join(fx.dir, 'killed.zarr');
  const log = join(fx.dir, 'killed.jsonl');
  const id = submit(server.url, out);
  const victim = worker(server.url, 'victim', log, FAST_LOCKS);
  const queue = new Queue(QUEUE_NAME, { connection: { url: server.url } });
  try {
    // Freeze the machine (worker and block child) and look: a block active now cannot complete any more, so the
    // kill cuts it off mid-run. Commands sent just before the freeze get SETTLE_MS to reach Redis first.
    const cut = await waitUntil('a block in progress after some are done', async () => {
      if (journal(log).length < FAULT_AFTER) return undefined;
      process.kill(-victim.proc.pid!, 'SIGSTOP');
      await sleep(SETTLE_MS);
      const jobs = await queue.getActive();
      if (jobs.length > 0) return jobs.map((j) => j.id!);
      process.kill(-victim.proc.pid!, 'SIGCONT');
      return undefined;
    });
    killGroup(victim.proc); // the machine dies: worker and its block child, no cleanup
    await victim.exited;
    const rescuer = worker(server.url, 'rescuer', log, FAST_LOCKS);
    const s = await settled(server.url, id);
    await stopWorker(rescuer);
    assert.deepEqual([s.done, s.failed.length], [TOTAL, 0]);
    for (const jobId of cut) {
      const job = await queue.getJob(jobId);
      assert.equal((job!.returnvalue as BlockResult).worker, 'rescuer', `block job ${jobId} was finished by the surviving worker`);
    }
  } finally {
    await queue.close();
  }
  assert.equal(doneMarkers(out), TOTAL);
  assertSameAsSingle(out);
});

test('Redis restarted mid-run (append-only): no block lost, none computed twice', async () => {
  const server = await redis({ appendonly: true });
  const out = join(fx.dir, 'restart.zarr');
  const log = join(fx.dir, 'restart.jsonl');
  const id = submit(server.url, out);
  const a = worker(server.url, 'a', log, FAST_LOCKS);
  const b = worker(server.url, 'b', log, FAST_LOCKS);
  await waitUntil('blocks under way', () => (journal(log).length >= FAULT_AFTER ? true : undefined));
  assert.ok(journal(log).length < TOTAL - FAULT_AFTER, 'the restart comes while most blocks are still to do');
  await server.restart(1000);
  const s = await settled(server.url, id);
  await stopWorker(a);
  await stopWorker(b);
  assert.deepEqual([s.done, s.failed.length], [TOTAL, 0]);
  const runs = journal(log);
  const perBlock = new Map<number, number>();
  for (const r of runs) perBlock.set(r.index, (perBlock.get(r.index) ?? 0) + 1);
  assert.equal(perBlock.size, TOTAL, 'every block was computed');
  assert.ok([...perBlock.values()].every((n) => n === 1), `a block was computed twice: ${JSON.stringify([...perBlock])}`);
  assertSameAsSingle(out);
});

test('a poison block fails after its attempts with its coordinates, the rest finishes, status exits non-zero; a resubmit after the repair completes', async () => {
  const server = await redis();
  const dir = tempDir('queue-poison');
  cpSync(join(fx.input, '..'), join(dir, 'raw.zarr'), { recursive: true });
  const input = join(dir, 'raw.zarr', '0');
  const chunk = join(input, '1', '2', '1');
  const good = readFileSync(chunk);
  writeFileSync(chunk, 'this is not a blosc chunk');
  const out = join(dir, 'maps.zarr');
  const args = ['submit', 'predict', '--model', fx.model, '--input', input, '--out', out, '--block', BLOCK, '--redis', server.url,
    '--attempts', '2', '--backoff', '100'];
  const sub = emseg(args);
  assert.equal(sub.status, 0, sub.stderr);
  const id = sub.stdout.trim();
  const w = worker(server.url, 'w', join(dir, 'journal.jsonl'));
  const s = await settled(server.url, id);
  assert.ok(s.failed.length >= 1 && s.done + s.failed.length === TOTAL, JSON.stringify(s));
  assert.ok(s.failed.every((f) => f.attempts === 2 && /block 1,/.test(f.where)), JSON.stringify(s.failed));
  assert.equal(s.pyramid, 'none', 'an output with a failed block gets no pyramid');
  const st = emseg(['status', '--redis', server.url, id, '--json']);
  assert.equal(st.status, STATUS_FAILED_EXIT, 'status exits non-zero (its own status) when blocks failed');
  assert.equal((JSON.parse(st.stdout) as JobsetStatus).failed.length, s.failed.length);
  const text = emseg(['status', '--redis', server.url, id]);
  assert.equal(text.status, STATUS_FAILED_EXIT);
  assert.match(text.stdout, /^ETA: +none: stopped$/m, 'nothing runs: no ETA');
  // The output's own markers agree: failed blocks are recorded with their coordinates and never marked done.
  const failedMarkers = readdirSync(join(out, '.emseg', 'blocks')).filter((n) => n.endsWith('.failed.json'));
  assert.equal(failedMarkers.length, s.failed.length);
  assert.equal(doneMarkers(out), s.done);
  writeFileSync(chunk, good);
  const again = emseg(args);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout.trim(), id);
  const fixed = await settled(server.url, id);
  await stopWorker(w);
  assert.deepEqual([fixed.done, fixed.failed.length, fixed.pyramid], [TOTAL, 0, 'completed']);
  const cancel = emseg(['cancel', '--redis', server.url, id]);
  assert.equal(cancel.status, 0, cancel.stderr);
});

test('a worker that mounts the shared storage elsewhere (--path-map) computes the same job set and bytes', async () => {
  const server = await redis();
  const mounts = tempDir('queue-mounts');
  const a = join(mounts, 'submitter');
  const b = join(mounts, 'worker');
  mkdirSync(a);
  cpSync(join(fx.input, '..'), join(a, 'raw.zarr'), { recursive: true });
  cpSync(fx.model, join(a, 'model'), { recursive: true });
  const out = join(a, 'maps.zarr');
  const sub = emseg(['submit', 'predict', '--model', join(a, 'model'), '--input', join(a, 'raw.zarr', '0'), '--out', out, '--block', BLOCK, '--redis', server.url]);
  assert.equal(sub.status, 0, sub.stderr);
  const id = sub.stdout.trim();
  renameSync(a, b); // the storage now lives under another path: only the path map leads the worker to it
  const log = join(mounts, 'journal.jsonl');
  const w = worker(server.url, 'elsewhere', log, ['--path-map', `${a}=${b}`]);
  const s = await settled(server.url, id);
  await stopWorker(w);
  assert.deepEqual([s.done, s.failed.length, s.pyramid], [TOTAL, 0, 'completed']);
  assert.equal(journal(log).length, TOTAL);
  const fa = outputFiles(join(b, 'maps.zarr'));
  const fr = outputFiles(fx.reference);
  for (const [k, v] of fa) if (k !== '.zattrs') assert.ok(v.equals(fr.get(k)!), `${k} differs`); // .zattrs names this copy's paths
  assert.throws(() => parsePathMap('relative=/x'), (err: { code?: string }) => err.code === 'invalid-option');
  assert.equal(mapPath('/mnt/a/b', [{ from: '/mnt/a', to: '/data' }]), '/data/b');
  assert.equal(mapPath('/mnt/ab', [{ from: '/mnt/a', to: '/data' }]), '/mnt/ab', 'whole path components only');
});

test('cancel removes the blocks that have not started; a new submit queues them again', async () => {
  const server = await redis();
  const out = join(fx.dir, 'cancelled.zarr');
  const id = submit(server.url, out);
  const c = emseg(['cancel', '--redis', server.url, id]);
  assert.equal(c.status, 0, c.stderr);
  let [s] = await queueStatus(server.url, id);
  assert.deepEqual([s!.waiting, s!.active, s!.cancelled, s!.done], [0, 0, TOTAL, 0]);
  assert.equal(submit(server.url, out), id);
  [s] = await queueStatus(server.url, id);
  assert.deepEqual([s!.waiting, s!.cancelled], [TOTAL, 0]);
  const missing = emseg(['cancel', '--redis', server.url, 'no-such-set']);
  assert.notEqual(missing.status, 0);
});

test('a block computing longer than the job lock keeps it (renewed while the child computes): none taken back, none computed twice', async () => {
  const server = await redis();
  const out = join(fx.dir, 'long.zarr');
  const log = join(fx.dir, 'long.jsonl');
  // Blocks here take about 0.5 s on an idle 2-core machine, so each outlives its lock and lives on renewals (every
  // lockMs / 2). A shorter lock is not a harder test, only one that a loaded machine fails by delaying a renewal.
  const lockMs = 300;
  const id = submit(server.url, out, ['--block', `1,${SHAPE[1]},${SHAPE[2]}`]);
  const locks = ['--lock-ms', String(lockMs), '--stalled-ms', String(lockMs)];
  const ws = [worker(server.url, 'a', log, locks), worker(server.url, 'b', log, locks)];
  const s = await settled(server.url, id);
  for (const w of ws) await stopWorker(w);
  assert.deepEqual([s.done, s.failed.length, s.total], [SHAPE[0], 0, SHAPE[0]]);
  const runs = journal(log);
  assert.deepEqual(runs.map((r) => r.index).sort((a, b) => a - b), [...Array(SHAPE[0]).keys()], 'each block computed once');
  assert.ok(runs.every((r) => r.attempt === 1 && r.end - r.start > lockMs),
    `every block outlived its lock: ${runs.map((r) => `${r.end - r.start} ms, attempt ${r.attempt}`).join('; ')}`);
  // Other blocks, other chunk files: the voxels equal the single-process run's.
  const whole = { start: [0, 0, 0] as Vec3, end: SHAPE };
  const [got, want] = await Promise.all([join(out, '0'), join(fx.reference, '0')].map(async (p) => (await openVolume(p)).readRegion(whole)));
  assert.ok(Buffer.from(got!.buffer).equals(Buffer.from(want!.buffer)));
});

/** Pids of the processes whose parent is `pid` (from /proc: the worker's block children). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat?.ppid === pid) out.push(Number(name));
  }
  return out;
}

/** State and parent of a process, or undefined once it is gone. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ')'.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Exited (a zombie not yet reaped by whoever adopted it has exited too). */
const gone = (pid: number) => {
  const s = procStat(pid);
  return s === undefined || s.state === 'Z';
};

test('kill -9 of a worker (not its process group): its block children exit too, mid-run and idle', async () => {
  const server = await redis();
  const out = join(fx.dir, 'orphans.zarr');
  const log = join(fx.dir, 'orphans.jsonl');
  const id = submit(server.url, out);
  for (const phase of ['mid-run', 'idle']) {
    const w = worker(server.url, phase, log, FAST_LOCKS);
    if (phase === 'mid-run') await waitUntil('blocks under way', () => (journal(log).length >= FAULT_AFTER ? true : undefined));
    else await settled(server.url, id); // every block done: the child waits in BullMQ's pool for the next job
    const children = await waitUntil(`a block child of the ${phase} worker`, () => {
      const pids = childPids(w.proc.pid!);
      return pids.length > 0 ? pids : undefined;
    });
    process.kill(w.proc.pid!, 'SIGKILL'); // `kill -9 PID`: the worker alone, its children are not signalled
    await w.exited;
    workers.delete(w.proc);
    await waitUntil(`the ${phase} worker's children ${children.join(', ')} to exit`, () => (children.every(gone) ? true : undefined));
  }
  const [s] = await queueStatus(server.url, id);
  assert.deepEqual([s!.done, s!.failed.length], [TOTAL, 0], 'the block cut off mid-run was taken back and finished');
  assertSameAsSingle(out);
});

/** The CLI, given at most `limitMs`: a command that hangs or retries forever is killed, and fails the assertion. */
function emsegWithin(args: string[], limitMs: number) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: limitMs, killSignal: 'SIGKILL' });
}

/** Far more than a bounded retry takes on a slow machine, far less than forever. */
const FAIL_FAST_MS = 60_000;

test('a wrong password or a closed port: worker, submit and status fail fast with a clear error, the password never shown', async () => {
  const password = 'right-pass';
  const server = await redis({ password });
  const wrong = server.url.replace(password, 'wrong-pass');
  const closed = `redis://:wrong-pass@127.0.0.1:${await freePort()}`; // loopback, nothing listens there
  const quietly = () => undefined;
  await assert.rejects(startWorker({ redis: wrong }, quietly), (err: { code?: string }) => err.code === 'redis-auth');
  await assert.rejects(queueStatus(wrong), (err: { code?: string }) => err.code === 'redis-auth');
  await assert.rejects(startWorker({ redis: closed }, quietly), (err: { code?: string }) => err.code === 'redis-unreachable');
  await assert.rejects(queueStatus(closed), (err: { code?: string }) => err.code === 'redis-unreachable');
  for (const url of [wrong, closed]) {
    const port = new URL(url).port;
    for (const args of [['worker', '--redis', url, '--quiet'], ['status', '--redis', url],
      ['submit', 'predict', '--model', fx.model, '--input', fx.input, '--out', join(fx.dir, 'never.zarr'), '--block', BLOCK, '--redis', url]]) {
      const r = emsegWithin(args, FAIL_FAST_MS);
      const what = `${args[0]} on ${url === wrong ? 'a wrong password' : 'a closed port'}`;
      assert.equal(r.signal, null, `${what} did not give up within ${FAIL_FAST_MS} ms: ${r.stderr.slice(0, 500)}`);
      assert.notEqual(r.status, 0, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line, no stack trace, no repeated retries:\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`redis://(:\\*\\*\\*@)?127\\.0\\.0\\.1:${port}`), `${what} names the URL`);
      assert.ok(!r.stderr.includes('wrong-pass') && !r.stderr.includes(password), `${what} shows a password: ${r.stderr}`);
    }
  }
  assert.equal(existsSync(join(fx.dir, 'never.zarr')), false, 'a submit that cannot reach Redis creates no output');
});

test('a worker that loses Redis for longer than --redis-outage stops with redis-unreachable and exits non-zero', async () => {
  const password = 'outage-pass';
  const server = await redis({ password });
  const lost = await startWorker({ redis: server.url, outageSeconds: 2 }, () => undefined);
  const cli = spawn(process.execPath, [CLI, 'worker', '--redis', server.url, '--redis-outage', '2', '--log-every', '3600'],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  workers.add(cli);
  let stderr = '';
  cli.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((res) => cli.on('exit', (code) => res(code)));
  await waitUntil('the CLI worker to connect', () => (/worker: connected/.test(stderr) ? true : undefined));
  await server.stop();
  await assert.rejects(lost.lost, (err: { code?: string }) => err.code === 'redis-unreachable');
  const code = await Promise.race([exited, sleep(FAIL_FAST_MS).then(() => 'still running')]);
  assert.ok(typeof code === 'number' && code !== 0, `the worker exits non-zero once the outage outlasts --redis-outage: ${code}\n${stderr}`);
  assert.match(stderr, /lost Redis and could not reconnect within 2 s/);
  assert.ok(!stderr.includes(password), stderr);
  assert.ok(stderr.split('\n').filter((l) => l.startsWith('error:')).length <= 2, `each error is said once, not once per reconnect:\n${stderr}`);
  workers.delete(cli);
});

test('submit segment: two workers, one killed with SIGKILL mid-run, give byte for byte the cells of emseg segment; each pass waits for the one before', async () => {
  const server = await redis();
  const maps = join(fx.dir, 'seg-maps.zarr');
  await writeMaps(maps, SEG_SHAPE, [1, 64, 64]);
  const flags = ['--block', '1,64,64', '--halo', '16', '--quiet'];
  // Same name at the same depth: the labels image records its name and the maps' path relative to itself.
  const local = join(fx.dir, 'seg-local', 'cells.zarr');
  const one = emseg(['segment', '--pred', maps, '--out', local, ...flags]);
  assert.equal(one.status, 0, one.stderr);
  const out = join(fx.dir, 'seg-queued', 'cells.zarr');
  const r = emseg(['submit', 'segment', '--pred', maps, '--out', out, '--redis', server.url, ...flags]);
  assert.equal(r.status, 0, r.stderr);
  const id = r.stdout.trim();
  const log = join(fx.dir, 'seg.jsonl');
  const victim = worker(server.url, 'victim', log, FAST_LOCKS);
  await waitUntil('some pass-1 blocks done', () => (journal(log).length >= FAULT_AFTER ? true : undefined));
  killGroup(victim.proc); // mid-run: worker and block child, no cleanup
  await victim.exited;
  const early = journal(log);
  assert.ok(early.every((b) => b.task === 'segment'), 'no block of the relabel pass ran before pass 1 was complete');
  const rescuer = worker(server.url, 'rescuer', log, FAST_LOCKS);
  const helper = worker(server.url, 'helper', log, FAST_LOCKS);
  const s = await settled(server.url, id);
  await stopWorker(rescuer);
  await stopWorker(helper);
  const blocks = SEG_SHAPE[0] * (SEG_SHAPE[1] / 64) * (SEG_SHAPE[2] / 64);
  assert.deepEqual([s.done, s.failed.length, s.total, s.tasks.map((t) => [t.task, t.done])], [2 * blocks, 0, 2 * blocks, [['segment', blocks], ['relabel', blocks]]]);
  const runs = journal(log);
  const lastSegment = Math.max(...runs.filter((b) => b.task === 'segment').map((b) => b.end));
  assert.ok(runs.filter((b) => b.task === 'relabel').every((b) => b.start >= lastSegment), 'relabelling started after the last pass-1 block');
  const a = outputFiles(out);
  const b = outputFiles(local);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs from emseg segment's output`);
  assert.ok(!existsSync(join(out, '.emseg', 'segment', 'labels')), 'the provisional labels are removed once complete');
});

test('submit segment --method watershed-agglomerate --block: two workers, one killed with SIGKILL mid-run, give byte for byte the neurons of emseg segment', async () => {
  const server = await redis();
  const shape: Vec3 = [24, 64, 64];
  const affs = join(fx.dir, 'affs.zarr');
  writeAffinityZarr(affs, noisyAffinities(voronoiNeurons(shape, 12, 7, 0.5), shape, NEAREST_OFFSETS, 0.1, 3), shape, NEAREST_OFFSETS);
  const flags = ['--method', 'watershed-agglomerate', '--block', '8,32,32', '--halo', '4', '--quiet'];
  const blocks = 3 * 2 * 2;
  // Same name at the same depth: the labels image records its name and the affinities' path relative to itself.
  const local = join(fx.dir, 'neurons-local', 'neurons.zarr');
  const one = emseg(['segment', '--pred', affs, '--out', local, ...flags]);
  assert.equal(one.status, 0, one.stderr);
  const out = join(fx.dir, 'neurons-queued', 'neurons.zarr');
  const r = emseg(['submit', 'segment', '--pred', affs, '--out', out, '--redis', server.url, ...flags]);
  assert.equal(r.status, 0, r.stderr);
  const id = r.stdout.trim();
  const log = join(fx.dir, 'neurons.jsonl');
  const victim = worker(server.url, 'victim', log, FAST_LOCKS);
  await waitUntil('some fragment blocks done', () => (journal(log).length >= FAULT_AFTER ? true : undefined));
  killGroup(victim.proc); // mid-run: worker and block child, no cleanup
  await victim.exited;
  const rescuer = worker(server.url, 'rescuer', log, FAST_LOCKS);
  const helper = worker(server.url, 'helper', log, FAST_LOCKS);
  const s = await settled(server.url, id);
  await stopWorker(rescuer);
  await stopWorker(helper);
  assert.deepEqual([s.failed.length, s.tasks.map((t) => [t.task, t.done])], [0, [['fragments', blocks], ['edges', blocks], ['relabel', blocks]]]);
  const runs = journal(log);
  const lastOf = (task: string) => Math.max(...runs.filter((b) => b.task === task).map((b) => b.end));
  assert.ok(runs.filter((b) => b.task === 'edges').every((b) => b.start >= lastOf('fragments')), 'edges started after the last fragment block');
  assert.ok(runs.filter((b) => b.task === 'relabel').every((b) => b.start >= lastOf('edges')), 'relabelling started after the last edge block');
  const a = outputFiles(out);
  const b = outputFiles(local);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs from emseg segment's output`);
});
