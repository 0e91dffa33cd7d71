/**
 * The queue (BullMQ workers, a real redis-server) against a bucket (s3rver on loopback, test/helpers/s3-server.ts):
 * two workers predict from and into s3://, one is killed (kill -9) mid-run, and the output equals a local
 * single-process run byte for byte.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Vec3 } from '../src/io/formats/volume.js';
import { configureS3 } from '../src/io/stores/index.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { queueStatus } from '../src/queue/status.js';
import { REPO_ROOT } from './helpers/data.js';
import { startRedis, type RedisServer } from './helpers/redis-server.js';
import { S3RVER_KEY, S3RVER_SECRET, bucketObjects, startS3Server, uploadFolder, type S3Server } from './helpers/s3-server.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { outputFiles } from './helpers/volumes.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const SHAPE: Vec3 = [2, 192, 192];
const ENV = { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET, AWS_REGION: 'us-east-1' };
const WAIT_MS = 180_000;
const WORK = tempDir('s3-queue');
let server: S3Server;
let redis: RedisServer;
let model: string;
let reference: string;
const procs: ChildProcess[] = [];

before(async () => {
  Object.assign(process.env, ENV);
  server = await startS3Server();
  configureS3({ endpoint: server.endpoint });
  redis = await startRedis();
  const { zarr } = await writeVolume(WORK, SHAPE, await sampleVolume(SHAPE), [1, 64, 64]);
  await uploadFolder(server, zarr, 'raw.zarr');
  model = zooModel(WORK, 'reference-net', 5);
  reference = join(WORK, 'single.zarr');
  const r = await runVolumePredict({ models: [model], input: join(zarr, '0'), out: reference, membraneProb: true, tta: false, bf16: false, tile: 64,
    threads: 1, backend: 'auto', dtype: 'uint8', block: [1, 64, 64] });
  assert.ok(r.complete);
});

const killGroup = (w: ChildProcess) => {
  try {
    process.kill(-w.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
};

after(async () => {
  procs.forEach(killGroup);
  configureS3({});
  await redis?.stop();
  await server?.stop();
  rmSync(WORK, { recursive: true, force: true });
});

/** A queue worker in its own process group (the "machine"), reading and writing the bucket. */
function worker(name: string, journal: string): ChildProcess {
  const proc = spawn(process.execPath, [CLI, 'worker', '--redis', redis.url, '--threads', '1', '--name', name, '--journal', journal, '--quiet',
    '--lock-ms', '2000', '--stalled-ms', '1000', '--s3-endpoint', server.endpoint], { stdio: 'ignore', detached: true, env: { ...process.env, ...ENV } });
  procs.push(proc);
  return proc;
}

const journaled = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).length : 0);

test('two queue workers against the bucket, one killed (kill -9) mid-run: the other finishes and the output equals a local run byte for byte', async () => {
  const sub = await run(process.execPath, [CLI, 'submit', 'predict', '--model', model, '--input', `s3://${server.bucket}/raw.zarr/0`, '--out', `s3://${server.bucket}/maps.zarr`,
    '--block', '1,64,64', '--tile', '64', '--dtype', 'uint8', '--membrane-prob', '--redis', redis.url, '--s3-endpoint', server.endpoint], { env: { ...process.env, ...ENV } });
  const jobset = sub.stdout.trim();
  const log = join(WORK, 'queue.jsonl');
  const victim = worker('victim', log);
  worker('survivor', log);
  const deadline = Date.now() + WAIT_MS;
  while (journaled(log) < 2 && Date.now() < deadline) await sleep(100);
  killGroup(victim); // the machine dies mid-run: no clean-up
  for (;;) {
    const [st] = await queueStatus(redis.url, jobset);
    if (st!.active + st!.waiting === 0 && (st!.failed.length > 0 || st!.pyramid === 'completed')) break;
    if (Date.now() > deadline) assert.fail(`job set ${jobset} did not settle: ${JSON.stringify(st)}`);
    await sleep(200);
  }
  const [st] = await queueStatus(redis.url, jobset);
  assert.deepEqual([st!.done, st!.failed.length, st!.pyramid], [st!.total, 0, 'completed'], JSON.stringify(st!.failed));
  const stored = await bucketObjects(server, 'maps.zarr');
  const local = outputFiles(reference);
  const chunks = (m: Map<string, Buffer>) => new Map([...m].filter(([n]) => !n.split('/').some((p) => p.startsWith('.'))));
  assert.ok(chunks(local).size > 8);
  assert.deepEqual(chunks(stored), chunks(local));
});
