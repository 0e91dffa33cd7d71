/**
 * Volumes in object storage at s3://bucket/prefix (src/io/stores/s3.ts), against a real S3-compatible server (s3rver
 * on a free loopback port, test/helpers/s3-server.ts, signatures checked): OME-Zarr images (v2 written by emseg, a v3 /
 * NGFF 0.5 image written by zarrita) uploaded to a bucket read as the same folders on disk; absent chunks, missing
 * arrays, throttling, dropped connections, wrong keys and missing buckets behave as the store promises.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import type { Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { openVolume } from '../src/io/registry.js';
import { configureS3 } from '../src/io/stores/index.js';
import { S3_RETRY } from '../src/io/stores/s3.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { S3RVER_KEY, S3RVER_SECRET, startS3Server, type S3Server } from './helpers/s3-server.js';
import { sampleVolume, tempDir, writeVolume } from './helpers/volume-predict-fixture.js';

const run = promisify(execFile);
const SHAPE: Vec3 = [3, 96, 128];
const CHUNKS: Vec3 = [1, 48, 64];
const LOCAL = tempDir('s3-local');
const WORK = tempDir('s3-work');
let server: S3Server;
let data: Uint8Array;
let local: string;
/** s3://BUCKET */
let bucket: string;

const ENV = { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET, AWS_REGION: 'us-east-1' };

/** Every file under `dir`, by '/'-separated relative path. */
function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** Copies a local folder into the bucket under `prefix` with the SDK itself (not through the store under test). */
async function upload(dir: string, prefix: string): Promise<void> {
  const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET } });
  for (const [name, bytes] of files(dir)) await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}/${name}`, Body: bytes }));
  client.destroy();
}

/** `emseg ARGS` in a child process (async: this process serves the S3 requests meanwhile). */
async function emseg(args: string[], env: Record<string, string> = ENV): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('node', [join(REPO_ROOT, 'bin/emseg.js'), ...args], { cwd: WORK, encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A Zarr v3 / NGFF 0.5 image (uint16, gzip) written by zarrita, as another writer would. */
async function writeV3(dir: string): Promise<void> {
  registerZarrCodecs();
  const store = new FileSystemStore(dir);
  const values = Uint16Array.from({ length: 2 * 20 * 30 }, (_, i) => (i * 37) % 65536);
  const axes = ['z', 'y', 'x'].map((name) => ({ name, type: 'space' }));
  await zarr.create(zarr.root(store), { attributes: { ome: { version: '0.5', multiscales: [{ axes, datasets: [{ path: 's0', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1] }] }] }] } } });
  const arr = await zarr.create(zarr.root(store).resolve('s0'), { shape: [2, 20, 30], chunkShape: [1, 8, 16], dtype: 'uint16', codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'gzip', configuration: { level: 1 } }] });
  await zarr.set(arr, null, { data: values, shape: [2, 20, 30], stride: [600, 30, 1] } as never);
}

before(async () => {
  Object.assign(process.env, ENV);
  server = await startS3Server();
  configureS3({ endpoint: server.endpoint });
  bucket = `s3://${server.bucket}`;
  data = await sampleVolume(SHAPE);
  ({ zarr: local } = await writeVolume(LOCAL, SHAPE, data, CHUNKS));
  await writeV3(join(LOCAL, 'v3.zarr'));
  await upload(local, 'raw.zarr');
  await upload(join(LOCAL, 'v3.zarr'), 'v3.zarr');
});

after(async () => {
  configureS3({});
  await server?.stop();
  for (const d of [LOCAL, WORK]) rmSync(d, { recursive: true, force: true });
});

test('emseg info s3://... prints what it prints for the same folder on disk (v2 OME-Zarr, one of its arrays, v3 / NGFF 0.5); the endpoint from the flag or the environment', async () => {
  for (const name of ['raw.zarr', 'raw.zarr/0', 'v3.zarr']) {
    const there = await emseg(['info', '--json', '--exact', `${bucket}/${name}`, '--s3-endpoint', server.endpoint]);
    const here = await emseg(['info', '--json', '--exact', join(LOCAL, name)]);
    assert.equal(there.code, 0, there.stderr);
    assert.equal(here.code, 0, here.stderr);
    const { path: p1, ...remote } = JSON.parse(there.stdout) as Record<string, unknown>;
    const { path: _p2, ...disk } = JSON.parse(here.stdout) as Record<string, unknown>;
    assert.deepEqual(remote, disk, name);
    assert.equal(p1, `${bucket}/${name}`);
  }
  const byEnv = await emseg(['info', `${bucket}/raw.zarr`], { ...ENV, AWS_ENDPOINT_URL_S3: server.endpoint });
  assert.equal(byEnv.code, 0, byEnv.stderr);
  assert.match(byEnv.stdout, /shape: {3}3 x 96 x 128/);
});

test('reads through the library equal the folder on disk; an absent chunk is missing-chunk, or the fill value when allowed; a missing array is not-found naming the URL', async () => {
  const whole = { start: [0, 0, 0] as Vec3, end: SHAPE };
  assert.deepEqual(await (await openVolume(`${bucket}/raw.zarr`)).readRegion(whole), data);
  const holey = `${bucket}/holey.zarr`;
  await upload(local, 'holey.zarr');
  const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' });
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  await client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: 'holey.zarr/0/1/0/1' }));
  client.destroy();
  await assert.rejects((await openVolume(holey)).readRegion(whole), refused('missing-chunk', `${holey}/0/1/0/1`));
  const v = await openVolume(holey, { allowMissingChunks: true });
  const got = await v.readRegion(whole);
  assert.deepEqual(v.missingChunks?.(), { count: 1, atLeast: false, fill: 0 });
  assert.equal(got[SHAPE[1] * SHAPE[2] + 10 * SHAPE[2] + 70], 0); // z 1, y 10, x 70 lies in chunk (1, 0, 1)
  assert.equal(got[5], data[5]);
  await assert.rejects(openVolume(`${bucket}/nothing.zarr`), refused('not-found', `${bucket}/nothing.zarr`));
  await assert.rejects(openVolume(`${bucket}/raw.zarr/7`), refused('not-found', `${bucket}/raw.zarr/7`));
  await assert.rejects(openVolume('s3://Not_A_Bucket/x.zarr'), refused('invalid-option'));
});

test('throttling (503 SlowDown) and dropped connections are retried with backoff; a 503 that persists is s3-failed naming the object', async () => {
  const v = await openVolume(`${bucket}/raw.zarr`);
  const chunk = new RegExp(`^GET /${server.bucket}/raw\\.zarr/0/0/0/0$`);
  server.faults.push({ match: chunk, fault: 503 }, { match: chunk, fault: 'reset' }, { match: chunk, fault: 503 });
  const since = server.requests.length;
  const got = await v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] });
  assert.deepEqual([...got], [0, 1, 2, 3].flatMap((y) => [...data.subarray(y * SHAPE[2], y * SHAPE[2] + 4)]));
  assert.deepEqual(server.requests.slice(since).filter((q) => chunk.test(q.line)).map((q) => q.status), [503, 'reset', 503, 200]);
  for (let i = 0; i < S3_RETRY.attempts; i++) server.faults.push({ match: chunk, fault: 503 });
  await assert.rejects(v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] }), refused('s3-failed', `${bucket}/raw.zarr/0/0/0/0`, /SlowDown.*5 attempts|5 attempts.*SlowDown/));
  server.faults.length = 0;
});

test('a wrong access key is s3-auth and a missing bucket is no-bucket naming it, from the library and the CLI, with no stack trace', async () => {
  await assert.rejects(openVolume('s3://no-such-bucket/vol.zarr'), refused('no-bucket', 's3://no-such-bucket'));
  const missing = await emseg(['info', 's3://no-such-bucket/vol.zarr', '--s3-endpoint', server.endpoint]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no-such-bucket/);
  const wrong = await emseg(['info', `${bucket}/raw.zarr`, '--s3-endpoint', server.endpoint], { ...ENV, AWS_ACCESS_KEY_ID: 'WRONGKEY' });
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /refused the credentials/);
  assert.doesNotMatch(`${wrong.stderr}${missing.stderr}`, /\n\s+at /, 'no stack trace');
  process.env.AWS_ACCESS_KEY_ID = 'WRONGKEY';
  configureS3({ endpoint: server.endpoint });
  try {
    await assert.rejects(openVolume(`${bucket}/raw.zarr`), refused('s3-auth', `${bucket}/raw.zarr/.zarray`));
  } finally {
    process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY;
    configureS3({ endpoint: server.endpoint });
  }
});
