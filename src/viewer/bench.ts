/**
 * Viewer timings in Debian's chromium (a benchmark, not a test): first section painted after the page opens, and
 * the next section painted after a key press. "Painted" = every shown layer has all the tiles it needs at the zoom
 * shown and they have been drawn (window.emsegView.settled()). Each run uses a fresh server on a fresh port, so
 * neither the server's caches nor the browser's HTTP cache help unless the run says "warm".
 *
 *   node dist/src/viewer/bench.js demo OUT_DIR [--runs N]     # emseg demo's outputs (its membranes.tif, cells.tif)
 *   node dist/src/viewer/bench.js large SIZE [--runs N]       # one synthetic SIZE x SIZE uint8 section (TIFF)
 *   node dist/src/viewer/bench.js zarr SIZE [--runs N]        # one SIZE x SIZE OME-Zarr section (pyramid) of tiled ISBI samples
 *   node dist/src/viewer/bench.js screenshot OUT_DIR FILE.png # the README's picture of the demo's outputs
 *
 * Needs playwright-core (a dev dependency) and /usr/bin/chromium.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { decode, encode } from 'fast-png';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { EmsegError } from '../errors.js';
import { readStack, writeStack } from '../io/index.js';
import { createOmeZarr } from '../io/formats/ome-zarr-write.js';
import { SAMPLE_IMAGES, SAMPLE_LABELS } from '../pipeline/assets.js';
import { ViewModel, type ViewInputs } from './model.js';
import { startServer } from './server.js';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const VIEWPORT = { width: 1280, height: 800 };
const DWELL_MS = 500;

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

interface Timing {
  /** ViewModel.open: headers, and for the image its first section decoded and reduced to the coarsest level. */
  openMs: number;
  browserColdFirstPaint: number;
  firstPaint: number;
  inPageFirstPaint: number;
  warmFirstPaint: number;
  /** Key pressed as soon as section 0 is painted: the server has not made section 1's tiles yet. */
  nextSectionImmediate?: number;
  /** Key pressed DWELL_MS after section 0 is painted (someone looking at it): section 1 prefetched. */
  nextSection?: number;
  warmNextSection?: number;
}

/**
 * One run on two fresh servers: the first page load also starts the browser's renderer (reported as
 * browserColdFirstPaint); the second, on another server and origin (nothing cached for it), is firstPaint.
 */
async function once(inputs: ViewInputs, profile: string): Promise<Timing> {
  const { chromium } = await import('playwright-core');
  const warmUp = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
  const opening = performance.now();
  const model = await ViewModel.open(inputs);
  const openMs = performance.now() - opening;
  const server = await startServer(model, '127.0.0.1', 0);
  const other = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
  const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ARGS, viewport: VIEWPORT });
  try {
    const page = await browser.newPage();
    const paint = async (z: number) => page.waitForFunction((want) => window.emsegView?.ready && window.emsegView.section() === want, z)
      .then(() => page.evaluate(() => window.emsegView!.settled()));
    const timed = async (action: () => Promise<unknown>, z: number) => {
      const t = performance.now();
      await action();
      await paint(z);
      return performance.now() - t;
    };
    const browserColdFirstPaint = await timed(() => page.goto(warmUp.url), 0);
    const firstPaint = await timed(() => page.goto(server.url), 0);
    // The same, seen by the page: from the start of navigation to the last tile drawn (no driver round trips).
    const inPageFirstPaint = await page.evaluate(() => performance.now());
    const out: Timing = { openMs, browserColdFirstPaint, firstPaint, inPageFirstPaint, warmFirstPaint: 0 };
    if (model.shape.depth > 1) {
      out.nextSectionImmediate = await timed(() => page.keyboard.press('ArrowRight'), 1);
      await page.goto(other.url); // a third fresh server: nothing of section 1 made yet
      await paint(0);
      await page.waitForTimeout(DWELL_MS);
      out.nextSection = await timed(() => page.keyboard.press('ArrowRight'), 1);
      await timed(() => page.keyboard.press('ArrowLeft'), 0);
      out.warmNextSection = await timed(() => page.keyboard.press('ArrowRight'), 1);
      await timed(() => page.keyboard.press('ArrowLeft'), 0);
    }
    out.warmFirstPaint = await timed(() => page.reload(), 0);
    return out;
  } finally {
    await browser.close();
    await server.close();
    await warmUp.close();
    await other.close();
  }
}

const SHOT_VIEWPORT = { width: 800, height: 500 };
/** Bits kept per colour channel in the README's screenshot: EM texture barely compresses, and 5 bits look the same. */
const SHOT_BITS = 5;

function posterize(bytes: Buffer): Uint8Array {
  const png = decode(bytes);
  const mask = 0xff & ~((1 << (8 - SHOT_BITS)) - 1);
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; j < rgb.length; i += png.channels, j += 3) {
    for (let c = 0; c < 3; c++) rgb[j + c] = png.data[i + c]! & mask;
  }
  return encode({ width: png.width, height: png.height, data: rgb, channels: 3, depth: 8 }, { zlib: { level: 9 } });
}

/** The demo's section 1 with its map, cells and error marks, for the README. */
async function screenshot(inputs: ViewInputs, file: string, profile: string): Promise<void> {
  const { chromium } = await import('playwright-core');
  const server = await startServer(await ViewModel.open(inputs), '127.0.0.1', 0);
  const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ARGS,
    viewport: SHOT_VIEWPORT });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => window.emsegView?.ready);
    await page.setChecked('#toggle-cells', true);
    await page.setChecked('#toggle-errors', true);
    await page.waitForFunction(() => /merger/.test(document.getElementById('section-errors')?.textContent ?? ''));
    await page.evaluate(() => window.emsegView!.settled());
    writeFileSync(file, posterize(await page.screenshot()));
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Chunk edge of the benchmark's OME-Zarr: one viewer tile per chunk. */
const BENCH_CHUNK = 256;

/** A size x size OME-Zarr section (with its pyramid) of the first ISBI sample repeated: real EM texture, cheap to make. */
async function writeTiledSamples(dir: string, size: number): Promise<void> {
  const sample = await readStack(join(SAMPLE_IMAGES, '23.png'));
  const writer = await createOmeZarr(dir, { shape: [1, size, size], dtype: 'uint8', chunks: [1, BENCH_CHUNK, BENCH_CHUNK], kind: 'image' });
  const band = new Uint8Array(BENCH_CHUNK * size);
  for (let y0 = 0; y0 < size; y0 += BENCH_CHUNK) {
    const rows = Math.min(BENCH_CHUNK, size - y0);
    for (let r = 0; r < rows; r++) {
      const src = ((y0 + r) % sample.height) * sample.width;
      for (let x = 0; x < size; x += sample.width) band.set(sample.data.subarray(src, src + Math.min(sample.width, size - x)) as Uint8Array, r * size + x);
    }
    await writer.writeRegion({ start: [0, y0, 0], end: [1, y0 + rows, size] }, band.subarray(0, rows * size));
  }
  await writer.buildPyramid();
}

async function main(): Promise<void> {
  const [mode, arg] = process.argv.slice(2);
  if (mode === 'screenshot' && arg && process.argv[4]) {
    const tmp = mkdtempSync(join(tmpdir(), 'emseg-view-shot-'));
    const here = (p: string) => relative(process.cwd(), p); // the names shown are as a user in the repository types them
    await screenshot({ images: here(SAMPLE_IMAGES), map: join(arg, 'membranes.tif'), cells: join(arg, 'cells.tif'), labels: here(SAMPLE_LABELS) }, process.argv[4], tmp);
    return rmSync(tmp, { recursive: true, force: true });
  }
  const runsAt = process.argv.indexOf('--runs');
  const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 5;
  const tmp = mkdtempSync(join(tmpdir(), 'emseg-view-bench-'));
  try {
    let inputs: ViewInputs;
    if (mode === 'demo' && arg) {
      inputs = { images: SAMPLE_IMAGES, map: join(arg, 'membranes.tif'), cells: join(arg, 'cells.tif'), labels: SAMPLE_LABELS };
    } else if (mode === 'large' && arg) {
      const size = Number(arg);
      const data = new Uint8Array(size * size);
      for (let y = 0; y < size; y++) data.fill((y * 7) & 255, y * size, (y + 1) * size);
      inputs = { images: join(tmp, 'large.tif') };
      await writeStack(inputs.images!, [{ width: size, height: size, data }]);
    } else if (mode === 'zarr' && arg) {
      inputs = { images: join(tmp, 'large.zarr') };
      const building = performance.now();
      await writeTiledSamples(inputs.images!, Number(arg));
      process.stderr.write(`built ${inputs.images} in ${Math.round(performance.now() - building)} ms\n`);
    } else {
      throw new EmsegError('invalid-option', '', 'usage: bench.js demo OUT_DIR | large SIZE | zarr SIZE | screenshot OUT_DIR FILE.png [--runs N]');
    }
    const all: Timing[] = [];
    for (let i = 0; i < runs; i++) all.push(await once(inputs, join(tmp, `profile-${i}`)));
    const pick = (k: keyof Timing) => all.map((r) => r[k]).filter((v): v is number => v !== undefined);
    const report = Object.fromEntries((['openMs', 'browserColdFirstPaint', 'firstPaint', 'inPageFirstPaint', 'warmFirstPaint', 'nextSectionImmediate', 'nextSection', 'warmNextSection'] as const)
      .filter((k) => pick(k).length).map((k) => [k, { medianMs: Math.round(median(pick(k))), allMs: pick(k).map(Math.round) }]));
    process.stdout.write(`${JSON.stringify({ mode, arg, runs, viewport: VIEWPORT, ...report }, null, 2)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('bench.js')) await main();
