#!/usr/bin/env node
/**
 * Trials behind docs/NEURONS.md, "6. 2-D affinities on ISBI 2012": stacks that `emseg eval` then scores. Usage:
 *   node scripts/isbi-affinity-trials.mjs membrane-map AFF.zarr OUT.tif
 *       P(non-membrane) of each pixel: the weakest of its four nearest affinities (y and x, both sides), as --pred
 *   node scripts/isbi-affinity-trials.mjs size-filter CELLS MIN OUT.tif
 *       cells of fewer than MIN pixels set to 0 (membrane), as --cells: a size filter after the mutex watershed
 *   node scripts/isbi-affinity-trials.mjs label-cells LABELS... OUT.tif
 *       the labels' own cells (4-connected components of the interior, ISBI polarity), as --cells: the ceiling
 * Outputs are multi-page TIFFs (float32 maps, uint32 cells), one page per section.
 */
import { writeFileSync } from 'node:fs';
import { labelComponents4 } from '../dist/src/image/components.js';
import { openStack } from '../dist/src/io/index.js';
import { openLabels, openVolume } from '../dist/src/io/registry.js';
import { encodeTiff } from '../dist/src/io/tiff-write.js';

const UINT8_MAX = 255;

async function channel(path, c) {
  const r = await openVolume(path, { channel: c });
  const data = await r.readRegion({ start: [0, 0, 0], end: r.shape });
  const shape = r.shape;
  await r.close();
  return { data: r.dtype === 'uint8' ? Float32Array.from(data, (v) => v / UINT8_MAX) : Float32Array.from(data), shape };
}

async function membraneMap(aff, out) {
  const [y, x] = [await channel(aff, 0), await channel(aff, 1)];
  const [depth, height, width] = y.shape;
  const pages = [];
  for (let z = 0; z < depth; z++) {
    const p = new Float32Array(height * width).fill(1);
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        const k = (z * height + i) * width + j;
        const q = i * width + j;
        // The edge stored at k joins q with the pixel a row up (y) or a column left (x): both ends see it.
        if (i > 0) {
          p[q - width] = Math.min(p[q - width], y.data[k]);
          p[q] = Math.min(p[q], y.data[k]);
        }
        if (j > 0) {
          p[q - 1] = Math.min(p[q - 1], x.data[k]);
          p[q] = Math.min(p[q], x.data[k]);
        }
      }
    }
    pages.push(p);
  }
  writeFileSync(out, encodeTiff(pages, width, height));
}

async function sizeFilter(cells, min, out) {
  const r = await openLabels(cells);
  const ids = await r.readLabels({ start: [0, 0, 0], end: r.shape });
  const [depth, height, width] = r.shape;
  await r.close();
  const size = new Map();
  for (const v of ids) size.set(Number(v), (size.get(Number(v)) ?? 0) + 1);
  const n = height * width;
  const pages = [];
  for (let z = 0; z < depth; z++) pages.push(Uint32Array.from(ids.subarray(z * n, (z + 1) * n), (v) => (size.get(Number(v)) < min ? 0 : Number(v))));
  writeFileSync(out, encodeTiff(pages, width, height));
}

async function labelCells(files, out) {
  const pages = [];
  let size = [0, 0];
  for await (const s of (await openStack(files)).slices()) {
    size = [s.width, s.height];
    pages.push(Uint32Array.from(labelComponents4(Uint8Array.from(s.data, (v) => (v ? 1 : 0)), s.width, s.height).labels));
  }
  writeFileSync(out, encodeTiff(pages, size[0], size[1]));
}

const [what, ...args] = process.argv.slice(2);
if (what === 'membrane-map' && args.length === 2) await membraneMap(args[0], args[1]);
else if (what === 'size-filter' && args.length === 3) await sizeFilter(args[0], Number(args[1]), args[2]);
else if (what === 'label-cells' && args.length >= 2) await labelCells(args.slice(0, -1), args.at(-1));
else {
  console.error('usage: node scripts/isbi-affinity-trials.mjs membrane-map AFF.zarr OUT.tif | size-filter CELLS MIN OUT.tif | label-cells LABELS... OUT.tif');
  process.exit(2);
}
