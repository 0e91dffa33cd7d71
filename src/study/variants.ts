import { EmsegError, describeError } from '../errors.js';
import { summarize, type ModelSummary } from '../models/summary.js';
import { tileGeometry } from '../infer/tiling.js';
import { resolveSpec } from '../models/zoo.js';
import { planModel } from '../nn/plan.js';
import { parseModelSpec, type ModelSpec } from '../nn/spec.js';
import type { ResolvedStudy, SpecEdit, StudyVariant } from './schema.js';

/** A variant after its spec was generated and checked: `spec` and `summary` when valid, else `error`. */
export interface VariantPlan {
  name: string;
  description: string;
  /** Where the spec came from, e.g. 'fakhry-b + conv1.kernel=4'. */
  model: string;
  spec?: ModelSpec;
  summary?: ModelSummary;
  error?: string;
}

type Json = Record<string, unknown>;

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function modelLabel(ref: string | Json): string {
  return typeof ref === 'string' ? ref : `inline spec "${typeof ref.name === 'string' ? ref.name : '?'}"`;
}

/** A zoo name or spec file (string) or an inline spec (object), validated. */
export function resolveModelRef(ref: string | Json, source: string): ModelSpec {
  return typeof ref === 'string' ? resolveSpec(ref) : parseModelSpec(ref, source);
}

function layerNames(layers: Json[]): string[] {
  return layers.map((l, i) => (typeof l.name === 'string' ? l.name : `${String(l.type)}${i}`));
}

function findLayer(layers: Json[], ref: string | number): number {
  if (typeof ref === 'number') {
    if (ref >= layers.length) throw new EmsegError('invalid-study', '', `no layer ${ref} (the spec has ${layers.length})`);
    return ref;
  }
  const names = layerNames(layers);
  const i = names.indexOf(ref);
  if (i < 0) throw new EmsegError('invalid-study', '', `no layer named "${ref}" (layers: ${names.join(', ')})`);
  return i;
}

function setFields(target: Json, fields: Json): void {
  for (const [k, v] of Object.entries(fields)) {
    if (v === null) delete target[k];
    else target[k] = clone(v);
  }
}

/** Applies edits in order to a spec's JSON; each edit sees the result of the previous ones. */
export function applyEdits(spec: ModelSpec | Json, edits: readonly SpecEdit[]): Json {
  const out = clone(spec) as Json & { layers: Json[] };
  edits.forEach((e, k) => {
    try {
      if (e.window !== undefined) {
        out.window = e.window;
        return;
      }
      if (e.layer === undefined) {
        if (e.set && 'layers' in e.set) throw new EmsegError('invalid-study', 'set', 'without "layer" sets top-level fields; edit layers one by one');
        setFields(out, e.set!);
        return;
      }
      const i = findLayer(out.layers, e.layer);
      const count = e.count ?? 1;
      if (i + count > out.layers.length) throw new EmsegError('invalid-study', 'count', `${count} runs past the last layer`);
      if (e.set) setFields(out.layers[i]!, e.set);
      else if (e.replace) out.layers.splice(i, count, ...clone(e.replace));
      else if (e.remove) out.layers.splice(i, count);
      else if (e.insertBefore) out.layers.splice(i, 0, ...clone(e.insertBefore));
      else if (e.insertAfter) out.layers.splice(i + 1, 0, ...clone(e.insertAfter));
      if (out.layers.length === 0) throw new EmsegError('invalid-study', 'layers', 'none left');
    } catch (err) {
      throw new EmsegError('invalid-study', `edit ${k} (${describeEdit(e)})`, describeError(err), { cause: err });
    }
  });
  return out;
}

function describeLayer(l: Json): string {
  const k = l.kernel;
  const kernel = Array.isArray(k) ? `${k[0]}x${k[1]}` : typeof k === 'number' ? `${k}x${k}` : '';
  return [l.type, kernel, l.out !== undefined ? String(l.out) : ''].filter(Boolean).join(' ');
}

/** Short human form of an edit, for tables. */
export function describeEdit(e: SpecEdit): string {
  if (e.window !== undefined) return `window=${e.window}`;
  const at = e.layer === undefined ? '' : String(e.layer);
  const count = e.count && e.count > 1 ? `(+${e.count - 1})` : '';
  if (e.set) return Object.entries(e.set).map(([f, v]) => `${at ? `${at}.` : ''}${f}=${v === null ? 'unset' : JSON.stringify(v)}`).join(', ');
  if (e.replace) return `${at}${count} -> [${e.replace.map(describeLayer).join(', ')}]`;
  if (e.remove) return `-${at}${count}`;
  if (e.insertBefore) return `+[${e.insertBefore.map(describeLayer).join(', ')}] before ${at}`;
  if (e.insertAfter) return `+[${e.insertAfter.map(describeLayer).join(', ')}] after ${at}`;
  return '?';
}

/** Runs a check; its error is reported under the study field it is about. */
function atField(name: string, value: number, check: () => unknown): void {
  try {
    check();
  } catch (err) {
    throw new EmsegError('invalid-study', `field "${name}" (${value})`, describeError(err), { cause: err });
  }
}

/**
 * Checks a spec like any model before training: parsed, planned at its window, at the training tile (densely), and
 * at the evaluation tile on sections of the data's size (of the tile's own size when the data is not known).
 */
export function checkSpec(spec: ModelSpec, tile: number, evaluation?: { tile: number; section?: { height: number; width: number } }): ModelSummary {
  if (spec.window) planModel(spec, spec.window, spec.window);
  atField('training.tile', tile, () => tileGeometry(spec, tile, tile, tile));
  if (evaluation) {
    const { tile: t, section } = evaluation;
    atField('evaluation.tile', t, () => tileGeometry(spec, t, section?.height ?? t, section?.width ?? t));
  }
  return summarize(spec);
}

/**
 * Generates and checks every variant's spec (with the size of the data's sections when known); an invalid variant
 * gets `error` and does not stop the others.
 */
export function planVariants(study: ResolvedStudy, section?: { height: number; width: number }): VariantPlan[] {
  let base: ModelSpec | undefined;
  let baseError: string | undefined;
  try {
    base = resolveModelRef(study.base, 'study base');
  } catch (err) {
    baseError = `base model: ${(err as Error).message}`;
  }
  return study.variants.map((v: StudyVariant) => {
    const edits = v.edits.map(describeEdit).join('; ');
    const from = v.model === undefined ? modelLabel(study.base) : modelLabel(v.model);
    const plan: VariantPlan = { name: v.name, description: v.description ?? '', model: edits ? `${from} + ${edits}` : from };
    try {
      let start: ModelSpec;
      if (v.model !== undefined) start = resolveModelRef(v.model, `variant "${v.name}" model`);
      else if (base) start = base;
      else throw new EmsegError('invalid-study', 'base', baseError!);
      const json = applyEdits(start, v.edits);
      if (v.edits.length && !v.edits.some((e) => e.set && e.layer === undefined && 'name' in e.set)) json.name = v.name;
      const spec = parseModelSpec(json, `variant "${v.name}"`);
      plan.summary = checkSpec(spec, study.training.tile, { tile: study.evaluation.tile, ...(section ? { section } : {}) });
      plan.spec = spec;
    } catch (err) {
      plan.error = (err as Error).message;
    }
    return plan;
  });
}

/** The study's `expect` checks over the valid variants; returns the violations (empty when all hold). */
export function checkExpectations(study: ResolvedStudy, plans: readonly VariantPlan[]): string[] {
  const valid = plans.filter((p) => p.summary);
  const problems: string[] = [];
  if (study.expect.sameReceptiveField) {
    const fields = new Set(valid.map((p) => p.summary!.receptiveField));
    if (fields.size > 1) {
      problems.push(`expect.sameReceptiveField: the receptive fields differ (${valid.map((p) => `${p.name} ${p.summary!.receptiveField}`).join(', ')})`);
    }
  }
  if (study.expect.flopsWithin !== undefined && valid.length) {
    const ref = valid[0]!.summary!.flopsPerPixel;
    const off = valid.filter((p) => Math.abs(p.summary!.flopsPerPixel / ref - 1) > study.expect.flopsWithin! + 1e-9);
    if (off.length) {
      problems.push(`expect.flopsWithin ${study.expect.flopsWithin}: FLOPs/pixel relative to "${valid[0]!.name}" are ${valid
        .map((p) => `${p.name} ${(p.summary!.flopsPerPixel / 1e6).toFixed(3)}M (${signedPercent(p.summary!.flopsPerPixel / ref - 1)})`).join(', ')}`);
    }
  }
  return problems;
}

export function signedPercent(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
}
