/**
 * A volume's physical voxel size, as its file records it: OME-Zarr scales and axis units, HDF5 `resolution` (CREMI,
 * nanometer) or `element_size_um` (ilastik, Fiji), TIFF resolution tags with ImageJ's `unit=` and `spacing=`. Units are
 * NGFF's names (UDUNITS-2: 'nanometer', 'micrometer', ...), whatever spelling the file used. A file that says nothing
 * gives no voxel size: emseg never guesses one, and writes what it read (or the user's --voxel-size / --unit) to
 * every output that can hold it.
 */
import { EmsegError } from '../errors.js';

/** z, y, x (the same order as Vec3 in formats/volume.ts; repeated here so the two modules need not import each other). */
type Size3 = readonly [number, number, number];

export interface VoxelSize {
  /** z, y, x: positive, finite, in `unit`. */
  size: Size3;
  /** An NGFF length unit ('nanometer', 'micrometer', ...); absent when the file gives relative sizes only. */
  unit?: string;
}

/** NGFF 0.4's length units (UDUNITS-2 names) in meters. */
const METERS: Readonly<Record<string, number>> = {
  yoctometer: 1e-24, zeptometer: 1e-21, attometer: 1e-18, femtometer: 1e-15, picometer: 1e-12, angstrom: 1e-10,
  nanometer: 1e-9, micrometer: 1e-6, millimeter: 1e-3, centimeter: 1e-2, decimeter: 1e-1, meter: 1, hectometer: 1e2,
  kilometer: 1e3, megameter: 1e6, gigameter: 1e9, terameter: 1e12, petameter: 1e15, exameter: 1e18, zettameter: 1e21,
  yottameter: 1e24, inch: 0.0254, foot: 0.3048, yard: 0.9144, mile: 1609.344, parsec: 3.085677581491367e16,
};

/** Other spellings files use (ImageJ's 'micron' and 'um', symbols), to NGFF names. */
const ALIASES: Readonly<Record<string, string>> = {
  'å': 'angstrom', 'Å': 'angstrom', a: 'angstrom', pm: 'picometer', nm: 'nanometer', um: 'micrometer', 'µm': 'micrometer',
  'μm': 'micrometer', micron: 'micrometer', microns: 'micrometer', mm: 'millimeter', cm: 'centimeter', dm: 'decimeter',
  m: 'meter', km: 'kilometer', in: 'inch', inches: 'inch', ft: 'foot', feet: 'foot',
};

/** The units --unit accepts, for messages. */
export const LENGTH_UNITS: readonly string[] = Object.keys(METERS);

/** ImageJ's own names for the units it converts between; other units are written as their NGFF names. */
const IMAGEJ_UNITS: Readonly<Record<string, string>> = { nanometer: 'nm', micrometer: 'micron', millimeter: 'mm', centimeter: 'cm', meter: 'm', inch: 'inch' };

/** Significant digits kept when a size is computed (1 / a TIFF resolution, a unit conversion): ample, and no 3.0000000000000004. */
const SIGNIFICANT_DIGITS = 12;

const tidy = (v: number) => Number(v.toPrecision(SIGNIFICANT_DIGITS));

/** The NGFF name of a length unit in any spelling emseg knows, or undefined ('pixel', '', unknown words). */
export function normalizeUnit(text: string | undefined): string | undefined {
  if (typeof text !== 'string') return undefined; // metadata is another writer's JSON: a unit may be anything
  const t = text.trim();
  const lower = t.toLowerCase();
  if (METERS[lower] !== undefined) return lower;
  const plural = lower.endsWith('s') ? lower.slice(0, -1) : lower; // 'nanometers', 'micrometres' below
  if (METERS[plural] !== undefined) return plural;
  const british = plural.replace(/metre$/, 'meter');
  if (METERS[british] !== undefined) return british;
  return ALIASES[t] ?? ALIASES[lower];
}

function checkSize(size: readonly number[]): boolean {
  return size.length === 3 && size.every((v) => Number.isFinite(v) && v > 0);
}

/** `size` (z, y, x) converted from unit `from` to unit `to` (both NGFF names). */
function convert(size: Size3, from: string, to: string): Size3 {
  const f = METERS[from]! / METERS[to]!;
  return size.map((v) => tidy(v * f)) as unknown as Size3;
}

/** The sizes in `unit`; undefined when the file gave relative sizes without a unit (nothing to convert). */
export function voxelSizeIn(v: VoxelSize, unit: string): Size3 | undefined {
  return v.unit ? convert(v.size, v.unit, unit) : undefined;
}

/**
 * The voxel size of per-axis sizes and units (NGFF axes may name one unit each): axes in different units are
 * converted to the finest of them. Undefined when a size is not a positive number, when a unit is not a length
 * emseg knows, or when some axes have a unit and others none (nothing relates them); all sizes 1 without a unit
 * is what NGFF writers put when they know nothing, and also gives undefined.
 */
export function voxelSizeOf(size: readonly number[], units: readonly (string | undefined)[]): VoxelSize | undefined {
  if (!checkSize(size)) return undefined;
  const none = (u: unknown) => u === undefined || u === null || u === '';
  const named = units.map((u) => (none(u) ? undefined : normalizeUnit(u)));
  if (units.every(none)) {
    return size.every((v) => v === 1) ? undefined : { size: size as unknown as Size3 };
  }
  if (named.some((u) => u === undefined)) return undefined;
  const finest = named.reduce((a, b) => (METERS[b!]! < METERS[a!]! ? b : a))!;
  const out = size.map((v, a) => (named[a] === finest ? v : convert([v, v, v], named[a]!, finest)[0])) as unknown as Size3;
  return { size: out, unit: finest };
}

export function formatVoxelSize(v: VoxelSize | undefined): string {
  if (!v) return 'none';
  return `${v.size.join(' x ')}${v.unit ? ` ${v.unit}` : ' (no unit)'} (z, y, x)`;
}

const sameSize = (a: Size3, b: Size3) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-9 * Math.max(Math.abs(v), Math.abs(b[i]!)));

export function sameVoxelSize(a: VoxelSize | undefined, b: VoxelSize | undefined): boolean {
  if (!a || !b) return a === b;
  return a.unit === b.unit && sameSize(a.size, b.size);
}

/** The user's --voxel-size and --unit (either may be absent). */
export interface VoxelSizeFlags {
  voxelSize?: Size3;
  unit?: string;
}

/** Refuses a --voxel-size that is not three positive numbers and a --unit that is not a length emseg knows. */
export function checkVoxelSizeFlags(flags: VoxelSizeFlags): VoxelSizeFlags {
  if (flags.voxelSize !== undefined && !checkSize(flags.voxelSize)) {
    throw new EmsegError('invalid-option', '--voxel-size', `expected three positive numbers z,y,x, got ${JSON.stringify(flags.voxelSize)}`);
  }
  if (flags.unit === undefined) return flags;
  const unit = normalizeUnit(flags.unit);
  if (!unit) throw new EmsegError('invalid-option', '--unit', `"${flags.unit}" is not a length unit emseg knows; use an NGFF name (${LENGTH_UNITS.join(', ')}) or nm, um, mm`);
  return { ...flags, unit };
}

/**
 * The voxel size an output records: the file's, with what the user gave over it. --voxel-size replaces the sizes
 * (keeping the file's unit unless --unit is given too); --unit alone converts the file's sizes into that unit, or names
 * the unit of sizes the file gave without one. `notice` is told when the result differs from what the file says.
 */
export function chooseVoxelSize(file: VoxelSize | undefined, given: VoxelSizeFlags, source: string,
  notice?: (line: string) => void): VoxelSize | undefined {
  const flags = checkVoxelSizeFlags(given);
  let chosen = file;
  if (flags.voxelSize) {
    chosen = { size: flags.voxelSize, ...(flags.unit ?? file?.unit ? { unit: flags.unit ?? file?.unit } : {}) };
  } else if (flags.unit) {
    if (!file) {
      throw new EmsegError('invalid-option', '--unit', `${source} records no voxel size, so there is nothing to give a unit to; give --voxel-size z,y,x as well`);
    }
    chosen = { size: file.unit ? convert(file.size, file.unit, flags.unit) : file.size, unit: flags.unit };
  }
  if (file && !sameVoxelSize(chosen, file)) {
    notice?.(`voxel size ${formatVoxelSize(chosen)} (--voxel-size/--unit), not the ${formatVoxelSize(file)} that ${source} records`);
  }
  return chosen;
}

/* ---- TIFF ---- */

/** TIFF ResolutionUnit values. */
const RESOLUTION_NONE = 1;
const RESOLUTION_INCH = 2;
const RESOLUTION_CENTIMETER = 3;

/** What a TIFF's first page says about its pixel size. */
export interface TiffResolutionTags {
  /** Pixels per resolution unit (XResolution, YResolution), as numbers. */
  xResolution?: number;
  yResolution?: number;
  resolutionUnit?: number;
  description?: string;
}

/** ImageJ's description ("ImageJ=1.x\nunit=micron\nspacing=0.05\n..."): its key=value lines, or undefined for other text. */
export function imagejProperties(description: string | undefined): Map<string, string> | undefined {
  if (description === undefined || !description.startsWith('ImageJ=')) return undefined;
  const props = new Map<string, string>();
  for (const line of description.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) props.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return props;
}

const positive = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v > 0;

/**
 * A TIFF's voxel size. ImageJ (description "ImageJ=...") stores 1 / the pixel size in XResolution and YResolution
 * with its unit in `unit=` (ResolutionUnit 'none') and the section distance in `spacing=` (1 when absent, ImageJ's own
 * default). Other TIFFs: resolution tags in pixels per centimeter. Pixels per inch (ResolutionUnit 2, also the TIFF
 * default when the tag is absent) are a print resolution that drawing programs write (72 dpi), not a pixel's size
 * in the sample, and give none; so do 'none' without ImageJ's unit and ImageJ's 'pixel'. z is 1 in the unit then,
 * as ImageJ takes it: --voxel-size gives the real section distance.
 */
export function tiffVoxelSize(tags: TiffResolutionTags): VoxelSize | undefined {
  if (!positive(tags.xResolution) || !positive(tags.yResolution)) return undefined;
  const xy: [number, number] = [tidy(1 / tags.yResolution), tidy(1 / tags.xResolution)];
  const ij = imagejProperties(tags.description);
  const spacing = Number(ij?.get('spacing'));
  const z = positive(Math.abs(spacing)) ? Math.abs(spacing) : 1;
  const resolutionUnit = tags.resolutionUnit ?? RESOLUTION_INCH;
  if (ij) {
    // ImageJ takes its unit from the description alone; without one (or 'pixel') the image is uncalibrated.
    const text = ij.get('unit');
    const unit = normalizeUnit(text?.replace(/\\u00B5/i, 'µ'));
    if (!unit) return undefined;
    // ImageJ's one conversion: resolution tags in centimeters with unit=um are scaled to micrometers on reading.
    const scale = resolutionUnit === RESOLUTION_CENTIMETER && text === 'um' ? 1e4 : 1;
    return { size: [z, tidy(xy[0] * scale), tidy(xy[1] * scale)], unit };
  }
  if (resolutionUnit !== RESOLUTION_CENTIMETER) return undefined;
  return { size: [1, tidy(xy[0] * 1e4), tidy(xy[1] * 1e4)], unit: 'micrometer' };
}

/** A TIFF RATIONAL (numerator, denominator), both unsigned 32-bit. */
export type Rational = readonly [number, number];

/** The resolution tags a TIFF output carries: 1 / the pixel size in the unit of the ImageJ description, ResolutionUnit none. */
export interface TiffResolution {
  x: Rational;
  y: Rational;
  unit: number;
}

const UINT32_MAX = 2 ** 32 - 1;
/** Relative error at which a continued fraction is close enough (well below SIGNIFICANT_DIGITS). */
const RATIONAL_TOLERANCE = 1e-14;

/**
 * `x` as the fraction p / q of the smallest terms (a continued fraction) that equals it to RATIONAL_TOLERANCE, both
 * unsigned 32-bit: 1 / 4 nm is 1/4, 1 / (1/3 nm) is 3/1, 1 / 0.0037 um is 10000/37, so reading back gives the size.
 */
function rationalOf(x: number): Rational {
  let [p0, p1, q0, q1] = [0, 1, 1, 0];
  let v = x;
  for (;;) {
    const a = Math.floor(v);
    const [p2, q2] = [a * p1 + p0, a * q1 + q0];
    if (p2 > UINT32_MAX || q2 > UINT32_MAX) break;
    [p0, p1, q0, q1] = [p1, p2, q1, q2];
    if (Math.abs(p1 / q1 - x) <= RATIONAL_TOLERANCE * x || v === a) break;
    v = 1 / (v - a);
  }
  // Beyond what 32 bits hold (pixels of more than 4e9 units, or less than 1 / 4e9): the nearest that fits.
  return q1 === 0 ? [UINT32_MAX, 1] : p1 === 0 ? [1, UINT32_MAX] : [p1, q1];
}

export function tiffResolution(v: VoxelSize): TiffResolution {
  return { x: rationalOf(1 / v.size[2]), y: rationalOf(1 / v.size[1]), unit: RESOLUTION_NONE };
}

/**
 * The first page's ImageDescription of a TIFF output with a voxel size: ImageJ's properties (unit, spacing), so
 * Fiji opens the stack calibrated, and emseg's own record (`emseg` key, JSON; see descriptionAttributes) after them.
 * No `images=` line: ImageJ would then read the pages as one contiguous block, which emseg's layout is not.
 */
export function imagejDescription(v: VoxelSize, emseg?: unknown): string {
  const unit = v.unit ? IMAGEJ_UNITS[v.unit] ?? v.unit : 'pixel';
  const lines = ['ImageJ=1.11a', `unit=${unit}`, `spacing=${v.size[0]}`];
  if (emseg !== undefined) lines.push(`emseg=${JSON.stringify(emseg)}`);
  return `${lines.join('\n')}\n`;
}
