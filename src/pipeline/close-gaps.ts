/**
 * Which watershed options `emseg predict --close-gaps` uses. Gap closing is tuned per model (its best setting
 * depends on how sharp and how calibrated the model's maps are: docs/MODELS.md), so a model directory may carry
 * the setting it was tuned with, in meta.json under "close_gaps". Options the user gives win; the rest come from
 * that record, and what neither gives from the defaults (DEFAULT_SEGMENT_OPTIONS).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { EmsegError } from '../errors.js';
import { meaningRecord, type MapPolarity } from '../image/map-meaning.js';
import { CLOSE_GAPS_META_KEY, META_FILE, readModelMeta } from '../models/model-dir.js';
import { DEFAULT_SEGMENT_OPTIONS, type SegmentOptions } from '../segment/index.js';

export { CLOSE_GAPS_META_KEY };

const probability = z.number().min(0).max(1);
const recordSchema = z.object({
  sigma: z.number().nonnegative(), seedThreshold: probability, minSeedArea: z.number().int().positive(),
  mergeThreshold: probability, extraSeedThreshold: probability,
}).partial().strict();

export interface CloseGapsChoice {
  options: SegmentOptions;
  /** The model directory whose record supplied options (null: none did). */
  from: string | null;
}

/**
 * The options for `models` (one directory, plain or ensemble, can carry a record; an ad-hoc ensemble of several
 * directories uses the defaults) with `given` (the options the user set) on top.
 */
export function closeGapsOptions(models: readonly string[], given: Partial<SegmentOptions>): CloseGapsChoice {
  const { options, used } = overRecord(models.length === 1 ? modelRecord(models[0]!) : null, given);
  return { options, from: used ? models[0]! : null };
}

/** Options with `used`: whether a record supplied any of them. */
interface LayeredOptions { options: SegmentOptions; used: boolean }

/** `given` over `record` over the defaults. */
function overRecord(record: Partial<SegmentOptions> | null, given: Partial<SegmentOptions>): LayeredOptions {
  const options: SegmentOptions = { ...DEFAULT_SEGMENT_OPTIONS, ...(record ?? {}), ...given };
  return { options, used: record !== null && Object.keys(record).some((k) => !(k in given)) };
}

function modelRecord(dir: string): Partial<SegmentOptions> | null {
  const value = readModelMeta(dir)[CLOSE_GAPS_META_KEY];
  return value === undefined ? null : parseCloseGapsRecord(value, join(dir, META_FILE));
}

/** A `close_gaps` record (a model's meta.json, or a map volume's metadata), refused as corrupt naming `file`. */
export function parseCloseGapsRecord(value: unknown, file: string): Partial<SegmentOptions> {
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new EmsegError('corrupt', file, `"${CLOSE_GAPS_META_KEY}.${issue.path.join('.')}": ${issue.message}`);
  }
  return parsed.data;
}

/**
 * One line for the user: the options gap closing runs with, taken (in part) from model directory `from`; `tail`
 * ends the parenthesis (what else the user should know, e.g. that flags override).
 */
export function describeCloseGaps(o: SegmentOptions, from: string, tail = 'flags override'): string {
  return `closing gaps with ${formatSegmentOptions(o)} (tuned for ${from}, meta.json "${CLOSE_GAPS_META_KEY}"; ${tail})`;
}

/** The watershed options in words, for notices. */
export function formatSegmentOptions(o: SegmentOptions): string {
  return `sigma ${o.sigma}, seed threshold ${o.seedThreshold}, min seed area ${o.minSeedArea}, ` +
    `merge threshold ${o.mergeThreshold}, extra seeds ${o.extraSeedThreshold ?? DEFAULT_SEGMENT_OPTIONS.extraSeedThreshold}`;
}

/**
 * What emseg predict records in the maps it writes (a volume's `.zattrs` "emseg", a TIFF's ImageDescription): the
 * model's tuned gap-closing options, so that `emseg segment` on the maps uses them; {} when the models carry none.
 */
export function mapsRecord(models: readonly string[]): Record<string, unknown> {
  const { options, from } = closeGapsOptions(models, {});
  return from === null ? {} : { [CLOSE_GAPS_META_KEY]: options };
}

/**
 * The options for segmenting maps: `given` (the user's) over the record emseg predict left in the maps' metadata
 * (`attributes.emseg`, see mapsRecord; a damaged one is refused naming `file`), over the defaults. When the record
 * supplied any, `notice` is told which options are used and that they come from `maps`.
 */
export function mapSegmentOptions(attributes: Record<string, unknown>, file: string, given: Partial<SegmentOptions>,
  notice?: (line: string) => void, maps = file): SegmentOptions {
  const value = (attributes.emseg as Record<string, unknown> | undefined)?.[CLOSE_GAPS_META_KEY];
  const { options, used } = overRecord(value === undefined ? null : parseCloseGapsRecord(value, file), given);
  if (used) {
    notice?.(`segmenting with ${formatSegmentOptions(options)} (the model's tuned "${CLOSE_GAPS_META_KEY}", recorded in ` +
      `${maps} by emseg predict; flags override)`);
  }
  return options;
}

/**
 * The ImageDescription of the TIFF maps emseg predict writes: {"emseg": {kind, polarity, ...mapsRecord(models)}}
 * (image/map-meaning.ts meaningRecord), so that what the values mean travels with them (emseg segment reads it,
 * never guesses it: decideMapPolarity).
 */
export function mapsDescription(models: readonly string[], polarity: MapPolarity): string {
  return JSON.stringify({ emseg: { ...meaningRecord('membrane', polarity), ...mapsRecord(models) } });
}
