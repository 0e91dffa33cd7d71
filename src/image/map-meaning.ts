/**
 * What a map's values mean: the one place that says it. Inside emseg a membrane map is P(membrane) (1 = membrane);
 * the other polarity, the ISBI 2012 convention (0 = membrane), exists only at the edges: a map is converted to
 * P(membrane) when it is read (toMembrane) and from it when it is written (fromMembrane), and the metrics, which
 * score ISBI proposals (P(non-membrane)), are handed fromMembrane(p, ISBI_POLARITY).
 *
 * A map's meaning is decided once, when it is read (decideMapPolarity): the user's flag (`--membrane-prob`), else
 * the record emseg wrote with the map (`{"emseg": {"kind": "membrane", "polarity": ...}}` in a TIFF's
 * ImageDescription or a volume's `.zattrs`: meaningRecord), else the ISBI convention.
 *
 * Multi-channel maps (affinities next) have a channel axis `c` and record each channel's meaning, channel i being
 * index i on that axis: `{"emseg": {"kind": "maps", "axis": "c", "channels": [{"kind": "membrane", "polarity":
 * "membrane-high"}, {"kind": "affinity", "offset": [-1, 0, 0]}]}}` (multiChannelRecord). Where a single-channel
 * membrane map is needed, such a map is refused naming its file.
 *
 * Label images are not maps: their encoding is io/label-polarity.ts's LabelPolarity.
 */
import { z } from 'zod';
import { EmsegError } from '../errors.js';

/**
 * What a membrane map's values mean: 'membrane-high' = P(membrane) (1, or 255 in uint8, is membrane);
 * 'membrane-low' = the ISBI 2012 convention (0 is membrane, 1/255 is cell interior).
 */
export type MapPolarity = 'membrane-high' | 'membrane-low';
export const MAP_POLARITIES = ['membrane-high', 'membrane-low'] as const satisfies readonly MapPolarity[];

/** The ISBI 2012 convention: maps that record nothing and no flag describes, ISBI submissions, the metrics' proposals. */
export const ISBI_POLARITY: MapPolarity = 'membrane-low';
/** A map inside emseg: P(membrane). */
export const MEMBRANE_POLARITY: MapPolarity = 'membrane-high';

/** The --membrane-prob flag (or a job's `membraneProb`) as a polarity; undefined when it was not given. */
export function flagPolarity(membraneProb: boolean): MapPolarity;
export function flagPolarity(membraneProb: boolean | undefined): MapPolarity | undefined;
export function flagPolarity(membraneProb: boolean | undefined): MapPolarity | undefined {
  return membraneProb === undefined ? undefined : membraneProb ? MEMBRANE_POLARITY : ISBI_POLARITY;
}

/**
 * The names writeIsbiSubmission took before MapPolarity (kept for the library API): 'membrane-probability' =
 * membrane-high, 'non-membrane-probability' = membrane-low.
 * @deprecated use MapPolarity
 */
export type ProbabilityMeaning = 'membrane-probability' | 'non-membrane-probability';

/** A MapPolarity, or its older ProbabilityMeaning name, as a MapPolarity (anything else reads as membrane-low, as before). */
export function polarityOf(meaning: MapPolarity | ProbabilityMeaning): MapPolarity {
  return meaning === 'membrane-high' || meaning === 'membrane-probability' ? MEMBRANE_POLARITY : ISBI_POLARITY;
}

/** A map value in [0, 1] of polarity `from` as a map of polarity `to` holds it. */
export function convertValue(v: number, from: MapPolarity, to: MapPolarity): number {
  return from === to ? v : 1 - v;
}

/** A map value in [0, 1] of `polarity` as P(membrane) (reading). */
export function toMembrane(v: number, polarity: MapPolarity): number {
  return convertValue(v, polarity, MEMBRANE_POLARITY);
}

/** P(membrane) as a map value of `polarity` (writing). */
export function fromMembrane(p: number, polarity: MapPolarity): number {
  return convertValue(p, MEMBRANE_POLARITY, polarity);
}

/** Converts a float map buffer (values in [0, 1]) from `from` to `to` in place; returns it. */
export function convertInPlace(data: Float32Array, from: MapPolarity, to: MapPolarity): Float32Array {
  if (from !== to) for (let i = 0; i < data.length; i++) data[i] = 1 - data[i]!;
  return data;
}

/** A float map buffer of `polarity` as P(membrane), in place (reading). */
export function toMembraneInPlace(data: Float32Array, polarity: MapPolarity): Float32Array {
  return convertInPlace(data, polarity, MEMBRANE_POLARITY);
}

/** A P(membrane) buffer as `polarity`, in place (writing). */
export function fromMembraneInPlace(data: Float32Array, polarity: MapPolarity): Float32Array {
  return convertInPlace(data, MEMBRANE_POLARITY, polarity);
}

/** A copy of a float map buffer of `polarity` as P(membrane); `data` is left as it is. */
export function toMembraneCopy(data: Float32Array, polarity: MapPolarity): Float32Array {
  return toMembraneInPlace(data.slice(), polarity);
}

/** A copy of a P(membrane) buffer as `polarity`; `data` is left as it is. */
export function fromMembraneCopy(data: Float32Array, polarity: MapPolarity): Float32Array {
  return fromMembraneInPlace(data.slice(), polarity);
}

// ---- The record of a map's meaning ----

/** The first keys of the "emseg" record of an image emseg writes: its kind and, for a membrane map, its polarity. */
export interface MeaningRecord {
  kind: string;
  polarity?: MapPolarity;
}

/**
 * The record of what an image's values mean, as emseg writes it first under "emseg" (a TIFF map's ImageDescription,
 * an OME-Zarr image's .zattrs): `{kind, polarity}` for a membrane map, `{kind}` without a polarity.
 */
export function meaningRecord(kind: string, polarity?: MapPolarity): MeaningRecord {
  return { kind, ...(polarity ? { polarity } : {}) };
}

/** The axis along which a multi-channel map holds its channels. */
export const CHANNEL_AXIS = 'c';
/** The "emseg" kind of a map with a channel axis. */
export const MULTI_CHANNEL_KIND = 'maps';

/**
 * What one channel of a multi-channel map holds: a membrane map of a polarity, or affinities, the probability
 * that each voxel and its neighbour at `offset` (z, y, x; e.g. [-1, 0, 0] = the voxel below in z) are in one cell.
 */
export type ChannelMeaning =
  | { kind: 'membrane'; polarity: MapPolarity; name?: string }
  | { kind: 'affinity'; offset: [number, number, number]; name?: string };

/** The record of a map with a channel axis `c`: channel i (index i on the axis) means channels[i]. */
export interface MultiChannelRecord {
  kind: typeof MULTI_CHANNEL_KIND;
  axis: typeof CHANNEL_AXIS;
  channels: ChannelMeaning[];
}

/** The record a multi-channel map carries under "emseg" (before any other keys). */
export function multiChannelRecord(channels: readonly ChannelMeaning[]): MultiChannelRecord {
  return { kind: MULTI_CHANNEL_KIND, axis: CHANNEL_AXIS, channels: [...channels] };
}

const channelSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('membrane'), polarity: z.enum(MAP_POLARITIES), name: z.string().optional() }).strict(),
  z.object({ kind: z.literal('affinity'), offset: z.tuple([z.number().int(), z.number().int(), z.number().int()]), name: z.string().optional() }).strict(),
]);
const multiChannelSchema = z.object({
  kind: z.literal(MULTI_CHANNEL_KIND), axis: z.literal(CHANNEL_AXIS), channels: z.array(channelSchema).min(1),
}).passthrough();

/** What a map's record says: one membrane channel (its polarity, if recorded), or channels along axis `c`. */
export type MapRecord =
  | { channels: 'single'; polarity: MapPolarity | undefined }
  | { channels: 'multi'; meanings: ChannelMeaning[] };

/**
 * The record in a map's metadata (`attributes`: a volume's attributes, or descriptionAttributes of a TIFF). A
 * single-channel record is read as it always was: `emseg.polarity` when it is one of MAP_POLARITIES, else none (no
 * record, another program's, or a value emseg does not write). A multi-channel one (`emseg.kind` "maps") must be
 * whole: a damaged one is refused as corrupt naming `file` and the field.
 */
export function parseMapRecord(attributes: Record<string, unknown>, file: string): MapRecord {
  const emseg = attributes.emseg;
  if (emseg === null || typeof emseg !== 'object') return { channels: 'single', polarity: undefined };
  const record = emseg as { kind?: unknown; polarity?: unknown };
  if (record.kind === MULTI_CHANNEL_KIND) {
    const parsed = multiChannelSchema.safeParse(record);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new EmsegError('corrupt', file, `"emseg.${issue.path.join('.')}": ${issue.message} (a multi-channel map's record)`);
    }
    return { channels: 'multi', meanings: parsed.data.channels };
  }
  const polarity = (MAP_POLARITIES as readonly unknown[]).includes(record.polarity) ? record.polarity as MapPolarity : undefined;
  return { channels: 'single', polarity };
}

/** One channel in words, for messages. */
function describeChannel(c: ChannelMeaning): string {
  const what = c.kind === 'membrane' ? `membrane (${c.polarity})` : `affinity [${c.offset.join(',')}]`;
  return c.name === undefined ? what : `${c.name}: ${what}`;
}

/** How a map's meaning is decided besides its record. */
export interface MapMeaningChoice {
  /** What the user said (a flag, a job field): wins over the record. */
  given?: MapPolarity;
  /** What a map without a record is read as when nothing is given (default: the ISBI polarity). */
  unrecorded?: MapPolarity;
}

/**
 * The one decision of what a single-channel membrane map's values mean, made when it is read: `choice.given`,
 * else the map's record (parseMapRecord of `attributes`), else `choice.unrecorded`, else the ISBI polarity. A
 * multi-channel map is refused (code 'unsupported', naming `file`): it is no single membrane map.
 */
export function decideMapPolarity(attributes: Record<string, unknown>, file: string, choice: MapMeaningChoice = {}): MapPolarity {
  const record = parseMapRecord(attributes, file);
  if (record.channels === 'multi') {
    const n = record.meanings.length;
    throw new EmsegError('unsupported', file, `is a map with ${n} channel${n === 1 ? '' : 's'} along axis "${CHANNEL_AXIS}" `
      + `(${record.meanings.map(describeChannel).join('; ')}), but a single-channel membrane map is needed here`);
  }
  return choice.given ?? record.polarity ?? choice.unrecorded ?? ISBI_POLARITY;
}
