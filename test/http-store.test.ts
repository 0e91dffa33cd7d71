/**
 * Volumes read over http(s):// (src/io/stores/): a local static server (test/helpers/static-http.ts) serves
 * OME-Zarr images emseg wrote (v2) and a Zarr v3 / NGFF 0.5 image; info, convert and predict read them as they read
 * the same folders on disk, byte for byte; absent chunks, server errors, throttling, dropped connections, missing
 * arrays, credentials and output URLs behave as the store promises.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import FileSystemStore from '@zarrita/storage/fs';
import * as zarr from 'zarrita';
import type { Vec3 } from '../src/io/formats/volume.js';
import { registerZarrCodecs } from '../src/io/formats/zarr-codecs.js';
import { readStack } from '../src/io/index.js';
import { openVolume } from '../src/io/registry.js';
import { HTTP_RETRY, HttpStore } from '../src/io/stores/http.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { runPredict } from '../src/pipeline/predict.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { volumeFingerprint } from '../src/pipeline/markers.js';
import { mapVolumePath } from '../src/queue/jobs.js';
import { JOB_KINDS } from '../src/queue/kinds.js';
import { classifyPaths } from '../src/viewer/classify.js';
import { ViewModel } from '../src/viewer/model.js';
import type { Manifest } from '../src/viewer/protocol.js';
import { startServer } from '../src/viewer/server.js';
import { REPO_ROOT } from './helpers/data.js';
import { refused } from './helpers/errors.js';
import { startStaticServer, type StaticServer } from './helpers/static-http.js';
import { httpGet } from './helpers/view-process.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';

const run = promisify(execFile);
const SHAPE: Vec3 = [3, 96, 128];
const CHUNKS: Vec3 = [1, 48, 64];
const SERVED = tempDir('http-served');
const WORK = tempDir('http-work');
let server: StaticServer;
let data: Uint8Array;
/** The served v2 image (raw.zarr) as a URL, and the same folder on disk. */
let url: string;
let local: string;

/** Every file under `dir`, by relative path, with its bytes. */
function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** `emseg ARGS` in a child process (async: this process serves the HTTP requests meanwhile). */
async function emseg(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('node', [join(REPO_ROOT, 'bin/emseg.js'), ...args], { cwd: WORK, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A Zarr v3 / NGFF 0.5 image (uint16, gzip) written by zarrita, as another writer would. */
async function writeV3(dir: string): Promise<Uint16Array> {
  registerZarrCodecs();
  const store = new FileSystemStore(dir);
  const values = Uint16Array.from({ length: 2 * 20 * 30 }, (_, i) => (i * 37) % 65536);
  const axes = ['z', 'y', 'x'].map((name) => ({ name, type: 'space' }));
  await zarr.create(zarr.root(store), { attributes: { ome: { version: '0.5', multiscales: [{ axes, datasets: [{ path: 's0', coordinateTransformations: [{ type: 'scale', scale: [1, 1, 1] }] }] }] } } });
  const arr = await zarr.create(zarr.root(store).resolve('s0'), { shape: [2, 20, 30], chunkShape: [1, 8, 16], dtype: 'uint16', codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'gzip', configuration: { level: 1 } }] });
  await zarr.set(arr, null, { data: values, shape: [2, 20, 30], stride: [600, 30, 1] } as never);
  return values;
}

before(async () => {
  data = await sampleVolume(SHAPE);
  ({ zarr: local } = await writeVolume(SERVED, SHAPE, data, CHUNKS));
  await writeV3(join(SERVED, 'v3.zarr'));
  server = await startStaticServer(SERVED);
  url = `${server.url}/raw.zarr`;
});

after(async () => {
  await server?.close();
  for (const d of [SERVED, WORK]) rmSync(d, { recursive: true, force: true });
});

test('emseg info over HTTP prints what it prints for the same folder on disk (v2 OME-Zarr and v3 / NGFF 0.5)', async () => {
  for (const name of ['raw.zarr', 'raw.zarr/0', 'v3.zarr']) {
    const there = await emseg(['info', '--json', '--exact', `${server.url.replace('http://', 'http://alice:s3cret@')}/${name}`]);
    const here = await emseg(['info', '--json', '--exact', join(SERVED, name)]);
    assert.equal(there.code, 0, there.stderr);
    assert.equal(here.code, 0, here.stderr);
    const { path: p1, ...remote } = JSON.parse(there.stdout) as Record<string, unknown>;
    const { path: p2, ...disk } = JSON.parse(here.stdout) as Record<string, unknown>;
    assert.deepEqual(remote, disk, name);
    assert.equal(p1, `${server.url}/${name}`, 'the URL is shown without its credentials');
    assert.ok(p2);
  }
});

test('convert URL local.zarr writes the chunks a local convert writes, byte for byte; the source is recorded as the URL without its credentials', async () => {
  const withCredentials = url.replace('http://', 'http://alice:s3cret@');
  const fromHttp = join(WORK, 'from-http.zarr');
  const fromDisk = join(WORK, 'from-disk.zarr');
  const r1 = await emseg(['convert', withCredentials, fromHttp, '--quiet']);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal((await emseg(['convert', local, fromDisk, '--quiet'])).code, 0);
  const a = files(fromHttp);
  const b = files(fromDisk);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, bytes] of b) if (name !== '.zattrs') assert.ok(bytes.equals(a.get(name)!), name);
  const source = (JSON.parse(a.get('.zattrs')!.toString()) as { emseg: { source: string } }).emseg.source;
  assert.equal(source, url);
  assert.ok(!`${a.get('.zattrs')}${r1.stdout}${r1.stderr}`.includes('s3cret'), 'the password appears nowhere');
  const sent = server.requests.filter((q) => q.authorization);
  assert.ok(sent.length > 0 && sent.every((q) => q.authorization === `Basic ${Buffer.from('alice:s3cret').toString('base64')}`), 'credentials went as a Basic header');
});

test('predict from a URL equals predict from the folder on disk: OME-Zarr maps (blockwise) and a TIFF stack; segment --pred URL too', async () => {
  const model = zooModel(WORK, 'reference-net', 7);
  const common = { models: [model], tta: false, bf16: false, tile: 64, backend: 'auto' as const, membraneProb: true };
  const outs = { http: join(WORK, 'maps-http.zarr'), disk: join(WORK, 'maps-disk.zarr') };
  for (const [which, input] of [['http', `${url}/0`], ['disk', join(local, '0')]] as const) {
    const r = await runVolumePredict({ ...common, input, out: outs[which], dtype: 'uint8', block: [1, 64, 64] });
    assert.ok(r.complete && r.failed.length === 0, r.failed.map((f) => f.message).join('; '));
    await runPredict({ ...common, input, out: join(WORK, `maps-${which}.tif`), format: 'tiff', overwrite: false });
  }
  const chunks = (dir: string) => new Map([...files(join(dir, '0'))].filter(([n]) => !n.startsWith('.')));
  assert.deepEqual(chunks(outs.http), chunks(outs.disk));
  assert.ok(readFileSync(join(WORK, 'maps-http.tif')).equals(readFileSync(join(WORK, 'maps-disk.tif'))));
  const recorded = JSON.parse(readFileSync(join(outs.http, '.zattrs'), 'utf8')) as { emseg: { input: string } };
  assert.equal(recorded.emseg.input, `${url}/0`);

  // The maps served over HTTP segment as they do on disk.
  cpSync(outs.disk, join(SERVED, 'maps.zarr'), { recursive: true });
  const cells = { http: join(WORK, 'cells-http.zarr'), disk: join(WORK, 'cells-disk.zarr') };
  for (const [which, pred] of [['http', `${server.url}/maps.zarr`], ['disk', outs.disk]] as const) {
    const r = await runVolumeSegment({ pred, out: cells[which], options: {}, block: [1, 64, 64] });
    assert.ok(r.complete, r.failed.map((f) => f.message).join('; '));
  }
  assert.deepEqual(chunks(cells.http), chunks(cells.disk));
});

test('an absent chunk (HTTP 404) is refused as missing-chunk, and read as the fill value with allowMissingChunks', async () => {
  cpSync(local, join(SERVED, 'holey.zarr'), { recursive: true });
  rmSync(join(SERVED, 'holey.zarr', '0', '1', '0', '1'));
  const at = `${server.url}/holey.zarr`;
  const whole = { start: [0, 0, 0] as Vec3, end: SHAPE };
  await assert.rejects((await openVolume(at)).readRegion(whole), refused('missing-chunk', `${at}/0/1/0/1`));
  const v = await openVolume(at, { allowMissingChunks: true });
  const got = await v.readRegion(whole);
  assert.deepEqual(v.missingChunks?.(), { count: 1, atLeast: false, fill: 0 });
  const plane = SHAPE[1] * SHAPE[2];
  assert.equal(got[plane + 10 * SHAPE[2] + 70], 0); // z 1, y 10, x 70 lies in chunk (1, 0, 1)
  assert.equal(got[5], data[5]);
});

test('throttling (503, 429) and a dropped connection are retried; a 500 that persists is an http-failed error naming the URL and status', async () => {
  const key = '/raw.zarr/0/0/0/0';
  server.faults.set(key, [503, 'reset', 429]);
  const v = await openVolume(url);
  const got = await v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] });
  assert.deepEqual([...got], [0, 1, 2, 3].flatMap((y) => [...data.subarray(y * SHAPE[2], y * SHAPE[2] + 4)]));
  assert.deepEqual(server.requests.filter((q) => q.path === key).slice(-4).map((q) => q.status), [503, 'reset', 429, 200]);

  server.faults.set(key, new Array(HTTP_RETRY.attempts + 2).fill(500));
  await assert.rejects(v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] }), refused('http-failed', `${url}/0/0/0/0`, /HTTP 500/));
  server.faults.set(key, new Array(HTTP_RETRY.attempts).fill(503));
  await assert.rejects(v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] }), refused('http-failed', `${url}/0/0/0/0`, /HTTP 503.*5 attempts/));
  const meta = '/raw.zarr/0/.zarray';
  server.faults.set(meta, [405]); // a server without HEAD: asked again by GET
  const since = server.requests.length;
  assert.deepEqual([...(await openVolume(`${url}/0`)).shape], [...SHAPE]);
  assert.deepEqual(server.requests.slice(since).filter((q) => q.path === meta).slice(0, 2).map((q) => [q.method, q.status]), [['HEAD', 405], ['GET', 200]]);
  server.faults.set(key, [403]);
  await assert.rejects(v.readRegion({ start: [0, 0, 0], end: [1, 4, 4] }), refused('permission', `${url}/0/0/0/0`));
  server.faults.delete(key);
});

test('a missing array or image is not-found naming the URL; a closed port is http-failed; other formats and schemes are refused', async () => {
  await assert.rejects(openVolume(`${server.url}/nothing.zarr`), refused('not-found', `${server.url}/nothing.zarr`));
  await assert.rejects(openVolume(`${url}/7`), refused('not-found', `${url}/7`));
  const closed = await startStaticServer(SERVED);
  const gone = `${closed.url}/raw.zarr`;
  await closed.close();
  await assert.rejects(openVolume(gone), refused('http-failed', `${gone}/.zarray`));
  await assert.rejects(openVolume(`${server.url}/big.tif`), refused('unsupported'));
  await assert.rejects(openVolume('gs://bucket/vol.zarr'), refused('unsupported', 'gs://bucket/vol.zarr'));
  await assert.rejects(readStack(`${server.url}/sections/`), refused('unsupported', `${server.url}/sections/`));
  const r = await emseg(['info', `${server.url}/nothing.zarr`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /nothing\.zarr/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('an output at a URL is refused (read-only store), from the CLI and the library', async () => {
  await assert.rejects(convertToOmeZarr(await openVolume(url), `${server.url}/out.zarr`), refused('read-only', `${server.url}/out.zarr`));
  const model = zooModel(WORK, 'reference-net', 8);
  const common = { models: [model], tta: false, bf16: false, tile: 64, backend: 'auto' as const, membraneProb: true };
  await assert.rejects(runVolumePredict({ ...common, input: url, out: `${server.url}/maps.zarr`, dtype: 'uint8' }), refused('read-only'));
  await assert.rejects(runPredict({ ...common, input: url, out: `${server.url}/maps.tif`, format: 'tiff', overwrite: false }), refused('read-only'));
  const r = await emseg(['convert', url, 'http://user:pw@127.0.0.1:1/out.zarr']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /read-only/);
  assert.doesNotMatch(r.stderr, /user:pw/);
});

test('chunks emseg recorded digests for are verified over HTTP; Range requests read parts of a file', async () => {
  const converted = join(SERVED, 'converted.zarr');
  await convertToOmeZarr(await openVolume(local), converted);
  const chunk = join(converted, '0', '0', '0', '0');
  const bytes = readFileSync(chunk);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(chunk, bytes);
  const at = `${server.url}/converted.zarr`;
  await assert.rejects((await openVolume(at)).readRegion({ start: [0, 0, 0], end: [1, 4, 4] }), refused('corrupt', `${at}/0/0/0/0`));

  const store = new HttpStore(at);
  const size = statSync(chunk).size;
  assert.deepEqual(await store.getRange('/0/0/0/0', { offset: 2, length: 5 }), new Uint8Array(bytes.subarray(2, 7)));
  assert.deepEqual(await store.getRange('/0/0/0/0', { suffixLength: 3 }), new Uint8Array(bytes.subarray(size - 3)));
  assert.equal(server.requests.at(-1)?.range, 'bytes=-3');
  assert.equal(server.requests.at(-1)?.status, 206);
});

test('a URL input is the same on every machine: queue specs and path maps keep it, run identities do not depend on the folder', async () => {
  const job = { models: ['models/fakhry-isbi'], input: `${url}/0`, out: 'maps.zarr', membraneProb: true, tta: false, bf16: false, tile: 64, backend: 'auto' as const, dtype: 'uint8' as const };
  assert.equal(JOB_KINDS.predict.specOf(job).input, `${url}/0`);
  assert.equal(mapVolumePath(`${url}/0`, [{ from: '/data', to: '/mnt' }]), `${url}/0`);
  const reader = await openVolume(url.replace('http://', 'http://bob:pw@'));
  assert.equal(reader.path, url, 'the reader names the URL without its credentials');
  assert.equal(volumeFingerprint(reader, '/a/out.zarr'), volumeFingerprint(reader, '/b/c/out.zarr'));
  assert.equal(volumeFingerprint(reader), volumeFingerprint(reader, '/b/c/out.zarr'));
});

test('emseg view http://... serves the volume as the same folder on disk, with the credentials sent and never shown; side data at a URL and unknown schemes are refused', async () => {
  const inputs = await classifyPaths([url.replace('http://', 'http://carol:pw@')], {});
  assert.deepEqual(inputs, { images: url }, 'the layer is named without its credentials');
  const there = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
  const here = await startServer(await ViewModel.open(await classifyPaths([local], {})), '127.0.0.1', 0);
  const since = server.requests.length;
  try {
    const manifest = JSON.parse((await httpGet(there.url, '/api/manifest')).body.toString()) as Manifest;
    assert.deepEqual(manifest.layers, [{ kind: 'image', name: url }]);
    for (const path of ['/api/tile/image/2/0/0/0.png', '/api/ortho/image/yz/77.png', '/api/point?z=2&x=127&y=95']) {
      const [a, b] = [await httpGet(there.url, path), await httpGet(here.url, path)];
      assert.equal(a.status, 200, `${path}: ${a.body.toString()}`);
      assert.ok(a.body.equals(b.body), path);
    }
  } finally {
    await there.close();
    await here.close();
  }
  const chunkReads = server.requests.slice(since).filter((q) => /^\/raw\.zarr\/0\/\d/.test(q.path));
  assert.ok(chunkReads.length > 0 && chunkReads.every((q) => q.authorization === `Basic ${Buffer.from('carol:pw').toString('base64')}`));
  await assert.rejects(ViewModel.open({ images: url, eval: `${server.url}/eval.json` }), refused('unsupported', `${server.url}/eval.json`));
  await assert.rejects(classifyPaths(['ftp://127.0.0.1/x.zarr'], {}), refused('unsupported'));
});
