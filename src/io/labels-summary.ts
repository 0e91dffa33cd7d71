/**
 * `emseg labels`: what emseg understands of a label volume before any training, read section by section exactly as
 * training reads it (io/training-labels.ts): the kind (mask or instance) and why, a mask's classes and polarity, an
 * instance volume's number of ids, the ignored fraction, the boundary (membrane) fraction, and per section whether it
 * is labelled. Memory: one section, plus the set of distinct ids (instance labels).
 */
import type { LabelData, LabelReader, LabelType } from './formats/volume.js';
import { MembraneCount } from './plausibility.js';
import { polarityValues } from './dataset.js';
import { fullScale, type SampleType } from '../image/stack.js';
import { openLabels } from './registry.js';
import { countSection, decideReading, describeReading, sectionMask, type LabelFlags, type LabelReading } from './training-labels.js';

export interface SectionSummary {
  z: number;
  /** Fraction of the section's pixels that give a loss (not ignored, not unlabelled). */
  labelled: number;
  /** Fraction of the labelled pixels that are membrane (boundary). */
  boundary: number;
}

export interface LabelSummary {
  path: string;
  format: string;
  shape: readonly [number, number, number];
  dtype: LabelType;
  reading: LabelReading;
  /** The sentence train prints. */
  understood: string;
  /** Instance labels: distinct ids (0 and the ignore label left out); masks: the values met and their pixels. */
  ids?: number;
  classes?: { value: number; pixels: number; meaning: 'membrane' | 'interior' | 'ignored' }[];
  /** Fraction of all pixels that give no loss. */
  ignored: number;
  /** Fraction of the labelled pixels that are membrane. */
  boundary: number;
  sections: SectionSummary[];
  /** Sections without a labelled pixel (left out of training). */
  unlabelledSections: number[];
  warnings: string[];
}

/** Distinct ids of a section into `seen` (0 and the ignore label left out: they are no cell). */
function collectIds(ids: LabelData, ignore: bigint | undefined, seen: Set<number | bigint>): void {
  let last: number | bigint | undefined;
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (v === last) continue;
    last = v;
    if (v === 0 || v === 0n || (ignore !== undefined && BigInt(v) === ignore)) continue;
    seen.add(v);
  }
}

interface Tally {
  ids: Set<number | bigint>;
  values: Map<number, number>;
  labelled: number;
  membrane: number;
}

/** Instance labels: their distinct ids; masks: how many pixels hold each value. */
function tallySection(ids: LabelData, r: LabelReading, t: Tally): void {
  if (r.kind === 'instance') {
    collectIds(ids, r.ignoreLabel, t.ids);
    return;
  }
  for (let i = 0; i < ids.length; i++) {
    const v = Number(ids[i]);
    t.values.set(v, (t.values.get(v) ?? 0) + 1);
  }
}

/** A mask's values and what each means under the reading (the values allowed are the polarity's two and the ignore label). */
function maskClasses(r: LabelReading, type: LabelType, values: Map<number, number>): NonNullable<LabelSummary['classes']> {
  const polarity = polarityValues(r.polarity!);
  const max = fullScale(type as SampleType);
  const membrane = polarity.membrane === 'max' ? max : polarity.membrane;
  return [...values].sort((a, b) => a[0] - b[0]).map(([value, pixels]) => ({ value, pixels,
    meaning: r.ignoreLabel !== undefined && BigInt(value) === r.ignoreLabel ? 'ignored' : value === membrane ? 'membrane' : 'interior' }));
}

/** Reads `path` section by section as training would with these flags, and says what it understood. */
export async function summariseLabels(path: string, flags: LabelFlags, onProgress?: (done: number, total: number) => void): Promise<LabelSummary> {
  const reader = await openLabels(path);
  try {
    const reading = decideReading(reader, flags);
    const [depth, h, w] = reader.shape;
    const tally: Tally = { ids: new Set(), values: new Map(), labelled: 0, membrane: 0 };
    const sections: SectionSummary[] = [];
    for (let z = 0; z < depth; z++) {
      const ids = await reader.readLabels({ start: [z, 0, 0], end: [z + 1, h, w] });
      const mask = sectionMask(ids, h, w, reading, reader.sectionOrigin?.(z).source ?? reader.path);
      tallySection(ids, reading, tally);
      const c = countSection(mask);
      tally.labelled += c.labelled;
      tally.membrane += c.membrane;
      sections.push({ z, labelled: c.labelled / (h * w), boundary: c.labelled ? c.membrane / c.labelled : 0 });
      onProgress?.(z + 1, depth);
    }
    return summary(reader, reading, tally, sections);
  } finally {
    await reader.close();
  }
}

function summary(reader: LabelReader, reading: LabelReading, t: Tally, sections: SectionSummary[]): LabelSummary {
  const total = reader.shape[0] * reader.shape[1] * reader.shape[2];
  const warnings: string[] = [];
  if (reading.kind === 'mask') {
    const count = new MembraneCount();
    count.addCounts(t.membrane, t.labelled);
    // Shown, not refused: this command only reports (train refuses such masks unless --polarity is given).
    count.check(reading.polarity!, true, reader.path, (line) => warnings.push(line));
  }
  return {
    path: reader.path, format: reader.format, shape: reader.shape, dtype: reader.labelType, reading,
    understood: describeReading(reading, reader.path),
    ...(reading.kind === 'instance' ? { ids: t.ids.size }
      : { classes: maskClasses(reading, reader.labelType, t.values) }),
    ignored: (total - t.labelled) / total, boundary: t.labelled ? t.membrane / t.labelled : 0,
    sections, unlabelledSections: sections.filter((s) => s.labelled === 0).map((s) => s.z), warnings,
  };
}
