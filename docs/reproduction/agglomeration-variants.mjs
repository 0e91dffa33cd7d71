// Issue 13 exploration (docs/experiments/isbi-2012-topology.md, "Agglomeration variants"): other ways of merging
// the watershed's over-segmentation than emseg's mean boundary strength, scored like `predict --close-gaps`
// (segment boundaries drawn into the map as certain membrane). Not part of the product; run after `npm run build`:
//   node docs/reproduction/agglomeration-variants.mjs LABELS MAPS [VARIANT-PREFIX...]
// MAPS: P(non-membrane) as `emseg predict` writes it (without --close-gaps).
import { loadInputs } from '../../dist/src/report/index.js';
import { evaluateStacks } from '../../dist/src/metrics/index.js';
import { renumber } from '../../dist/src/segment/agglomerate.js';
import { segmentBoundaries, segmentSection } from '../../dist/src/segment/segment.js';

/** The shipped model's tuned options (models/emseg-isbi/meta.json), merging left to the variants. */
const SEEDING = { sigma: 2, seedThreshold: 0.1, minSeedArea: 5, extraSeedThreshold: 0.7, mergeThreshold: 0 };
const SHIPPED_MERGE = 0.7;

/** Every pair of touching segments with the higher P(membrane) of each 4-neighbour pixel pair across it. */
function boundaries(seg, p, width) {
  const byPair = new Map();
  let max = 0;
  for (const l of seg) if (l > max) max = l;
  const touch = (i, j) => {
    const a = Math.min(seg[i], seg[j]);
    const b = Math.max(seg[i], seg[j]);
    if (a === b) return;
    let e = byPair.get(a * (max + 1) + b);
    if (!e) byPair.set(a * (max + 1) + b, e = { a, b, values: [] });
    e.values.push(Math.max(p[i], p[j]));
  };
  for (let i = 0; i < seg.length; i++) {
    if (i % width < width - 1) touch(i, i + 1);
    if (i + width < seg.length) touch(i, i + width);
  }
  return { list: [...byPair.values()], max };
}

const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
const quantile = (q) => (v) => [...v].sort((x, y) => x - y)[Math.min(v.length - 1, Math.floor(q * v.length))];

/**
 * Unites segments across boundaries in order of `score` while it is below `threshold`; `allow(areaA, areaB, s)`
 * may veto a merge by the segments' current areas.
 */
function merge(seg, p, width, { score = mean, threshold, allow = () => true }) {
  const { list, max } = boundaries(seg, p, width);
  const parent = Int32Array.from({ length: max + 1 }, (_, i) => i);
  const area = new Int32Array(max + 1);
  for (const l of seg) area[l]++;
  const find = (i) => { while (parent[i] !== i) i = parent[i] = parent[parent[i]]; return i; };
  for (const e of list) e.s = score(e.values);
  list.sort((x, y) => x.s - y.s);
  for (const e of list) {
    if (e.s >= threshold) break;
    const ra = find(e.a);
    const rb = find(e.b);
    if (ra === rb || !allow(area[ra], area[rb], e.s)) continue;
    parent[rb] = ra;
    area[ra] += area[rb];
  }
  return renumber(seg.map(find)).labels;
}

const VARIANTS = {};
for (const t of [0.6, 0.65, 0.68, 0.7, 0.72, 0.75, 0.8]) VARIANTS[`mean-${t}`] = { threshold: t };
for (const q of [0.25, 0.5]) for (const t of [0.6, 0.7, 0.8]) VARIANTS[`quantile${q}-${t}`] = { score: quantile(q), threshold: t };
// Small segments kept apart unless their boundary is weaker than `t` (small cells not outlined were 192 px of the
// warping error on 20-22) ...
for (const s of [100, 200, 400]) for (const t of [0.4, 0.5, 0.6]) {
  VARIANTS[`keep-small-${s}-${t}`] = { threshold: SHIPPED_MERGE, allow: (a, b, v) => Math.min(a, b) >= s || v < t };
}
// ... or merged even across stronger boundaries (up to `t`), against small pieces cut off a cell.
for (const s of [30, 60]) for (const t of [0.75, 0.8, 0.9]) {
  VARIANTS[`merge-small-${s}-${t}`] = { threshold: t, allow: (a, b, v) => v < SHIPPED_MERGE || Math.min(a, b) < s };
}

const [labels, maps, ...prefixes] = process.argv.slice(2);
const { gt, proposal } = await loadInputs({ labels, prediction: maps, polarity: 'membrane-0-interior-255', membraneProb: false });
const { width, height, depth } = proposal;
const n = width * height;
const sections = Array.from({ length: depth }, (_, z) => {
  const p = proposal.data.subarray(z * n, (z + 1) * n).map((v) => 1 - v);
  return { p, over: segmentSection(p, height, width, SEEDING).labels };
});
console.log('variant                 pixel / Rand / warping / V_rand / V_info');
for (const [name, options] of Object.entries(VARIANTS)) {
  if (prefixes.length && !prefixes.some((x) => name.startsWith(x))) continue;
  const out = new Float32Array(proposal.data.length);
  sections.forEach(({ p, over }, z) => {
    const lines = segmentBoundaries(merge(over, p, width, options), height, width);
    for (let i = 0; i < n; i++) out[z * n + i] = lines[i] ? 0 : 1 - p[i];
  });
  const r = evaluateStacks(gt, { width, height, depth, data: out }, {});
  console.log(name.padEnd(22), [r.pixel_error.toFixed(4), r.rand_error.toFixed(4), r.warping_error.toFixed(6),
    r.v_rand.toFixed(4), r.v_info.toFixed(4)].join(' / '));
}
