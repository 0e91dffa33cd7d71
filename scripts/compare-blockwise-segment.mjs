// Developer check: V_rand between a blockwise segmentation (cells.zarr from `emseg segment --out cells.zarr`)
// and segmenting each whole section of the same maps at once, with the default watershed options (the maps in
// the ISBI polarity). Whole sections are held in memory, so use it on volumes whose sections fit.
// Usage: node scripts/compare-blockwise-segment.mjs maps.zarr cells.zarr   (after `npx tsc -p .`)
import { openVolume } from '../dist/src/io/registry.js';
import { OverlapCounter } from '../dist/src/metrics/overlap.js';
import { vRand } from '../dist/src/metrics/rand.js';
import { DEFAULT_SEGMENT_OPTIONS, segmentSection } from '../dist/src/segment/index.js';

const [mapsPath, cellsPath] = process.argv.slice(2);
if (!mapsPath || !cellsPath) throw new Error('usage: compare-blockwise-segment.mjs maps.zarr cells.zarr');
const maps = await openVolume(mapsPath);
const cells = await openVolume(`${cellsPath}/0`);
const [depth, h, w] = maps.shape;
const max = (v) => v.reduce((a, x) => Math.max(a, x), 0);
for (let z = 0; z < depth; z++) {
  const region = { start: [z, 0, 0], end: [z + 1, h, w] };
  const p = Float32Array.from(await maps.readRegion(region), (v) => 1 - v / 255);
  const whole = segmentSection(p, h, w, DEFAULT_SEGMENT_OPTIONS).labels;
  const blockwise = Int32Array.from(await cells.readRegion(region));
  const score = vRand(new OverlapCounter().count(whole, max(whole), blockwise, max(blockwise))).score;
  console.log(`section ${z}: ${h} x ${w}, whole-section segments ${max(whole)}, blockwise cells ${new Set(blockwise).size}, V_rand ${score.toFixed(5)}`);
}
