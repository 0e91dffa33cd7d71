import { InvalidArgumentError, type Command } from 'commander';
import type { Precision } from '../backend/backend.js';
import { isEmsegError } from '../errors.js';
import { formatIntensity, parseIntensity } from '../image/intensity.js';
import { LABEL_POLARITIES, type LabelPolarity } from '../io/index.js';
import { LENGTH_UNITS, normalizeUnit } from '../io/voxel-size.js';

/** Shared option parsers, so every command validates numbers and lists the same way. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

export function numberList(value: string): number[] {
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.length === 0 || list.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new InvalidArgumentError(`expected comma-separated non-negative numbers, got "${value}"`);
  }
  return list;
}

export function precisionList(value: string): Precision[] {
  return value.split(',').map((p) => {
    const v = p.trim().toLowerCase();
    if (v === 'fp32' || v === 'float32') return 'float32';
    if (v === 'bf16' || v === 'bfloat16') return 'bfloat16';
    throw new InvalidArgumentError(`unknown precision "${p}" (use fp32, bf16, fp32,bf16 or both)`);
  });
}

/** `emseg bench --precision`: a list, or `both` (fp32 and bf16, bf16 skipped with a note where it cannot run). */
export interface PrecisionChoice {
  precisions: Precision[];
  skipUnavailable: boolean;
}

export function precisionChoice(value: string): PrecisionChoice {
  if (value.trim().toLowerCase() === 'both') return { precisions: ['float32', 'bfloat16'], skipUnavailable: true };
  return { precisions: precisionList(value), skipUnavailable: false };
}

export function backendKind(value: string): 'auto' | 'onednn' | 'reference' {
  if (value === 'auto' || value === 'onednn' || value === 'reference') return value;
  throw new InvalidArgumentError(`unknown backend "${value}" (use auto, onednn, reference)`);
}

/** Checks an --intensity rule while parsing the flags; returns its canonical text. */
export function intensityRule(value: string): string {
  try {
    return formatIntensity(parseIntensity(value, '')); // no path: commander names the flag itself
  } catch (err) {
    if (isEmsegError(err, 'invalid-option')) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/**
 * --polarity as the library takes it: the value when the user gave it, undefined when it is commander's default, so
 * that labels which then read as mostly membrane are refused as inverted rather than warned about (io/plausibility.ts).
 */
export function givenPolarity(o: { polarity?: LabelPolarity }, command: Command): LabelPolarity | undefined {
  return command.getOptionValueSource('polarity') === 'default' ? undefined : o.polarity;
}

/** Help of --pred-is-map, the same for eval, segment and tune-segment. */
export const PRED_IS_MAP_HELP = 'the --pred values are a membrane map even though they are spread like a raw image\'s (an untrained model\'s map); '
  + 'without it such an input is refused';

/** Where the library's warnings go: stderr, one line each. */
export const noticeOnStderr = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

export function labelPolarity(value: string): LabelPolarity {
  if ((LABEL_POLARITIES as readonly string[]).includes(value)) return value as LabelPolarity;
  throw new InvalidArgumentError(`unknown polarity "${value}" (use ${LABEL_POLARITIES.join(', ')})`);
}

/**
 * The flag of every command that reads Zarr inputs. Zarr reads an absent chunk file as the fill value, but for an
 * input that is usually an incomplete copy, so emseg refuses it unless told (io/formats/zarr.ts, ReadStore).
 */
export const ALLOW_MISSING_CHUNKS = ['--allow-missing-chunks',
  'Zarr inputs: read absent chunk files as the array\'s fill value (one notice gives their count) instead of refusing them'] as const;

/** `--voxel-size z,y,x` (or one number for all three): positive numbers. */
export function voxelSizeArg(value: string): [number, number, number] {
  const parts = value.split(',').map((p) => Number(p.trim()));
  const size = parts.length === 1 ? [parts[0]!, parts[0]!, parts[0]!] : parts;
  if (size.length !== 3 || size.some((v) => !Number.isFinite(v) || v <= 0)) {
    throw new InvalidArgumentError(`expected three positive numbers z,y,x (or one for all), got "${value}"`);
  }
  return size as [number, number, number];
}

function unitArg(value: string): string {
  const unit = normalizeUnit(value);
  if (!unit) throw new InvalidArgumentError(`"${value}" is not a length unit emseg knows (nm, um, mm or an NGFF name: ${LENGTH_UNITS.join(', ')})`);
  return unit;
}

/**
 * `--voxel-size` and `--unit` of every command that writes volumes or stacks (predict, segment, convert): they set
 * or override the voxel size the input records (io/voxel-size.ts chooseVoxelSize; a difference is said on stderr).
 */
export function addVoxelSizeOptions(cmd: Command): Command {
  return cmd
    .option('--voxel-size <z,y,x>', 'physical voxel size the output records (OME-Zarr scale, TIFF resolution and ImageJ spacing); default: the input\'s (OME-Zarr scale, HDF5 resolution or element_size_um, TIFF resolution / ImageJ spacing), or none', voxelSizeArg)
    .option('--unit <u>', 'unit of the voxel size (nm, um, or an NGFF name such as nanometer); alone it converts the input\'s voxel size', unitArg);
}

/** `--json` of every command that reports: one object on stdout at the end instead of the text line(s). */
export const JSON_FLAG = ['--json', 'print the result as one JSON object on stdout (progress and notices stay on stderr)'] as const;

/**
 * A command's final report: the text as always, or with --json the `result` object (`command` first), one JSON
 * document on stdout so that scripts can read it while progress and notices go to stderr.
 */
export function printResult(json: boolean | undefined, command: string, text: string, result: Record<string, unknown>): void {
  process.stdout.write(json ? `${JSON.stringify({ command, ...result }, null, 2)}\n` : text);
}
