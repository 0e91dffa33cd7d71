/**
 * Synthetic inputs for the viewer tests, with every membrane and cell where the test knows it is: a grid of square
 * cells CELL pixels wide whose walls are WALL pixels thick. Section 0's map misses a piece of one wall (a merger).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { writeStack } from '../src/io/index.js';
import { LOG_FILE } from '../src/train/trainer.js';

export const SIZE = 512;
export const DEPTH = 3;
export const CELL = 64;
export const WALL = 4;
/** The second map draws its walls this thick, so columns WALL..WIDE_WALL-1 differ between the two maps. */
export const WIDE_WALL = 10;
export const MEMBRANE_GREY = 30;
export const interiorGrey = (z: number) => 170 + 20 * z;
/** The gap the first map leaves in the wall at x = CELL, rows GAP_FROM..GAP_TO-1, in section 0. */
export const GAP_FROM = 96;
export const GAP_TO = 160;
export const STEP_RECORDS = 37;
export const VALIDATION_RECORDS = 3;

export const isWall = (x: number, y: number, wall = WALL) => x % CELL < wall || y % CELL < wall;
export const cellId = (x: number, y: number, z: number) =>
  isWall(x, y) ? 0 : 1 + Math.floor(y / CELL) * (SIZE / CELL) + Math.floor(x / CELL) + z * 1000;

function section<T extends Uint8Array | Uint32Array | Float32Array>(make: (n: number) => T, value: (x: number, y: number) => number): { width: number; height: number; data: T } {
  const data = make(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) data[y * SIZE + x] = value(x, y);
  return { width: SIZE, height: SIZE, data };
}

const zs = Array.from({ length: DEPTH }, (_, z) => z);
const inGap = (x: number, y: number, z: number) => z === 0 && x >= CELL && x < CELL + WALL && y >= GAP_FROM && y < GAP_TO;

export interface Fixture {
  dir: string;
  images: string;
  map: string;
  compare: string;
  cells: string;
  labels: string;
  eval: string;
  train: string;
  study: string;
}

export async function writeFixture(dir: string): Promise<Fixture> {
  const f: Fixture = { dir, images: join(dir, 'images'), map: join(dir, 'map.tif'), compare: join(dir, 'map-b.tif'),
    cells: join(dir, 'cells.tif'), labels: join(dir, 'labels.tif'), eval: join(dir, 'eval.json'), train: join(dir, 'run'), study: join(dir, 'study') };
  await writeStack(f.images, zs.map((z) => section((n) => new Uint8Array(n), (x, y) => (isWall(x, y) ? MEMBRANE_GREY : interiorGrey(z)))), { format: 'png-folder' });
  // ISBI polarity: P(non-membrane).
  await writeStack(f.map, zs.map((z) => section((n) => new Float32Array(n), (x, y) => (isWall(x, y) && !inGap(x, y, z) ? 0 : 1))));
  await writeStack(f.compare, zs.map(() => section((n) => new Float32Array(n), (x, y) => (isWall(x, y, WIDE_WALL) ? 0 : 1))));
  await writeStack(f.cells, zs.map((z) => section((n) => new Uint32Array(n), (x, y) => cellId(x, y, z))));
  await writeStack(f.labels, zs.map(() => section((n) => new Uint8Array(n), (x, y) => (isWall(x, y) ? 0 : 255))));
  writeFileSync(f.eval, JSON.stringify({ sections_threshold: 0.5, sections: zs.map((z) => ({ index: z, v_rand: 0.9 + z / 100, warping_splits: 0, warping_mergers: z === 0 ? 1 : 0 })) }));
  mkdirSync(f.train);
  const lines: string[] = [];
  for (let s = 1; s <= STEP_RECORDS; s++) {
    lines.push(JSON.stringify({ type: 'step', step: s, steps: STEP_RECORDS, loss: 0.7 / Math.sqrt(s), lr: 0.01, windowsPerSecond: 100, elapsedMs: s * 10 }));
    if (s % 12 === 0) lines.push(JSON.stringify({ type: 'validation', step: s, pixel_error: 0.2 - s / 400, v_rand: 0.5 + s / 100, best: true }));
  }
  writeFileSync(join(f.train, LOG_FILE), `${lines.join('\n')}\n`);
  mkdirSync(f.study);
  const stat = (mean: number) => ({ mean, sd: 0.01, min: mean - 0.01, max: mean + 0.01, n: 2 });
  writeFileSync(join(f.study, 'study.json'), JSON.stringify({ study: 'depth', metrics: ['v_rand', 'pixel_error'],
    variants: [{ name: 'shallow', metrics: { v_rand: stat(0.8), pixel_error: stat(0.1) } }, { name: 'deep', metrics: { v_rand: stat(0.9), pixel_error: stat(0.08) } }] }));
  return f;
}

/** Debian's chromium, never a downloaded one; `make test` installs it (scripts/ensure-system-deps.sh). */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Chromium with a fresh empty profile in `profileDir`, one page of the given size. */
export async function launchChromium(profileDir: string, width = 1200, height = 800): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (make test does, through scripts/ensure-system-deps.sh)`);
  mkdirSync(profileDir, { recursive: true });
  return chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    viewport: { width, height }, deviceScaleFactor: 1 });
}
