#!/usr/bin/env node
// Measurement helper (docs/YOUR-DATA.md, "A measured case"): writes chosen sections of an image volume and of its
// instance labels as PNG stacks for the 2D ISBI metrics: OUT/images (the raw sections) and OUT/labels (membrane
// masks, ISBI polarity: 0 = membrane, 255 = interior), the boundaries derived exactly as `emseg train --label-kind
// instance` derives them (in-plane, where ids change, --boundary-width 1).
// Usage: node scripts/sections-from-ids.mjs IMAGES LABELS SECTIONS OUT   (SECTIONS as --val takes them: 80,84 or z=0:4)
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { decideReading, openLabels, openVolume } from '../dist/src/index.js';
import { sectionMask } from '../dist/src/io/training-labels.js';
import { writeStack } from '../dist/src/io/write.js';
import { parseSections } from '../dist/src/util/sections.js';

const [imagesPath, labelsPath, list, out] = process.argv.slice(2);
if (!out) { console.error('usage: sections-from-ids.mjs IMAGES LABELS SECTIONS OUT'); process.exit(2); }
const MEMBRANE = 0;
const INTERIOR = 255;
const images = await openVolume(imagesPath);
const labels = await openLabels(labelsPath);
const reading = decideReading(labels, { labelKind: 'instance' });
const [, h, w] = labels.shape;
const raw = [];
const masks = [];
for (const z of parseSections(list)) {
  const region = { start: [z, 0, 0], end: [z + 1, h, w] };
  raw.push({ width: w, height: h, data: await images.readRegion(region) });
  const mask = sectionMask(await labels.readLabels(region), h, w, reading, labelsPath);
  masks.push({ width: w, height: h, data: Uint8Array.from(mask, (v) => (v === 1 ? MEMBRANE : INTERIOR)) });
}
await mkdir(out, { recursive: true });
await writeStack(join(out, 'images/'), raw);
await writeStack(join(out, 'labels/'), masks);
await images.close();
await labels.close();
console.log(`${raw.length} sections (${list}) of ${w} x ${h} written to ${out}/images and ${out}/labels`);
