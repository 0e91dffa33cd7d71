/**
 * Which watershed options `emseg predict --close-gaps` uses. Gap closing is tuned per model (its best setting
 * depends on how sharp and how calibrated the model's maps are: docs/MODELS.md), so a model directory may carry
 * the setting it was tuned with, in meta.json under "close_gaps". Options the user gives win; the rest come from
 * that record, and what neither gives from the defaults (DEFAULT_SEGMENT_OPTIONS).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { EmsegError } from '../errors.js';
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
  const record = models.length === 1 ? modelRecord(models[0]!) : null;
  const options: SegmentOptions = { ...DEFAULT_SEGMENT_OPTIONS, ...(record ?? {}), ...given };
  const used = record !== null && Object.keys(record).some((k) => !(k in given));
  return { options, from: used ? models[0]! : null };
}

function modelRecord(dir: string): Partial<SegmentOptions> | null {
  const value = readModelMeta(dir)[CLOSE_GAPS_META_KEY];
  if (value === undefined) return null;
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new EmsegError('corrupt', join(dir, META_FILE), `"${CLOSE_GAPS_META_KEY}.${issue.path.join('.')}": ${issue.message}`);
  }
  return parsed.data;
}

/**
 * One line for the user: the options gap closing runs with, taken (in part) from model directory `from`; `tail`
 * ends the parenthesis (what else the user should know, e.g. that flags override).
 */
export function describeCloseGaps(o: SegmentOptions, from: string, tail = 'flags override'): string {
  return `closing gaps with sigma ${o.sigma}, seed threshold ${o.seedThreshold}, min seed area ${o.minSeedArea}, ` +
    `merge threshold ${o.mergeThreshold}, extra seeds ${o.extraSeedThreshold ?? DEFAULT_SEGMENT_OPTIONS.extraSeedThreshold} ` +
    `(tuned for ${from}, meta.json "${CLOSE_GAPS_META_KEY}"; ${tail})`;
}
