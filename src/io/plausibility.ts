/**
 * Checks for inputs that decode fine but are almost certainly the wrong thing, which would otherwise give
 * meaningless results with exit status 0: labels read with the wrong polarity, and a raw EM image given where a
 * membrane map is expected. Each refuses with the measured number and the flag that fixes or overrides it; where
 * the user stated the reading explicitly, the labels check only warns (nothing is guessed silently, and an
 * explicit choice is the user's).
 */
import { EmsegIoError } from './errors.js';
import { fullScale, sampleTypeOf, type StackData } from '../image/stack.js';
import { MULTI_CHANNEL_KIND } from '../image/map-meaning.js';
import type { LabelPolarity as Polarity } from './label-polarity.js';
import type { Region, VolumeReader } from './formats/volume.js';

/**
 * Membrane is the minority class of EM labels (ISBI 2012: 17-27 % of each section's pixels), so labels that read
 * as more membrane than this are read inside out.
 */
export const MAX_MEMBRANE_FRACTION = 0.5;

const INVERSE: Record<Polarity, Polarity> = {
  'membrane-0-interior-255': 'membrane-255-interior-0',
  'membrane-255-interior-0': 'membrane-0-interior-255',
  'membrane-1-interior-0': 'membrane-0-interior-1',
  'membrane-0-interior-1': 'membrane-1-interior-0',
  'membrane-0-interior-max': 'membrane-max-interior-0',
  'membrane-max-interior-0': 'membrane-0-interior-max',
};

/** Membrane pixels of a label stack, counted mask by mask (1 = membrane), judged once the stack is read. */
export class MembraneCount {
  private membrane = 0;
  private total = 0;

  add(mask: Uint8Array): void {
    let m = 0;
    for (let i = 0; i < mask.length; i++) m += mask[i]!;
    this.membrane += m;
    this.total += mask.length;
  }

  /** Counts made elsewhere (masks with pixels of no class, which `add` would count as membrane). */
  addCounts(membrane: number, total: number): void {
    this.membrane += membrane;
    this.total += total;
  }

  get fraction(): number {
    return this.total === 0 ? 0 : this.membrane / this.total;
  }

  /**
   * Labels that read as mostly membrane: refused (code 'polarity') when the polarity was the default, a warning
   * through `notice` when the user gave it (`given`). `where` names the labels (file or first .. last).
   */
  check(polarity: Polarity, given: boolean, where: string, notice?: (line: string) => void): void {
    const f = this.fraction;
    if (f <= MAX_MEMBRANE_FRACTION) return;
    const pct = `${(100 * f).toFixed(1)} %`;
    const read = `read with polarity ${polarity}, ${pct} of the label pixels are membrane, but membrane is the minority in EM labels `
      + '(ISBI 2012: 17-27 %)';
    if (given) {
      notice?.(`warning: ${where}: ${read}; check that --polarity ${polarity} is right (--polarity ${INVERSE[polarity]} reads them the other way round)`);
      return;
    }
    throw new EmsegIoError('polarity', where, `${read}, so they look inverted: pass --polarity ${INVERSE[polarity]} (polarity option), `
      + `or --polarity ${polarity} to keep this reading`);
  }
}

/** Values of a membrane map, as a fraction of the full range, in this band are neither clearly membrane nor interior. */
export const MAP_MIDDLE_BAND: readonly [number, number] = [0.2, 0.8];
/**
 * Above this fraction of values in the middle band, a "map" is taken for a raw image. Measured fractions
 * (whole stacks, per-section range in brackets):
 * - raw EM: samples/isbi2012/images 0.917 (0.916-0.917); ISBI train 00-24 0.933 (0.862-0.965); ISBI test 00-29
 *   0.917 (0.843-0.960); test/fixtures/isbi-metrics/raw.tif 0.925;
 * - maps: shipped model emseg-isbi on the samples 0.130, on ISBI test 0.150 (0.128-0.184; the same as 8-bit PNGs);
 *   model fakhry-isbi on ISBI test 0.198 (0.158-0.239); the blurred and noisy test fixtures 0.230 and 0.277;
 * - untrained (random-weight) models give grey maps, 0.99-1.0: they are refused too and need the override.
 */
export const RAW_IMAGE_MIDDLE_FRACTION = 0.6;
/** Sections a volume or stack is sampled at, evenly spaced, and the largest window read from each (y and x). */
export const MAP_SAMPLE_SECTIONS = 8;
export const MAP_SAMPLE_EDGE = 1024;

/** The share of values in the middle band, over everything added (one pass, no copy). */
export class ValueSpread {
  private middle = 0;
  private total = 0;

  /** `data` in its own sample type; `scale` is its full range (255 for uint8 maps, 1 for float maps). */
  add(data: StackData, scale = fullScale(sampleTypeOf(data))): void {
    const lo = MAP_MIDDLE_BAND[0] * scale;
    const hi = MAP_MIDDLE_BAND[1] * scale;
    let m = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v >= lo && v <= hi) m++;
    }
    this.middle += m;
    this.total += data.length;
  }

  get fraction(): number {
    return this.total === 0 ? 0 : this.middle / this.total;
  }

  /** Refuses (code 'not-a-map') values spread like a raw image's; `path` is the --pred input. */
  check(path: string): void {
    const f = this.fraction;
    if (f <= RAW_IMAGE_MIDDLE_FRACTION) return;
    throw new EmsegIoError('not-a-map', path, `looks like a raw image, not a membrane map: ${(100 * f).toFixed(1)} % of its values lie in the `
      + `middle ${MAP_MIDDLE_BAND[0]}-${MAP_MIDDLE_BAND[1]} of the range, where a probability map has few (maps of trained models: under 30 %). `
      + 'Give the map emseg predict wrote; if this is a map (an untrained model\'s, say), pass --pred-is-map (predIsMap option)');
  }
}

/**
 * Whether metadata says emseg wrote these values as a membrane map, or a multi-channel map (a fact, not a guess: no
 * need to sample; image/map-meaning.ts decides what either means, and refuses a multi-channel one where one
 * membrane map is needed).
 */
export function recordedAsMap(attributes: Record<string, unknown>): boolean {
  const emseg = attributes.emseg as { kind?: unknown; close_gaps?: unknown } | undefined;
  return emseg?.kind === 'membrane' || emseg?.kind === MULTI_CHANNEL_KIND || emseg?.close_gaps !== undefined;
}

/**
 * The spread a --pred volume is judged by, whatever the output: a PNG/TIFF stack's first MAP_SAMPLE_SECTIONS sections
 * whole (as emseg segment judged stacks before it read them as volumes), any other volume's windows
 * (volumeSpread, as blockwise segmentation judges it).
 */
export async function mapSpread(reader: VolumeReader): Promise<ValueSpread> {
  if (reader.format !== 'stack') return volumeSpread(reader);
  const [d, h, w] = reader.shape;
  const spread = new ValueSpread();
  for (let z = 0; z < Math.min(d, MAP_SAMPLE_SECTIONS); z++) spread.add(await reader.readRegion({ start: [z, 0, 0], end: [z + 1, h, w] }));
  return spread;
}

/**
 * Value spread of a volume, from MAP_SAMPLE_SECTIONS evenly spaced sections, each read over a centred window of at
 * most MAP_SAMPLE_EDGE squared: memory is bounded by that window, not by the volume. uint8 maps span 0..255, float
 * maps 0..1.
 */
export async function volumeSpread(reader: VolumeReader): Promise<ValueSpread> {
  const [d, h, w] = reader.shape;
  const scale = fullScale(reader.dtype);
  const spread = new ValueSpread();
  const count = Math.min(d, MAP_SAMPLE_SECTIONS);
  const [wh, ww] = [Math.min(h, MAP_SAMPLE_EDGE), Math.min(w, MAP_SAMPLE_EDGE)];
  const [y0, x0] = [Math.floor((h - wh) / 2), Math.floor((w - ww) / 2)];
  for (let k = 0; k < count; k++) {
    const z = Math.floor(((k + 0.5) * d) / count);
    const region: Region = { start: [z, y0, x0], end: [z + 1, y0 + wh, x0 + ww] };
    spread.add(await reader.readRegion(region), scale);
  }
  return spread;
}
