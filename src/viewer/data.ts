/** The non-image inputs of the viewer: an `emseg eval --json` result, a training run's log and a study summary. */
import { readFile, realpath } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { z } from 'zod';
import { EmsegError, describeError } from '../errors.js';
import { DEFAULT_MARK_THRESHOLD } from '../pipeline/evaluate.js';
import { LOG_FILE } from '../train/trainer.js';
import type { SectionInfo, StudyChart, TrainingCurves } from './protocol.js';

/** The study summary `emseg study` writes into its output folder. */
export const STUDY_FILE = 'study.json';

/** Reads a file that must lie inside `dir` once links are resolved (a log replaced by a link elsewhere is refused). */
async function readInside(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  try {
    const [root, real] = await Promise.all([realpath(dir), realpath(path)]);
    const rel = relative(root, real);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new EmsegError('outside', path, 'is a link to a place outside its folder; not served');
    return await readFile(real, 'utf8');
  } catch (err) {
    if (err instanceof EmsegError) throw err;
    throw new EmsegError('not-found', path, `cannot read it (${describeError(err)})`, { cause: err });
  }
}

const evalSchema = z.object({
  sections_threshold: z.number().finite().optional(),
  sections: z.array(z.object({
    index: z.number().int().nonnegative(),
    v_rand: z.number().optional(),
    v_info: z.number().optional(),
    warping_splits: z.number().optional(),
    warping_mergers: z.number().optional(),
  })).optional(),
});

export interface EvalInfo {
  /** Probability threshold at which the marks are located. */
  threshold: number;
  perSection: Map<number, NonNullable<SectionInfo['evaluation']>>;
}

/** Reads `emseg eval --json --per-slice` output: the per-section scores and the threshold the error marks use. */
export async function readEval(path: string): Promise<EvalInfo> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new EmsegError('corrupt', path, `is not a readable JSON file (${describeError(err)})`, { cause: err });
  }
  const parsed = evalSchema.safeParse(doc);
  if (!parsed.success) throw new EmsegError('corrupt', path, `is not an emseg eval --json result: ${parsed.error.issues[0]!.path.join('.')} ${parsed.error.issues[0]!.message}`);
  const perSection = new Map<number, NonNullable<SectionInfo['evaluation']>>();
  for (const s of parsed.data.sections ?? []) {
    const { index, ...scores } = s;
    perSection.set(index, scores);
  }
  return { threshold: parsed.data.sections_threshold ?? DEFAULT_MARK_THRESHOLD, perSection };
}

const logLine = z.discriminatedUnion('type', [
  z.object({ type: z.literal('step'), step: z.number(), loss: z.number(), lr: z.number() }),
  z.object({ type: z.literal('validation'), step: z.number(), pixel_error: z.number().optional(), v_rand: z.number().optional(), best: z.boolean() }),
]);

/** Reads a training run's JSONL log afresh (a run in progress grows it). A torn last line is a run mid-write: skipped. */
export async function readTraining(dir: string): Promise<TrainingCurves> {
  const text = await readInside(dir, LOG_FILE);
  const lines = text.split('\n');
  const curves: TrainingCurves = { name: dir, steps: [], validation: [] };
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return;
      throw new EmsegError('corrupt', join(dir, LOG_FILE), `line ${i + 1} is not JSON`);
    }
    const r = logLine.safeParse(record);
    if (!r.success) throw new EmsegError('corrupt', join(dir, LOG_FILE), `line ${i + 1}: ${r.error.issues[0]!.path.join('.')} ${r.error.issues[0]!.message}`);
    if (r.data.type === 'step') curves.steps.push({ step: r.data.step, loss: r.data.loss, lr: r.data.lr });
    else curves.validation.push({ step: r.data.step, pixel_error: r.data.pixel_error, v_rand: r.data.v_rand, best: r.data.best });
  });
  return curves;
}

const statSchema = z.object({ mean: z.number(), sd: z.number().nullable(), n: z.number() }).optional();
const studySchema = z.object({
  study: z.string(),
  metrics: z.array(z.string()),
  variants: z.array(z.object({ name: z.string(), metrics: z.record(statSchema).optional() })),
});

/** Reads a study folder's summary: each variant's metric means and spreads. */
export async function readStudy(dir: string): Promise<StudyChart> {
  const path = join(dir, STUDY_FILE);
  let doc: unknown;
  try {
    doc = JSON.parse(await readInside(dir, STUDY_FILE));
  } catch (err) {
    if (err instanceof EmsegError) throw err;
    throw new EmsegError('invalid-study', path, `is not JSON (${describeError(err)})`, { cause: err });
  }
  const r = studySchema.safeParse(doc);
  if (!r.success) throw new EmsegError('invalid-study', path, `is not an emseg study summary: ${r.error.issues[0]!.path.join('.')} ${r.error.issues[0]!.message}`);
  return {
    study: r.data.study,
    metrics: r.data.metrics,
    variants: r.data.variants.map((v) => ({ name: v.name, metrics: v.metrics ?? {} })),
  };
}
