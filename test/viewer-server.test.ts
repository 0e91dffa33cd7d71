/** `emseg view`'s server over HTTP, without a browser: data it serves, and everything it must refuse. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decode } from 'fast-png';
import { isEmsegError } from '../src/errors.js';
import { LOG_FILE } from '../src/train/trainer.js';
import { classifyPaths } from '../src/viewer/classify.js';
import { ViewModel } from '../src/viewer/model.js';
import type { ErrorMarks, Manifest, PointReadout, StudyChart, TrainingCurves } from '../src/viewer/protocol.js';
import { cellColour, hot, LABEL_COLOUR } from '../src/viewer/render.js';
import { allowedHostHeaders, startServer, type ViewServer } from '../src/viewer/server.js';
import { LruCache } from '../src/viewer/lru.js';
import { cutTile, halve, levelCount } from '../src/viewer/source.js';
import { REPO_ROOT } from './helpers/data.js';
import { CELL, DEPTH, GAP_FROM, GAP_TO, SIZE, STEP_RECORDS, VALIDATION_RECORDS, WALL, cellId, interiorGrey, writeFixture, type Fixture } from './viewer-fixtures.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-viewer-server-'));
let f: Fixture;
let server: ViewServer;
let model: ViewModel;

before(async () => {
  f = await writeFixture(join(TMP, 'data'));
  model = await ViewModel.open({ images: f.images, map: f.map, compare: f.compare, cells: f.cells, labels: f.labels, eval: f.eval, train: f.train, study: f.study });
  server = await startServer(model, '127.0.0.1', 0);
});
after(async () => {
  await server?.close();
  rmSync(TMP, { recursive: true, force: true });
});

type RawResponse = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/**
 * A raw request: the path goes on the wire exactly as written (fetch would normalise '..'); `host` is the Host
 * header (default: the server's own address), the connection always goes to 127.0.0.1.
 */
function raw(path: string, method = 'GET', host?: string, to: ViewServer = server): Promise<RawResponse> {
  const { port } = new URL(to.url);
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ...(host === undefined ? {} : { headers: { Host: host } }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function json<T>(path: string): Promise<T> {
  const r = await raw(path);
  assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
  return JSON.parse(r.body.toString()) as T;
}

async function tilePixel(kind: string, z: number, level: number, x: number, y: number): Promise<number[]> {
  const r = await raw(`/api/tile/${kind}/${z}/${level}/0/0.png`);
  assert.equal(r.status, 200, r.body.toString());
  const png = decode(r.body);
  const i = (y * png.width + x) * png.channels;
  const px = Array.from(png.data.subarray(i, i + png.channels));
  return png.channels === 1 ? [px[0]!, px[0]!, px[0]!, 255] : px; // the image layer's tiles are grey
}

test('the manifest describes the layers, sections and pyramid', async () => {
  const m = await json<Manifest>('/api/manifest');
  assert.deepEqual([m.width, m.height, m.depth], [SIZE, SIZE, DEPTH]);
  assert.equal(m.levels, 2); // 512 -> 256: the smaller level fits one 256-pixel tile
  assert.deepEqual(m.layers.map((l) => l.kind), ['image', 'map', 'compare', 'cells', 'labels', 'errors']);
  assert.equal(m.sections[1]!.files.image, '0001.png');
  assert.equal(m.sections[0]!.evaluation?.warping_mergers, 1);
  assert.ok(m.hasTraining && m.hasStudy);
});

test('tiles hold the colours of what is at each pixel, at full and half resolution', async () => {
  const mid = CELL / 2;
  assert.deepEqual(await tilePixel('image', 1, 0, mid, mid), [interiorGrey(1), interiorGrey(1), interiorGrey(1), 255]);
  assert.deepEqual(await tilePixel('map', 1, 0, 1, mid), hot(1)); // a wall: P(membrane) = 1
  assert.deepEqual(await tilePixel('map', 1, 0, mid, mid), hot(0));
  assert.deepEqual(await tilePixel('cells', 2, 0, mid, mid), [...cellColour(cellId(mid, mid, 2)), 255]);
  assert.deepEqual(await tilePixel('labels', 0, 0, 1, mid), [...LABEL_COLOUR, 255]);
  // Level 1 averages 2x2 blocks: its pixel (16, 16) covers image pixels 32..33, inside the first cell.
  assert.deepEqual(await tilePixel('image', 0, 1, mid / 2, mid / 2), [interiorGrey(0), interiorGrey(0), interiorGrey(0), 255]);
  assert.equal((await raw('/api/tile/image/0/1/1/0.png')).status, 404); // level 1 is one tile wide
});

test('the readout gives intensity, P(membrane), cell id and label at a pixel', async () => {
  const wall = await json<PointReadout>('/api/point?z=2&x=1&y=40');
  assert.deepEqual(wall, { x: 1, y: 40, z: 2, intensity: 30, pMembrane: 1, pMembraneCompare: 1, cell: 0, label: 'membrane' });
  const inside = await json<PointReadout>(`/api/point?z=2&x=${CELL + 20}&y=40`);
  assert.deepEqual(inside, { x: CELL + 20, y: 40, z: 2, intensity: interiorGrey(2), pMembrane: 0, pMembraneCompare: 0, cell: cellId(CELL + 20, 40, 2), label: 'interior' });
});

test('error marks: the missing piece of wall in section 0 is a merger, other sections are clean', async () => {
  const e0 = await json<ErrorMarks>('/api/errors/0');
  assert.ok(e0.mergers > 0, JSON.stringify(e0));
  assert.equal(e0.splits, 0);
  for (const [x, y] of e0.mergerAt) assert.ok(x >= CELL && x < CELL + WALL && y >= GAP_FROM && y < GAP_TO, `merger at ${x},${y}`);
  const e1 = await json<ErrorMarks>('/api/errors/1');
  assert.equal(e1.mergers + e1.splits, 0);
});

test('training curves and the study come from their files', async () => {
  const t = await json<TrainingCurves>('/api/training');
  assert.equal(t.steps.length, STEP_RECORDS);
  assert.equal(t.validation.length, VALIDATION_RECORDS);
  const s = await json<StudyChart>('/api/study');
  assert.deepEqual(s.variants.map((v) => v.name), ['shallow', 'deep']);
  assert.equal(s.variants[1]!.metrics.v_rand?.mean, 0.9);
});

test('every response carries the Content-Security-Policy; the page is served', async () => {
  for (const path of ['/', '/viewer.js', '/api/manifest', '/nowhere']) {
    const r = await raw(path);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'/, path);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
  assert.match((await raw('/')).body.toString(), /<script defer src="\/viewer.js">/);
});

test('traversal, encoded and absolute paths read nothing', async () => {
  const attempts = [
    '/../../../../etc/passwd', '/..%2f..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/%252e%252e/%252e%252e/etc/passwd',
    '/viewer.js/../../../package.json', '/api/tile/image/0/0/0/..%2f..%2f..%2fetc%2fpasswd', '/api/tile/../../../../etc/passwd.png',
    '//etc/passwd', '/etc/passwd', resolve(f.map), encodeURI(resolve(f.map)), `/${join('..', '..', resolve(f.map))}`,
    '/api/tile/image/0/0/0/0.png/../../../../etc/passwd', '/%2e%2e%5c%2e%2e%5cetc%5cpasswd', '/api/training/../../../etc/passwd', 'http://127.0.0.1/etc/passwd', '\\etc\\passwd',
  ];
  for (const path of attempts) {
    const r = await raw(path);
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
    const body = r.body.toString();
    assert.ok(!body.includes('root:') && !body.includes('"name": "emseg"') && !body.startsWith('II*'), `${path} leaked: ${body.slice(0, 80)}`);
    // Node's HTTP parser refuses a malformed request line itself (400, no body); every other refusal is ours, in JSON.
    if (body !== '') assert.doesNotThrow(() => JSON.parse(body), path);
  }
});

test('bad requests get a clean refusal naming the problem', async () => {
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await raw('/api/manifest', method);
    assert.equal(r.status, 405);
    assert.equal(JSON.parse(r.body.toString()).error, 'method-not-allowed');
  }
  assert.equal((await raw('/api/manifest', 'HEAD')).status, 200);
  const cases: [string, number, string][] = [
    ['/api/point?z=0&x=-1&y=3', 400, 'bad-request'], ['/api/point?z=0&x=1e3&y=3', 400, 'bad-request'], ['/api/point?z=9&x=1&y=1', 400, 'out-of-range'],
    [`/api/point?z=0&x=${SIZE}&y=0`, 400, 'out-of-range'], ['/api/point?z=0&y=1', 400, 'bad-request'], ['/api/tile/image/3/0/0/0.png', 404, 'out-of-range'],
    ['/api/tile/image/0/5/0/0.png', 404, 'out-of-range'], ['/api/tile/secret/0/0/0/0.png', 404, 'no-layer'], [`/api/x${'a'.repeat(3000)}`, 414, 'uri-too-long'],
    ['/api/errors/7', 404, 'out-of-range'],
  ];
  for (const [path, status, error] of cases) {
    const r = await raw(path);
    assert.equal(r.status, status, `${path.slice(0, 60)}: ${r.body.toString()}`);
    assert.equal(JSON.parse(r.body.toString()).error, error, path.slice(0, 60));
  }
});

/** Every route, with a request that succeeds for the server's own host (the page, tiles, data endpoints). */
const ROUTES = ['/', '/viewer.js', '/viewer.css', '/api/manifest', '/api/tile/image/0/0/0/0.png', '/api/tile/map/1/1/0/0.png',
  '/api/point?z=0&x=1&y=1', '/api/errors/0', '/api/training', '/api/study'];

/** A refusal for a foreign Host: 403, short plain text, nothing of the data. */
function assertHostRefused(r: RawResponse, what: string, head = false): void {
  assert.equal(r.status, 403, `${what}: ${r.body.toString().slice(0, 80)}`);
  assert.match(String(r.headers['content-type']), /^text\/plain/, what);
  if (head) {
    assert.equal(r.body.length, 0, what);
    return;
  }
  const body = r.body.toString();
  assert.ok(body.length < 300 && /refused/.test(body) && /--allow-host/.test(body), `${what}: ${body}`);
  assert.ok(!body.includes('{') && !body.includes('PNG') && !body.includes('<'), `${what} leaked: ${body}`);
}

test('DNS rebinding: a request for any other host is refused on every route, before the method or route is looked at', async () => {
  const { port } = new URL(server.url);
  const foreign = [`evil.example:${port}`, 'evil.example', `localhost.evil.example:${port}`, `127.0.0.1.nip.io:${port}`,
    `127.0.0.1:${Number(port) + 1}`, `localhost:${Number(port) + 1}`, 'localhost', `[::1]:${Number(port) + 1}`];
  for (const host of foreign) {
    for (const path of [...ROUTES, '/nowhere', '/../../etc/passwd']) assertHostRefused(await raw(path, 'GET', host), `${host} ${path}`);
    assertHostRefused(await raw('/api/manifest', 'HEAD', host), `${host} HEAD`, true);
    assertHostRefused(await raw('/api/manifest', 'POST', host), `${host} POST`);
  }
  // HTTP/1.0 may leave the Host header out (Node's parser answers HTTP/1.1 without one with a bare 400 itself).
  const noHost = await new Promise<string>((resolveText, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET /api/manifest HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolveText(text));
    socket.on('error', reject);
  });
  assert.match(noHost, /^HTTP\/1\.1 403 /);
  assert.ok(!noHost.includes('"layers"'), noHost);
});

test('requests for the bound address, localhost and [::1] with the server\'s port are answered', async () => {
  const { port } = new URL(server.url);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LocalHost:${port}`, `[::1]:${port}`]) {
    for (const path of ROUTES) assert.equal((await raw(path, 'GET', host)).status, 200, `${host} ${path}`);
  }
});

test('names given with allowHosts (emseg view --allow-host) are answered too, with the server\'s port or their own', async () => {
  const refused: string[] = [];
  const other = await startServer(model, '127.0.0.1', 0, { allowHosts: ['Viewer.Lab.example', 'localhost:9000', '10.1.2.3'], onRefusedHost: (h) => refused.push(h) });
  try {
    const { port } = new URL(other.url);
    for (const host of [`viewer.lab.example:${port}`, 'localhost:9000', `10.1.2.3:${port}`, `127.0.0.1:${port}`]) {
      for (const path of ROUTES) assert.equal((await raw(path, 'GET', host, other)).status, 200, `${host} ${path}`);
    }
    for (const host of ['viewer.lab.example:9000', `evil.example:${port}`, `lab.example:${port}`]) {
      assertHostRefused(await raw('/api/manifest', 'GET', host, other), host);
    }
    assert.deepEqual(refused, ['viewer.lab.example:9000', `evil.example:${port}`, `lab.example:${port}`]);
  } finally {
    await other.close();
  }
  assert.throws(() => allowedHostHeaders('127.0.0.1', 1, ['evil/path']), (e) => isEmsegError(e, 'invalid-option'));
});

test('a symlink in a given folder that points outside it is not served', async () => {
  const outside = join(TMP, 'outside');
  mkdirSync(outside);
  copyFileSync(join(f.images, '0000.png'), join(outside, 'secret.png'));
  const folder = join(TMP, 'linked');
  mkdirSync(folder);
  copyFileSync(join(f.images, '0000.png'), join(folder, 'a.png'));
  symlinkSync(join(outside, 'secret.png'), join(folder, 'b.png'));
  const linked = await ViewModel.open({ images: folder });
  assert.equal(linked.shape.depth, 1);
  assert.deepEqual(linked.refused, [join(folder, 'b.png')]);
  // A training log that is a link to a file elsewhere is refused too.
  const run = join(TMP, 'run-linked');
  mkdirSync(run);
  writeFileSync(join(outside, 'log.jsonl'), '');
  symlinkSync(join(outside, 'log.jsonl'), join(run, LOG_FILE));
  await assert.rejects(ViewModel.open({ images: folder, train: run }), (e) => isEmsegError(e, 'outside'));
});

test('inputs that do not fit are refused with the file named', async () => {
  await assert.rejects(ViewModel.open({}), (e) => isEmsegError(e, 'nothing-to-view'));
  const small = join(TMP, 'small');
  mkdirSync(small);
  copyFileSync(join(f.images, '0000.png'), join(small, 'one.png'));
  await assert.rejects(ViewModel.open({ images: f.images, map: small }), (e) => isEmsegError(e, 'mismatch') && (e as { path: string }).path === small);
  const badEval = join(TMP, 'bad-eval.json');
  writeFileSync(badEval, '{"sections": "no"}');
  await assert.rejects(ViewModel.open({ images: f.images, eval: badEval }), (e) => isEmsegError(e, 'corrupt'));
});

test('positional paths are recognised by content; a second of a kind must be named', async () => {
  const inputs = await classifyPaths([f.images, f.map, f.compare, f.cells, f.labels, f.eval, f.train, f.study], {});
  assert.deepEqual(inputs, { images: f.images, map: f.map, compare: f.compare, cells: f.cells, labels: f.labels, eval: f.eval, train: f.train, study: f.study });
  await assert.rejects(classifyPaths([f.cells, f.cells], {}), (e) => isEmsegError(e, 'ambiguous'));
  assert.deepEqual(await classifyPaths([f.labels], { images: f.images }), { images: f.images, labels: f.labels });
});

test('the pyramid: levels until one tile holds the section; halving by mean, nearest or max at odd sizes', () => {
  assert.equal(levelCount({ width: 256, height: 256, depth: 1 }, 256), 1);
  assert.equal(levelCount({ width: 257, height: 10, depth: 1 }, 256), 2);
  assert.equal(levelCount({ width: 16384, height: 16384, depth: 1 }, 256), 7);
  const plane = { width: 3, height: 3, data: Uint8Array.of(0, 2, 9, 4, 6, 1, 7, 8, 5) };
  assert.deepEqual(halve(plane, 'mean'), { width: 2, height: 2, data: Uint8Array.of(3, 5, 8, 5) }); // edges repeat the last row/column
  assert.deepEqual(halve(plane, 'nearest'), { width: 2, height: 2, data: Uint8Array.of(0, 9, 7, 5) });
  assert.deepEqual(halve(plane, 'max'), { width: 2, height: 2, data: Uint8Array.of(6, 9, 8, 5) });
  assert.deepEqual(cutTile(plane, 2, 1, 2), { width: 1, height: 2, data: Uint8Array.of(1, 5) });
});

test('the LRU cache stays within its size, dropping the least recently used first', async () => {
  const cache = new LruCache<string>(10);
  cache.set('a', 'A', 4);
  cache.set('b', 'B', 4);
  assert.equal(cache.get('a'), 'A'); // now b is the oldest
  cache.set('c', 'C', 4);
  assert.equal(cache.get('b'), undefined);
  assert.deepEqual([cache.get('a'), cache.get('c'), cache.bytes], ['A', 'C', 8]);
  cache.set('huge', 'H', 11); // larger than the whole cache: not kept, nothing evicted
  assert.deepEqual([cache.get('huge'), cache.size], [undefined, 2]);
  let made = 0;
  const make = async () => ({ value: `v${++made}`, cost: 1 });
  const [x, y] = await Promise.all([cache.getOrCreate('k', make), cache.getOrCreate('k', make)]);
  assert.deepEqual([x, y, made], ['v1', 'v1', 1]); // concurrent misses share one computation
});

/** Runs `emseg view ARGS`, waits for the URL it prints, hands it to `use`, then stops it with Ctrl-C (SIGINT). */
async function withCli(args: string[], use: (url: string, stderr: () => string) => Promise<void>): Promise<number | null> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'emseg.js'), 'view', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /emseg view: (http:\/\/\S+)/.exec(out);
      if (m) resolveUrl(m[1]!);
    });
    void exited.then((code) => reject(new Error(`emseg view exited (${code}) before printing a URL: ${err}`)));
  });
  try {
    await use(url, () => err);
  } finally {
    child.kill('SIGINT');
  }
  return exited;
}

test('emseg view: positional paths, prints the URL, serves, warns off loopback, stops on Ctrl-C', async () => {
  const code = await withCli([f.images, f.map, f.cells, '--labels', f.labels, '--port', '0'], async (url) => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const m = (await (await fetch(`${url}api/manifest`)).json()) as Manifest;
    assert.deepEqual(m.layers.map((l) => l.kind), ['image', 'map', 'cells', 'labels', 'errors']);
  });
  assert.equal(code, 0);
  await withCli([f.images, '--port', '0', '--host', '0.0.0.0'], async (_url, stderr) => {
    await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr(), /WARNING: listening on 0\.0\.0\.0/);
  });
});

test('emseg view --allow-host: the name is answered, other hosts refused and named on stderr; a malformed name stops it', async () => {
  await withCli([f.images, '--port', '0', '--allow-host', 'viewer.lab.example', '--allow-host', 'localhost:9000'], async (url, stderr) => {
    const { port } = new URL(url);
    const cli = { url } as ViewServer;
    assert.equal((await raw('/api/manifest', 'GET', `viewer.lab.example:${port}`, cli)).status, 200);
    assert.equal((await raw('/api/manifest', 'GET', 'localhost:9000', cli)).status, 200);
    assertHostRefused(await raw('/api/manifest', 'GET', `evil.example:${port}`, cli), 'evil.example');
    await new Promise((r) => setTimeout(r, 200));
    assert.match(stderr(), /refused a request for host 'evil\.example:\d+'.*--allow-host/);
  });
  const bad = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'emseg.js'), 'view', f.images, '--port', '0', '--allow-host', 'evil.example/x'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--allow-host/);
});
