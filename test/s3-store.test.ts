/**
 * Volumes in object storage at s3://bucket/prefix (src/io/stores/s3.ts), against a real S3-compatible server (s3rver
 * on a free loopback port, test/helpers/s3-server.ts, access keys checked, a wrong secret's 403 injected): OME-Zarr images (v2 written by emseg, a v3 /
 * NGFF 0.5 image written by zarrita) uploaded to a bucket read as the same folders on disk; absent chunks, missing
 * arrays, throttling, dropped connections, wrong keys and missing buckets behave as the store promises.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import type { Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { openVolume } from '../src/io/registry.js';
import { configureS3, storeFor } from '../src/io/stores/index.js';
import { S3_RETRY } from '../src/io/stores/s3.js';
import { crc32 } from '../src/io/formats/chunk-digests.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../src/pipeline/assets.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { S3RVER_KEY, S3RVER_SECRET, bucketObjects, sdkClient, startS3Server, uploadFolder, type S3Server } from './helpers/s3-server.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import type { Manifest } from '../src/viewer/protocol.js';
import { startView } from './helpers/view-process.js';

const run = promisify(execFile);
const SHAPE: Vec3 = [3, 96, 128];
const CHUNKS: Vec3 = [1, 48, 64];
const LOCAL = tempDir('s3-local');
const WORK = tempDir('s3-work');
let server: S3Server;
let data: Uint8Array;
let local: string;
/** The same volume as a PNG stack folder. */
let stackDir: string;
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
const upload = (dir: string, prefix: string) => uploadFolder(server, dir, prefix);

/** Every object under `prefix` in the bucket, by key relative to it, read with the SDK itself. */
const objects = (prefix: string) => bucketObjects(server, prefix);

/** Chunk files only (no metadata, no emseg records): the bytes two runs must agree on. */
const chunksOf = (all: Map<string, Buffer>) => new Map([...all].filter(([n]) => !n.split('/').some((p) => p.startsWith('.'))));

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
  ({ zarr: local, stack: stackDir } = await writeVolume(LOCAL, SHAPE, data, CHUNKS));
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

test('a command on an s3:// volume prints no AWS SDK Node version notice on stderr (emseg supports Node >= 20); other output unchanged', async () => {
  // The SDK's switch emptied, so that the environment this test runs in cannot hide the notice.
  const r = await emseg(['info', `${bucket}/raw.zarr`, '--s3-endpoint', server.endpoint], { ...ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning|AWS SDK for JavaScript|Warning:/);
  assert.match(r.stdout, /shape: {3}3 x 96 x 128/);
});

test('reads through the library equal the folder on disk; an absent chunk is missing-chunk, or the fill value when allowed; a missing array is not-found naming the URL', async () => {
  const whole = { start: [0, 0, 0] as Vec3, end: SHAPE };
  assert.deepEqual(await (await openVolume(`${bucket}/raw.zarr`)).readRegion(whole), data);
  const holey = `${bucket}/holey.zarr`;
  await upload(local, 'holey.zarr');
  const client = sdkClient(server);
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

test('a wrong secret is s3-auth naming the object, at its first request, with no retry (the store\'s 403 SignatureDoesNotMatch / InvalidAccessKeyId, injected: s3rver 3.7.1 does not check V4 signatures)', async () => {
  const wrongSecret = (code = 'SignatureDoesNotMatch') => ({ status: 403, code });
  const since = () => server.requests.length;
  try {
    // A HEAD (no body: the status alone says it; the first request of an open), a GET (S3's XML error) and a PUT.
    let from = since();
    server.faults.push({ match: new RegExp(`^HEAD /${server.bucket}/raw\\.zarr/\\.zarray$`), fault: wrongSecret() });
    await assert.rejects(openVolume(`${bucket}/raw.zarr`), refused('s3-auth', `${bucket}/raw.zarr/.zarray`));
    assert.deepEqual(server.requests.slice(from).map((q) => q.status), [403], 'refused at once, not retried');
    from = since();
    server.faults.push({ match: new RegExp(`^GET /${server.bucket}/raw\\.zarr/\\.zattrs$`), fault: wrongSecret() });
    await assert.rejects(openVolume(`${bucket}/raw.zarr`), refused('s3-auth', `${bucket}/raw.zarr/.zattrs`, /SignatureDoesNotMatch/));
    assert.deepEqual(server.requests.slice(from).filter((q) => q.status === 403).length, 1, 'not retried');
    assert.equal(server.requests.at(-1)?.status, 403, 'nothing asked after the refusal');
    from = since();
    server.faults.push({ match: /^PUT /, fault: wrongSecret('InvalidAccessKeyId') });
    await assert.rejects(storeFor(`${bucket}/auth/x`).store.write(`${bucket}/auth/x`, 'x'), refused('s3-auth', `${bucket}/auth/x`, /InvalidAccessKeyId/));
    assert.deepEqual(server.requests.slice(from).map((q) => q.status), [403]);
    // The CLI with a wrong secret, every request refused as a store that checks signatures refuses it: predict stops
    // at its first request with one message naming the object, no retries, no stack trace.
    for (let i = 0; i < 50; i++) server.faults.push({ match: /./, fault: wrongSecret() });
    from = since();
    const r = await emseg(['predict', '--model', zooModel(WORK, 'reference-net', 7), '--input', `${bucket}/raw.zarr/0`, '--out', `${bucket}/maps-auth.zarr`,
      '--tile', '64', '--block', '1,64,64', '--quiet', '--s3-endpoint', server.endpoint], { ...ENV, AWS_SECRET_ACCESS_KEY: 'WRONG-SECRET' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`s3://${server.bucket}/raw\\.zarr/0/\\.zarray: the store refused the credentials`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(server.requests.slice(from).map((q) => q.status), [403], 'one request: nothing retried');
  } finally {
    server.faults.length = 0;
  }
});

/** The maps a local run writes (the reference of the store runs below). */
const disk = join(WORK, 'maps-disk.zarr');
let model: string;
const predictJob = () => ({ models: [model], tta: false, bf16: false, tile: 64, backend: 'auto' as const, membraneProb: true, dtype: 'uint8' as const, block: [1, 64, 64] as Vec3 });

test('predict store to store writes the chunks a local run writes, byte for byte; a rerun skips every block; the existing output is refused without --overwrite', async () => {
  model = zooModel(WORK, 'reference-net', 7);
  const common = predictJob();
  const there = `${bucket}/maps.zarr`;
  const r1 = await runVolumePredict({ ...common, input: join(local, '0'), out: disk });
  const r2 = await runVolumePredict({ ...common, input: `${bucket}/raw.zarr/0`, out: there });
  assert.ok(r1.complete && r2.complete, r2.failed.map((f) => f.message).join('; '));
  const stored = await objects('maps.zarr');
  const local0 = chunksOf(files(disk));
  assert.ok(local0.size > 4);
  assert.deepEqual(chunksOf(stored), local0);
  for (const meta of ['.zgroup', '0/.zarray', '1/.zarray']) assert.ok(stored.get(meta)?.equals(files(disk).get(meta)!), meta);
  assert.ok([...stored.keys()].some((k) => k.startsWith('.emseg/blocks/') && k.endsWith('.done.json')), 'done markers are objects beside the chunks');
  const again = await runVolumePredict({ ...common, input: `${bucket}/raw.zarr/0`, out: there });
  assert.equal(again.computed, 0);
  assert.equal(again.skipped, r2.skipped + r2.computed);
  await assert.rejects(runVolumePredict({ ...common, input: `${bucket}/raw.zarr/0`, out: `${bucket}/raw.zarr`, overwrite: true }), refused('is-input'));
  await assert.rejects(runVolumePredict({ ...common, input: join(local, '0'), out: `${bucket}/v3.zarr`, overwrite: true }), refused('foreign-file', `${bucket}/v3.zarr`));
  await assert.rejects(runVolumePredict({ ...common, input: join(local, '0'), out: there }), refused('resume-mismatch'));
  await assert.rejects(runVolumePredict({ ...common, input: join(local, '0'), out: `${bucket}/v3.zarr` }), refused('foreign-file'));
});

test('a block\'s done marker lists its chunk\'s size and crc32 from the bytes just stored, without reading the chunk back, and is written after it', async () => {
  const since = server.requests.length;
  const r = await runVolumePredict({ ...predictJob(), input: `${bucket}/raw.zarr/0`, out: `${bucket}/maps-reads.zarr` });
  assert.ok(r.complete, r.failed.map((f) => f.message).join('; '));
  const lines = server.requests.slice(since).map((q) => `${q.line} ${q.status}`);
  const at = (line: string) => lines.indexOf(line);
  const prefix = `/${server.bucket}/maps-reads.zarr`;
  const markers = lines.filter((l) => new RegExp(`^PUT ${prefix}/\\.emseg/blocks/\\d+\\.\\d+\\.\\d+\\.done\\.json 200$`).test(l));
  assert.equal(markers.length, r.computed);
  for (const marker of markers) {
    const grid = /blocks\/(\d+)\.(\d+)\.(\d+)\.done/.exec(marker)!.slice(1).join('/');
    const put = at(`PUT ${prefix}/0/${grid} 200`);
    assert.ok(put >= 0 && put < at(marker), `chunk 0/${grid} stored before its marker`);
  }
  // The pyramid (once every block is done) reads level 0; nothing reads a level-0 chunk before the last marker.
  const lastMarker = Math.max(...markers.map(at));
  assert.deepEqual(lines.slice(0, lastMarker).filter((l) => new RegExp(`^GET ${prefix}/0/\\d`).test(l)), []);
  // The digests are those of the stored objects.
  const stored = await objects('maps-reads.zarr');
  for (const [name, bytes] of stored) {
    if (!name.endsWith('.done.json')) continue;
    for (const f of (JSON.parse(bytes.toString()) as { files: { path: string; size: number; crc32: number }[] }).files) {
      assert.deepEqual([f.size, f.crc32], [stored.get(f.path)!.length, crc32(stored.get(f.path)!)], f.path);
    }
  }
});

test('predict with faults (503 SlowDown on chunk writes, dropped connections on a write and a read) still writes the same bytes', async () => {
  const put = new RegExp(`^PUT /${server.bucket}/maps-faults\\.zarr/0/\\d`);
  const get = new RegExp(`^GET /${server.bucket}/raw\\.zarr/0/1/`);
  server.faults.push({ match: put, fault: 503 }, { match: put, fault: 'reset' }, { match: put, fault: 503 }, { match: get, fault: 'reset' }, { match: get, fault: 503 });
  const since = server.requests.length;
  const r = await runVolumePredict({ ...predictJob(), input: `${bucket}/raw.zarr/0`, out: `${bucket}/maps-faults.zarr` });
  assert.ok(r.complete && r.failed.length === 0, r.failed.map((f) => f.message).join('; '));
  assert.equal(server.faults.length, 0, 'every fault was met');
  const met = server.requests.slice(since).map((q) => q.status);
  assert.ok(met.filter((m) => m === 'reset').length === 2 && met.filter((m) => m === 503).length === 3, JSON.stringify(met));
  assert.deepEqual(chunksOf(await objects('maps-faults.zarr')), chunksOf(files(disk)));
});

/** What `emseg status --json OUT` says of a blockwise run's output (its done markers). */
async function status(out: string): Promise<{ total: number; done: number; remaining: number; failed: unknown[] }> {
  const r = await emseg(['status', '--json', out, '--s3-endpoint', server.endpoint]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { total: number; done: number; remaining: number; failed: unknown[] };
}

test('predict --shard i/3 in three processes, each to the bucket, writes the chunks of one local run; emseg status reads the progress from the markers in the bucket', async () => {
  const out = `${bucket}/maps-sharded.zarr`;
  const blocks = SHAPE[0] * Math.ceil(SHAPE[1] / 64) * Math.ceil(SHAPE[2] / 64);
  for (let i = 0; i < 3; i++) {
    const r = await emseg(['predict', '--model', model, '--input', `${bucket}/raw.zarr/0`, '--out', out, '--shard', `${i}/3`,
      '--tile', '64', '--block', '1,64,64', '--dtype', 'uint8', '--membrane-prob', '--quiet', '--s3-endpoint', server.endpoint]);
    assert.equal(r.code, 0, r.stderr);
    if (i === 0) {
      const partial = await status(out);
      assert.equal(partial.total, blocks);
      assert.ok(partial.done > 0 && partial.done < blocks && partial.done + partial.remaining === blocks, JSON.stringify(partial));
      assert.deepEqual(partial.failed, []);
    }
  }
  assert.deepEqual(chunksOf(await objects('maps-sharded.zarr')), chunksOf(files(disk)));
  const whole = await status(out);
  assert.deepEqual([whole.done, whole.remaining, whole.failed], [blocks, 0, []]);
  const text = await emseg(['status', out, '--s3-endpoint', server.endpoint]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`blocks: +${blocks}/${blocks} done`));
});

test('emseg eval --pred s3://.../x.zarr/0 with local labels prints the scores it prints for the same maps on disk', async () => {
  const here = join(WORK, 'eval-maps.zarr');
  await convertToOmeZarr(await openVolume(SAMPLE_IMAGES), here); // the bundled images read as maps: a poor map, every score away from its bound
  await upload(here, 'eval-maps.zarr');
  const scores = async (pred: string) => {
    const r = await emseg(['eval', '--pred', pred, '--labels', SAMPLE_LABELS, '--pred-is-map', '--json', '--s3-endpoint', server.endpoint]);
    assert.equal(r.code, 0, r.stderr);
    const { prediction, ...rest } = JSON.parse(r.stdout) as Record<string, unknown>;
    return { prediction, rest };
  };
  const [there, disk0] = [await scores(`${bucket}/eval-maps.zarr/0`), await scores(join(here, '0'))];
  assert.deepEqual(there.prediction, [`${bucket}/eval-maps.zarr/0`]);
  assert.ok(typeof there.rest.v_rand === 'number');
  assert.deepEqual(there.rest, disk0.rest);
});

test('segment store to store writes the labels a local run writes, byte for byte; the work records are gone once it is complete', async () => {
  const local = join(WORK, 'cells-disk.zarr');
  const r1 = await runVolumeSegment({ pred: disk, out: local, options: {}, block: [1, 64, 64] });
  const r2 = await runVolumeSegment({ pred: `${bucket}/maps.zarr`, out: `${bucket}/cells.zarr`, options: {}, block: [1, 64, 64] });
  assert.ok(r1.complete && r2.complete, r2.failed.map((f) => f.message).join('; '));
  const stored = await objects('cells.zarr');
  assert.deepEqual(chunksOf(stored), chunksOf(files(local)));
  assert.ok(![...stored.keys()].some((k) => k.startsWith('.emseg/segment/labels/') || k.startsWith('.emseg/segment/blocks/')), 'provisional labels and border records removed');
  const again = await runVolumeSegment({ pred: `${bucket}/maps.zarr`, out: `${bucket}/cells.zarr`, options: {}, block: [1, 64, 64] });
  assert.ok(again.complete);
});

test('emseg view s3://... (CLI, --s3-endpoint) serves the image, maps and cells in the bucket: the tiles, readout and orthogonal views a view of the same folders on disk serves', async () => {
  const there = await startView([`${bucket}/raw.zarr`, `${bucket}/maps.zarr`, `${bucket}/cells.zarr`, '--s3-endpoint', server.endpoint], ENV);
  const here = await startView([local, disk, join(WORK, 'cells-disk.zarr')]);
  try {
    const manifest = JSON.parse((await there.get('/api/manifest')).body.toString()) as Manifest;
    assert.deepEqual(manifest.layers, [{ kind: 'image', name: `${bucket}/raw.zarr` }, { kind: 'map', name: `${bucket}/maps.zarr` }, { kind: 'cells', name: `${bucket}/cells.zarr` }]);
    assert.deepEqual([manifest.depth, manifest.height, manifest.width], SHAPE);
    for (const path of ['/api/tile/image/1/0/0/0.png', '/api/tile/map/2/0/0/0.png', '/api/tile/cells/0/0/0/0.png', '/api/ortho/image/xz/40.png',
      '/api/ortho/cells/yz/100.png', '/api/point?z=1&x=100&y=50']) {
      const [a, b] = [await there.get(path), await here.get(path)];
      assert.equal(a.status, 200, `${path}: ${a.body.toString()}`);
      assert.ok(a.body.equals(b.body), path);
    }
  } finally {
    await there.stop();
    await here.stop();
  }
  assert.doesNotMatch(there.stderr(), /\n\s+at /, 'no stack trace');
});

test('convert a stack into the bucket (CLI) writes what a local convert writes, byte for byte; the group metadata comes last; an existing output is refused, then replaced with --overwrite', async () => {
  const stack = stackDir;
  const here = join(WORK, 'converted.zarr');
  const there = `${bucket}/converted.zarr`;
  assert.equal((await emseg(['convert', stack, here, '--quiet'])).code, 0);
  const since = server.requests.length;
  const r = await emseg(['convert', stack, there, '--quiet', '--s3-endpoint', server.endpoint]);
  assert.equal(r.code, 0, r.stderr);
  const stored = await objects('converted.zarr');
  const local0 = files(here);
  assert.deepEqual([...stored.keys()].sort(), [...local0.keys()].sort());
  for (const [name, bytes] of local0) if (name !== '.zattrs') assert.ok(bytes.equals(stored.get(name)!), name);
  const puts = server.requests.slice(since).filter((q) => q.line.startsWith('PUT ')).map((q) => q.line);
  assert.equal(puts.at(-1), `PUT /${server.bucket}/converted.zarr/.zattrs`, 'the multiscales are written after every chunk');
  const info = await emseg(['info', '--json', '--exact', there, '--s3-endpoint', server.endpoint]);
  assert.equal(info.code, 0, info.stderr);
  const again = await emseg(['convert', stack, there, '--quiet', '--s3-endpoint', server.endpoint]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /exists/);
  assert.equal((await emseg(['convert', stack, there, '--quiet', '--overwrite', '--s3-endpoint', server.endpoint])).code, 0);
  // A convert killed before its group metadata: no image to readers; refused without --overwrite, replaced with it.
  const killed = `${bucket}/killed.zarr`;
  await createOmeZarr(killed, { shape: SHAPE, dtype: 'uint8', chunks: CHUNKS, kind: 'image' }, { unpublished: true });
  await assert.rejects(openVolume(killed), refused('not-found', killed));
  await assert.rejects(convertToOmeZarr(await openVolume(local), killed), refused('exists', killed));
  await convertToOmeZarr(await openVolume(local), killed, { overwrite: true });
  assert.ok(!(await objects('killed.zarr')).has('.emseg/unpublished.json'));
  assert.deepEqual(await (await openVolume(killed)).readRegion({ start: [0, 0, 0], end: SHAPE }), data);
  await assert.rejects(convertToOmeZarr(await openVolume(local), `${bucket}/v3.zarr`, { overwrite: true }), refused('foreign-file', `${bucket}/v3.zarr`));
});

test('outputs a bucket cannot take are refused naming them: stacks, and no stack trace', async () => {
  const r = await emseg(['predict', '--model', model, '--input', `${bucket}/raw.zarr/0`, '--out', `${bucket}/maps.tif`, '--s3-endpoint', server.endpoint]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /s3:\/\/.*maps\.tif/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
