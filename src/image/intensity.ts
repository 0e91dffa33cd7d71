/**
 * Intensity normalisation: how a section's stored values become the network's input in [0,1]. The rule is
 * said, never guessed: `auto` (the default) is `dtype` wherever dividing by the type's full range is right,
 * and refuses, naming the file and the option to use, where it would silently mis-scale (12-bit data in a
 * 16-bit file, float data outside [0,1]). Every rule is linear per section: (v - low) / (high - low), clipped.
 */
import { EmsegError } from '../errors.js';
import { fullScale, sampleTypeOf, type SampleType, type StackData } from './stack.js';

export type IntensitySpec =
  /** `dtype`, but refuses wide integers using less than a quarter of their range, and floats outside [0,1]. */
  | { kind: 'auto' }
  /** Divide by the type's full range (255, 65535, 2^32-1); floats must already lie in [0,1]. */
  | { kind: 'dtype' }
  /** Each section's own minimum and maximum. */
  | { kind: 'min-max' }
  /** Each section's low and high percentiles (0..100), values beyond them clipped. */
  | { kind: 'percentiles'; low: number; high: number }
  /** Fixed values, e.g. 0,4095 for 12-bit data; values beyond them clipped. */
  | { kind: 'range'; low: number; high: number };

export const DEFAULT_INTENSITY = 'auto';
export const DEFAULT_PERCENTILES = { low: 0.5, high: 99.5 } as const;

/** Help text shared by every command that takes --intensity (and the study file's data.intensity). */
export const INTENSITY_HELP = 'how stored values become [0,1]: auto (dtype, but refuses 16/32-bit data using under a quarter '
  + 'of its range, e.g. 12-bit data, and float outside [0,1]), dtype (divide by 255/65535/2^32-1; float as is, must lie in [0,1]), '
  + `min-max (per section), percentiles[:LOW,HIGH] (per section, default ${DEFAULT_PERCENTILES.low},${DEFAULT_PERCENTILES.high}, clipped), `
  + 'or LOW,HIGH (fixed, e.g. 0,4095 for 12-bit data; clipped)';

/** Wide integer data whose maximum is below this fraction of the full range is refused by `auto`. */
const AUTO_MIN_RANGE_FRACTION = 1 / 4;
/** Smallest bit depth suggested for wide integer data (cameras store 10, 12 or 14 bits in 16-bit files). */
const MIN_SUGGESTED_BITS = 8;

/** Parses `auto`, `dtype`, `min-max`, `percentiles`, `percentiles:LOW,HIGH` or `LOW,HIGH`; `path` names the flag or field. */
export function parseIntensity(text: string, path = '--intensity'): IntensitySpec {
  const t = text.trim().toLowerCase();
  if (t === 'auto' || t === 'dtype' || t === 'min-max') return { kind: t };
  const bad = (why: string): never => {
    throw new EmsegError('invalid-option', path, `"${text}" ${why}; use auto, dtype, min-max, percentiles[:LOW,HIGH] or LOW,HIGH`);
  };
  if (t === 'percentiles') return { kind: 'percentiles', ...DEFAULT_PERCENTILES };
  const isPercentiles = t.startsWith('percentiles:');
  const pair = (isPercentiles ? t.slice('percentiles:'.length) : t).split(',');
  if (pair.length !== 2 || pair.some((v) => v.trim() === '')) return bad('is not an intensity rule');
  const [low, high] = pair.map(Number) as [number, number];
  if (!Number.isFinite(low) || !Number.isFinite(high)) return bad('has a bound that is not a finite number');
  if (!(low < high)) return bad('needs LOW < HIGH');
  if (isPercentiles && (low < 0 || high > 100)) return bad('needs percentiles within 0..100');
  return { kind: isPercentiles ? 'percentiles' : 'range', low, high };
}

/** The text form parseIntensity reads back (what a model's meta.json records). */
export function formatIntensity(spec: IntensitySpec): string {
  if (spec.kind === 'percentiles') return `percentiles:${spec.low},${spec.high}`;
  if (spec.kind === 'range') return `${spec.low},${spec.high}`;
  return spec.kind;
}

/** Where a section came from, for error messages (a Slice of io has these fields). */
export interface SectionOrigin {
  source: string;
  page: number;
  index: number;
}

/** The linear map of one section: (v - low) / (high - low), clipped to [0,1]. */
export interface IntensityMapping {
  low: number;
  high: number;
}

interface SectionStats {
  type: SampleType;
  min: number;
  max: number;
}

function describeSection(at: SectionOrigin): string {
  return `section ${at.index}${at.page > 0 ? ` (page ${at.page + 1} of the file)` : ''}`;
}

/** Min and max; any NaN or infinity is refused, naming the file and section. */
function statsOf(data: StackData, at: SectionOrigin): SectionStats {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) {
      throw new EmsegError('non-finite', at.source, `${describeSection(at)} holds ${v} at pixel ${i}; images must be finite numbers`);
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { type: sampleTypeOf(data), min, max };
}

/** The mapping `spec` gives this section (refusing where `auto`/`dtype` would mis-scale it). */
export function sectionMapping(spec: IntensitySpec, data: StackData, at: SectionOrigin): IntensityMapping {
  const stats = statsOf(data, at);
  switch (spec.kind) {
    case 'dtype':
    case 'auto':
      return dtypeMapping(spec.kind, stats, at);
    case 'min-max':
      return { low: stats.min, high: stats.max };
    case 'percentiles':
      return { low: percentile(data, spec.low), high: percentile(data, spec.high) };
    case 'range':
      return { low: spec.low, high: spec.high };
  }
}

function dtypeMapping(kind: 'dtype' | 'auto', s: SectionStats, at: SectionOrigin): IntensityMapping {
  const where = describeSection(at);
  if (s.type === 'float32') {
    if (s.min >= 0 && s.max <= 1) return { low: 0, high: 1 };
    const byte = s.min >= 0 && s.max <= fullScale('uint8') ? '--intensity 0,255 (8-bit values stored as float), ' : '';
    throw new EmsegError('intensity-range', at.source, `${where} is float with values in [${s.min}, ${s.max}], outside the [0,1] `
      + `that --intensity ${kind} needs; say how to scale it: ${byte}--intensity min-max or percentiles (per section), or --intensity LOW,HIGH`);
  }
  const full = fullScale(s.type);
  if (kind === 'auto' && s.type !== 'uint8' && s.max > 0 && s.max < full * AUTO_MIN_RANGE_FRACTION) {
    const bits = bitsFor(s.max);
    throw new EmsegError('intensity-range', at.source, `${where} is ${s.type} with maximum ${s.max} (fits ${bits} bits): dividing by `
      + `${full} would leave it nearly black. Say how to scale it: --intensity 0,${2 ** bits - 1} (${bits}-bit data), `
      + '--intensity percentiles (per section), or --intensity dtype (divide by the full range anyway)');
  }
  return { low: 0, high: full };
}

/** Smallest even bit depth (at least 8) that holds `max`. */
function bitsFor(max: number): number {
  let bits = MIN_SUGGESTED_BITS;
  while (2 ** bits - 1 < max) bits += 2;
  return bits;
}

/** Nearest-rank percentile p (0..100): a histogram for 8/16-bit data, a sorted copy otherwise. */
export function percentile(data: StackData, p: number): number {
  const n = data.length;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  if (data instanceof Uint8Array || data instanceof Uint16Array) {
    const counts = new Uint32Array(fullScale(sampleTypeOf(data)) + 1);
    for (let i = 0; i < n; i++) counts[data[i]!]!++;
    let seen = 0;
    for (let v = 0; v < counts.length; v++) {
      seen += counts[v]!;
      if (seen >= rank) return v;
    }
  }
  const sorted = Float64Array.from(data).sort();
  return sorted[rank - 1]!;
}

/** Applies a mapping; a flat section (high = low) becomes all 0. */
export function applyMapping(data: StackData, m: IntensityMapping): Float32Array {
  const out = new Float32Array(data.length);
  const span = m.high - m.low;
  if (!(span > 0)) return out;
  for (let i = 0; i < data.length; i++) {
    const v = (data[i]! - m.low) / span;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

/** One section's pixels as network input: statistics, mapping and application in one call. */
export function normaliseSection(spec: IntensitySpec, data: StackData, at: SectionOrigin): Float32Array {
  return applyMapping(data, sectionMapping(spec, data, at));
}

/** A per-section normaliser for a rule, e.g. for DatasetOptions.toFloat or a prediction loop. */
export function sectionNormaliser(spec: IntensitySpec): (s: SectionOrigin & { data: StackData }) => Float32Array {
  return (s) => normaliseSection(spec, s.data, s);
}

/** Refuses a non-finite value in a computed map (NaN weights, overflow) before it can be written. */
export function checkFinite(data: ArrayLike<number>, path: string, what: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new EmsegError('non-finite', path, `${what} holds ${data[i]} at pixel ${i}; nothing was written (are the model's weights finite?)`);
    }
  }
}
