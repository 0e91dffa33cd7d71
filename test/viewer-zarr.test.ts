/**
 * `emseg view` on OME-Zarr images written here: tiles come from the stored pyramid levels by reads of just the tile,
 * membrane maps take their polarity from the metadata, and labels/cells comes along as the cells layer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { isEmsegError } from '../src/errors.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../src/io/registry.js';
import { classifyPaths } from '../src/viewer/classify.js';
import { ViewModel } from '../src/viewer/model.js';
import type { Manifest, PointReadout } from '../src/viewer/protocol.js';
import { cellColour, hot } from '../src/viewer/render.js';
import { startServer, type ViewServer } from '../src/viewer/server.js';
import { cutTile, halve } from '../src/viewer/source.js';
import { ZarrSource } from '../src/viewer/zarr-source.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-viewer-zarr-'));
/** Not a multiple of the tile or chunk size, so edge tiles and edge chunks are clipped. */
const DEPTH = 2;
const HEIGHT = 600;
const WIDTH = 700;
const CHUNKS = [1, 128, 128] as const;
const TILE = 256;
const IMAGE = join(TMP, 'image.zarr');
const MAP = join(TMP, 'map.zarr');
const SINGLE = join(TMP, 'single.zarr');

/** Grey texture that differs along x, y and z (a misplaced read shows). */
const greyAt = (z: number, y: number, x: number) => (x * 3 + y * 5 + z * 101 + ((x * y) >> 7)) & 255;
/** Cells: 50-pixel squares with their own ids. */
const cellAt = (z: number, y: number, x: number) => 1 + z * 1000 + Math.floor(y / 50) * 20 + Math.floor(x / 50);
/** P(membrane): 1 on every tenth column. */
const membraneAt = (_z: number, _y: number, x: number) => (x % 10 === 0 ? 1 : 0);

function fill<T extends Uint8Array | Uint32Array | Float32Array>(out: T, at: (z: number, y: number, x: number) => number): T {
  for (let z = 0; z < DEPTH; z++) for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < WIDTH; x++) out[(z * HEIGHT + y) * WIDTH + x] = at(z, y, x);
  return out;
}

const n = DEPTH * HEIGHT * WIDTH;
const whole = { start: [0, 0, 0] as const, end: [DEPTH, HEIGHT, WIDTH] as const };
let server: ViewServer;

before(async () => {
  const image = await createOmeZarr(IMAGE, { shape: [DEPTH, HEIGHT, WIDTH], dtype: 'uint8', chunks: CHUNKS, kind: 'image' });
  await image.writeRegion(whole, fill(new Uint8Array(n), greyAt));
  await image.buildPyramid();
  const cells = await image.addLabels('cells', { dtype: 'uint32' });
  await cells.writeRegion(whole, fill(new Uint32Array(n), cellAt));
  await cells.buildPyramid();
  const map = await createOmeZarr(MAP, { shape: [DEPTH, HEIGHT, WIDTH], dtype: 'float32', chunks: CHUNKS, kind: 'membrane', polarity: 'membrane-high' });
  await map.writeRegion(whole, fill(new Float32Array(n), membraneAt));
  await map.buildPyramid();
  const single = await createOmeZarr(SINGLE, { shape: [DEPTH, HEIGHT, WIDTH], dtype: 'uint8', chunks: CHUNKS, levels: 1 });
  await single.writeRegion(whole, fill(new Uint8Array(n), greyAt));
  const inputs = await classifyPaths([IMAGE, MAP], {});
  server = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
});
after(async () => {
  await server?.close();
  rmSync(TMP, { recursive: true, force: true });
});

async function get(path: string): Promise<Buffer> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${path}: ${res.statusCode} ${Buffer.concat(chunks).toString()}`))));
    }).on('error', reject).end();
  });
}

/** The stored samples of a tile of scale level `level` (z, tile x, y), read straight from the file. */
async function stored(path: string, level: number, z: number, tx: number, ty: number): Promise<{ width: number; height: number; data: ArrayLike<number> }> {
  const r = await openVolume(path, { scale: level });
  const [, h, w] = r.shape;
  const width = Math.min(TILE, w - tx * TILE);
  const height = Math.min(TILE, h - ty * TILE);
  const data = await r.readRegion({ start: [z, ty * TILE, tx * TILE], end: [z + 1, ty * TILE + height, tx * TILE + width] });
  return { width, height, data };
}

test('a .zarr image is recognised, with its labels/cells as cells and a membrane map by its metadata', async () => {
  const inputs = await classifyPaths([IMAGE, MAP], {});
  assert.deepEqual(inputs, { images: IMAGE, cells: join(IMAGE, 'labels', 'cells'), map: MAP });
  const m = JSON.parse((await get('/api/manifest')).toString()) as Manifest;
  assert.deepEqual([m.width, m.height, m.depth, m.levels], [WIDTH, HEIGHT, DEPTH, 3]);
  assert.deepEqual(m.layers.map((l) => l.kind), ['image', 'map', 'cells']);
});

test('image tiles hold the stored pixels of the matching scale level, edge tiles clipped', async () => {
  for (const [z, level, tx, ty] of [[1, 0, 1, 1], [0, 0, 2, 2], [1, 1, 1, 0], [0, 2, 0, 0]] as const) {
    const png = decode(await get(`/api/tile/image/${z}/${level}/${tx}/${ty}.png`));
    const want = await stored(IMAGE, level, z, tx, ty);
    assert.deepEqual([png.width, png.height], [want.width, want.height], `tile ${z}/${level}/${tx}/${ty}`);
    assert.equal(png.channels, 1);
    assert.deepEqual(Array.from(png.data), Array.from(want.data), `tile ${z}/${level}/${tx}/${ty}`);
  }
});

test('the membrane map and cells are painted from their stored values; the readout reads them', async () => {
  const map = decode(await get('/api/tile/map/0/0/0/0.png'));
  const px = (x: number, y: number) => Array.from(map.data.subarray((y * map.width + x) * map.channels, (y * map.width + x + 1) * map.channels));
  assert.deepEqual(px(10, 5), hot(1)); // membrane-high: a stored 1 is membrane, whatever --membrane-prob says
  assert.deepEqual(px(11, 5), hot(0));
  const r = JSON.parse((await get('/api/point?z=1&x=613&y=421')).toString()) as PointReadout;
  assert.deepEqual(r, { x: 613, y: 421, z: 1, intensity: greyAt(1, 421, 613), pMembrane: 0, cell: cellAt(1, 421, 613) });
  const cells = decode(await get('/api/tile/cells/1/0/2/1.png'));
  const i = ((421 - TILE) * cells.width + (613 - 2 * TILE)) * cells.channels;
  assert.deepEqual(Array.from(cells.data.subarray(i, i + 3)), cellColour(cellAt(1, 421, 613)).slice(0, 3));
});

test('a tile is one read of just that tile from its stored level, never the section', async () => {
  const source = await ZarrSource.open(IMAGE, 'mean');
  await source.tile(1, 0, 1, 1, TILE);
  assert.deepEqual([source.reads, source.samplesRead], [1, TILE * TILE]);
  await source.tile(1, 1, 1, 0, TILE); // level 1 is 300x350: the stored level, clipped, not level 0 halved
  assert.deepEqual([source.reads, source.samplesRead], [2, TILE * TILE + (350 - TILE) * TILE]);
  await source.tile(0, 2, 0, 0, TILE);
  assert.deepEqual([source.reads, source.samplesRead], [3, TILE * TILE + (350 - TILE) * TILE + 150 * 175]);
});

test('a level the file does not store is made from the finer one, reading only the tile\'s footprint', async () => {
  const source = await ZarrSource.open(SINGLE, 'mean');
  const level0 = await openVolume(SINGLE);
  const section = { width: WIDTH, height: HEIGHT, data: await level0.readRegion({ start: [1, 0, 0], end: [2, HEIGHT, WIDTH] }) };
  const level1 = halve(section, 'mean');
  const tile = await source.tile(1, 1, 1, 0, TILE);
  assert.deepEqual(tile, cutTile(level1, TILE, 0, TILE));
  assert.deepEqual([source.reads, source.samplesRead], [1, 2 * TILE * (WIDTH - 2 * TILE)]);
  assert.deepEqual(await source.tile(1, 2, 0, 0, TILE), halve(level1, 'mean'));
});

test('an image named by its level-0 array (vol.zarr/0) still reads its other stored levels', async () => {
  const source = await ZarrSource.open(join(IMAGE, '0'), 'mean');
  const tile = await source.tile(0, 1, 0, 1, TILE);
  const want = await stored(IMAGE, 1, 0, 0, 1);
  assert.deepEqual([tile.width, tile.height, Array.from(tile.data)], [want.width, want.height, Array.from(want.data)]);
  assert.equal(source.samplesRead, want.width * want.height);
});

test('a path that is not level 0 of an image is refused by name', async () => {
  await assert.rejects(ZarrSource.open(join(IMAGE, '1'), 'mean'), (e) => isEmsegError(e, 'invalid-option') && e.path === join(IMAGE, '1'));
});

test('a chunk that links outside the .zarr folder is refused by the viewer, not read', async () => {
  const linked = join(TMP, 'linked.zarr');
  cpSync(SINGLE, linked, { recursive: true });
  // The chunk holding section 0, rows/columns 0-127 of level 0 (NGFF 0.4 keys z/y/x under the level's folder).
  const chunk = join(linked, '0', '0', '0', '0');
  const elsewhere = join(TMP, 'elsewhere-chunk');
  cpSync(chunk, elsewhere);
  rmSync(chunk);
  symlinkSync(elsewhere, chunk);
  const source = await ZarrSource.open(linked, 'mean');
  await assert.rejects(source.tile(0, 0, 0, 0, TILE), (e) => isEmsegError(e, 'outside') && e.path === chunk);
  // emseg's own commands may follow such links (a volume assembled from shared chunks): only the server confines.
  const plain = await openVolume(linked);
  assert.equal((await plain.readRegion({ start: [0, 0, 0], end: [1, 1, 1] }))[0], greyAt(0, 0, 0));
});
