/**
 * `emseg view` in Debian's chromium (playwright-core): the page opens on synthetic outputs whose membranes and cells
 * are where the test put them; it moves the slider, toggles each layer and reads screenshot pixels there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'fast-png';
import type { BrowserContext, Page } from 'playwright-core';
import { readStack, writeStack } from '../src/io/index.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { classifyPaths } from '../src/viewer/classify.js';
import { ViewModel, type ViewInputs } from '../src/viewer/model.js';
import type { ErrorMarks } from '../src/viewer/protocol.js';
import { cellColour, LABEL_COLOUR, MERGER_COLOUR } from '../src/viewer/render.js';
import { startServer, type ViewServer } from '../src/viewer/server.js';
import { SAMPLES } from './helpers/data.js';
import { CELL, MEMBRANE_GREY, STEP_RECORDS, VALIDATION_RECORDS, WIDE_WALL, cellId, interiorGrey, launchChromium, writeFixture, type Fixture } from './viewer-fixtures.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-viewer-browser-'));
/** Colour tolerance per channel: blending rounds, nothing else. */
const TOL = 3;
let f: Fixture;
let browser: BrowserContext;
const servers: ViewServer[] = [];

before(async () => {
  f = await writeFixture(join(TMP, 'data'));
  browser = await launchChromium(join(TMP, 'profile'));
});
after(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  rmSync(TMP, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  problems: string[];
  dialogs: string[];
}

async function open(inputs: ViewInputs): Promise<Opened> {
  const server = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
  servers.push(server);
  const page = await browser.newPage();
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(server.url);
  await page.waitForFunction(() => window.emsegView?.ready === true);
  await settle(page);
  return { page, problems, dialogs };
}

const settle = (page: Page) => page.evaluate(() => window.emsegView!.settled());

/** Colour of image pixel (x, y) on screen, from a screenshot. */
async function pixelAt(page: Page, x: number, y: number): Promise<number[]> {
  await settle(page);
  const at = await page.evaluate(([ix, iy]) => window.emsegView!.imageToPage(ix!, iy!), [x, y]);
  const png = decode(await page.screenshot({ clip: { x: Math.floor(at.x), y: Math.floor(at.y), width: 1, height: 1 } }));
  return Array.from(png.data.subarray(0, 3));
}

function near(actual: number[], expected: readonly number[], what: string): void {
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= TOL), `${what}: got ${actual}, expected ${expected}`);
}

const grey = (g: number) => [g, g, g];
const blend = (top: readonly number[], alpha: number, under: readonly number[]) => under.map((u, i) => Math.round(alpha * top[i]! + (1 - alpha) * u));
const HOT_MEMBRANE = [255, 255, 0];

async function setShown(page: Page, kind: string, shown: boolean): Promise<void> {
  await page.setChecked(`#toggle-${kind}`, shown);
}

async function setRange(page: Page, id: string, value: number): Promise<void> {
  await page.$eval(`#${id}`, (el, v) => {
    (el as HTMLInputElement).value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

test('sections, every overlay, the swipe, the readout and the charts, in chromium', async () => {
  const { page, problems, dialogs } = await open({ images: f.images, map: f.map, compare: f.compare, cells: f.cells, labels: f.labels,
    eval: f.eval, train: f.train, study: f.study });
  const mid = CELL + CELL / 2;
  const wall = [CELL + 1, CELL / 2] as const; // (the map's gap in section 0 is lower down this wall)
  const mapAlpha = Number(await page.inputValue('#opacity-map'));

  // Start: image with both maps; left of the swipe line the first map, whose wall is hot over the dark membrane.
  near(await pixelAt(page, ...wall), blend(HOT_MEMBRANE, mapAlpha, grey(MEMBRANE_GREY)), 'map over a wall');
  near(await pixelAt(page, mid, mid), grey(interiorGrey(0)), 'interior under the map');
  await setShown(page, 'map', false);
  near(await pixelAt(page, ...wall), grey(MEMBRANE_GREY), 'wall, map hidden');

  // The second map has thicker walls: column CELL + WALL + 2 is a wall there only. Swipe it over the whole image.
  const wideOnly = [CELL + WIDE_WALL - 2, mid] as const;
  near(await pixelAt(page, ...wideOnly), grey(interiorGrey(0)), 'second map clipped away left of the swipe');
  await setRange(page, 'swipe', 0);
  near(await pixelAt(page, ...wideOnly), blend(HOT_MEMBRANE, mapAlpha, grey(interiorGrey(0))), 'second map after the swipe');
  await setShown(page, 'compare', false);

  await setShown(page, 'cells', true);
  const cellAlpha = Number(await page.inputValue('#opacity-cells'));
  near(await pixelAt(page, mid, mid), blend(cellColour(cellId(mid, mid, 0)), cellAlpha, grey(interiorGrey(0))), 'cell colour');
  await setRange(page, 'opacity-cells', 1);
  near(await pixelAt(page, mid + CELL, mid), cellColour(cellId(mid + CELL, mid, 0)), 'next cell, opaque');
  await setShown(page, 'cells', false);

  await setShown(page, 'labels', true);
  near(await pixelAt(page, ...wall), LABEL_COLOUR, 'ground-truth outline');
  near(await pixelAt(page, mid, mid), grey(interiorGrey(0)), 'no outline inside');
  await setShown(page, 'labels', false);

  await setShown(page, 'errors', true);
  await page.waitForFunction(() => /merger/.test(document.getElementById('section-errors')!.textContent ?? ''));
  const marks = await page.evaluate(async () => (await fetch('/api/errors/0')).json() as Promise<ErrorMarks>);
  assert.ok(marks.mergers > 0);
  near(await pixelAt(page, ...marks.mergerAt[0]!), MERGER_COLOUR, 'merger mark');
  await setShown(page, 'image', false);
  near(await pixelAt(page, mid, mid), [0, 0, 0], 'image hidden: the black behind it');
  await setShown(page, 'image', true);

  // Next section by the slider, then by the keyboard.
  await setRange(page, 'section', 1);
  await page.waitForFunction(() => window.emsegView!.section() === 1);
  near(await pixelAt(page, mid, mid), grey(interiorGrey(1)), 'section 2 interior');
  assert.equal(await page.textContent('#section-number'), '2 / 3');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => window.emsegView!.section() === 2);
  near(await pixelAt(page, mid, mid), grey(interiorGrey(2)), 'section 3 interior');

  // Readout under the cursor.
  const at = await page.evaluate(([x, y]) => window.emsegView!.imageToPage(x!, y!), [mid, mid]);
  await page.mouse.move(at.x, at.y);
  await page.waitForFunction((id) => document.querySelector('[data-field="cell id"]')?.textContent === String(id), cellId(mid, mid, 2));
  assert.equal(await page.textContent('[data-field="intensity"]'), String(interiorGrey(2)));
  assert.equal(await page.textContent('[data-field="P(membrane)"]'), '0.000');
  assert.equal(await page.textContent('[data-field="label"]'), 'interior');
  const onWall = await page.evaluate(([x, y]) => window.emsegView!.imageToPage(x!, y!), [...wall]);
  await page.mouse.move(onWall.x, onWall.y);
  await page.waitForFunction(() => document.querySelector('[data-field="label"]')?.textContent === 'membrane');
  assert.equal(await page.textContent('[data-field="P(membrane)"]'), '1.000');

  // Charts, drawn from the log and the study summary.
  await page.waitForSelector('#loss-chart polyline.loss');
  const lossPoints = await page.getAttribute('#loss-chart polyline.loss', 'points');
  assert.equal(lossPoints!.trim().split(/\s+/).length, STEP_RECORDS);
  for (const m of ['pixel_error', 'v_rand']) {
    assert.equal((await page.getAttribute(`#validation-chart polyline.${m}`, 'points'))!.trim().split(/\s+/).length, VALIDATION_RECORDS);
  }
  assert.equal(await page.locator('#study svg[data-metric]').count(), 2);
  assert.equal(await page.locator('#study rect.bar').count(), 4);

  assert.deepEqual(problems, []);
  assert.deepEqual(dialogs, []);
  await page.close();
});

test('a file named like markup shows as text', async () => {
  const folder = join(TMP, 'hostile');
  mkdirSync(folder);
  const name = '<img src=x onerror=alert(1)>.png';
  copyFileSync(join(f.images, '0000.png'), join(folder, name));
  const { page, problems, dialogs } = await open({ images: folder });
  assert.match((await page.textContent('#section-files'))!, /image: <img src=x onerror=alert\(1\)>\.png/);
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(problems, []);
  await page.close();
});

test('the bundled ISBI sample sections with their labels: outlines on membrane pixels', async () => {
  const images = join(SAMPLES, 'images');
  const labelsPath = join(SAMPLES, 'labels');
  const { page, problems } = await open({ images, labels: labelsPath });
  const raw = await readStack(images);
  const labels = await readStack(labelsPath);
  const w = raw.width;
  // A membrane pixel whose whole 3x3 neighbourhood is membrane, and an interior one likewise, in the middle region.
  const uniform = (x: number, y: number, v: number) => [-1, 0, 1].every((dy) => [-1, 0, 1].every((dx) => labels.data[(y + dy) * w + x + dx] === v));
  const find = (v: number) => {
    for (let y = w / 4; y < (3 * w) / 4; y++) for (let x = w / 4; x < (3 * w) / 4; x++) if (uniform(x, y, v)) return [x, y] as const;
    throw new Error(`no 3x3 block of ${v}`);
  };
  const membrane = find(0);
  const interior = find(255);
  // At 1.56 screen pixels per image pixel, tile placement can put a screen pixel on the neighbour of the one
  // aimed at: the colour seen must be the grey of one of the 3x3 pixels around it (nearest-neighbour drawing).
  const around = (x: number, y: number) => [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => raw.data[(y + dy) * w + x + dx]!));
  const isAround = (seen: number[], x: number, y: number) =>
    assert.ok(around(x, y).some((g) => seen.every((c) => Math.abs(c - g) <= TOL)), `${seen} is none of ${around(x, y)}`);
  isAround(await pixelAt(page, ...interior), ...interior);
  await setShown(page, 'labels', true);
  near(await pixelAt(page, ...membrane), LABEL_COLOUR, 'label outline on a membrane pixel');
  isAround(await pixelAt(page, ...interior), ...interior);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a large section is read as tiles of the level shown, never whole', async () => {
  const size = 2048;
  const big = join(TMP, 'big.tif');
  const data = new Uint8Array(size * size);
  for (let i = 0; i < data.length; i++) data[i] = (i % size) >> 3;
  await writeStack(big, [{ width: size, height: size, data }]);
  const tiles: string[] = [];
  browser.on('request', (r) => {
    const m = /\/api\/tile\/image\/0\/(\d+)\//.exec(r.url());
    if (m) tiles.push(m[1]!);
  });
  const { page, problems } = await open({ images: big });
  const fullTiles = (size / 256) ** 2;
  assert.ok(tiles.length > 0 && !tiles.includes('0'), `home view read levels ${[...new Set(tiles)]}`);
  for (let i = 0; i < 5; i++) await page.keyboard.press('+');
  await settle(page);
  const level0 = tiles.filter((l) => l === '0').length;
  assert.ok(level0 > 0 && level0 < fullTiles / 2, `zoomed in: ${level0} of ${fullTiles} full-resolution tiles`);
  assert.deepEqual(problems, []);
  await page.close();
});

test('an OME-Zarr image opens and shows its stored pixels', async () => {
  const [height, width, block] = [600, 700, 50];
  const zarr = join(TMP, 'blocks.zarr');
  const shade = (x: number, y: number) => 40 + 10 * ((Math.floor(x / block) + 3 * Math.floor(y / block)) % 20);
  const data = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = shade(x, y);
  const w = await createOmeZarr(zarr, { shape: [1, height, width], dtype: 'uint8', chunks: [1, 128, 128], kind: 'image' });
  await w.writeRegion({ start: [0, 0, 0], end: [1, height, width] }, data);
  await w.buildPyramid();
  const { page, problems } = await open(await classifyPaths([zarr], {}));
  for (const [x, y] of [[25, 25], [375, 225], [675, 575]] as const) near(await pixelAt(page, x, y), grey(shade(x, y)), `pixel ${x},${y}`);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a tile the server refuses is explained on the page, in its words', async () => {
  // Labels read with the wrong polarity: the server refuses their tiles, naming the file and the value.
  const { page, problems } = await open({ images: f.images, labels: f.labels, polarity: 'membrane-1-interior-0' });
  await setShown(page, 'labels', true);
  await page.waitForFunction(() => /polarity membrane-1-interior-0/.test(document.getElementById('status')?.textContent ?? ''));
  assert.match((await page.textContent('#status'))!, /labels\.tif/);
  // Only the refused tiles themselves (the browser's and OpenSeadragon's own lines about them).
  assert.ok(problems.length > 0 && problems.every((p) => /status of 422|labels\/0\/.*failed to load|failed to load.*\/api\/tile\/labels\//i.test(p)), problems.join('\n'));
  await page.close();
});
