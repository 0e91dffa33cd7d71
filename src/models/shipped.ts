import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmsegError } from '../errors.js';
import { ENSEMBLE_FILE, readModelMeta, SPEC_FILE } from './model-dir.js';

/**
 * The models shipped with emseg: the folders of the package's models/ (dist/src/models/ is three levels below the
 * package root), found there whatever the working folder, so that `--model emseg-isbi` works from anywhere and in an
 * installed package as in the checkout.
 */
export const SHIPPED_MODELS_DIR = fileURLToPath(new URL('../../../models', import.meta.url));

/** The meta.json field that says in one line what a shipped model is for (its "description" says how it was made). */
const USE_FIELD = 'use';

export interface ShippedModel {
  name: string;
  dir: string;
  kind: 'ensemble' | 'model';
  /** What it is for (meta.json "use"), else its description's first sentence. */
  use: string;
  /** Recorded scores (meta.json evaluation.scores) and the sections they were measured on, when recorded. */
  scores?: Record<string, number>;
  scoredOn?: string;
}

/** Every shipped model, by name; none when the package has no models/ folder. */
export function shippedModels(): ShippedModel[] {
  if (!existsSync(SHIPPED_MODELS_DIR)) return [];
  return readdirSync(SHIPPED_MODELS_DIR).sort().flatMap((name) => {
    const dir = join(SHIPPED_MODELS_DIR, name);
    const ensemble = existsSync(join(dir, ENSEMBLE_FILE));
    if (!statSync(dir).isDirectory() || (!ensemble && !existsSync(join(dir, SPEC_FILE)))) return [];
    const meta = readModelMeta(dir);
    const evaluation = (meta.evaluation ?? {}) as { scores?: Record<string, number>; sections?: unknown };
    const description = typeof meta.description === 'string' ? meta.description : '';
    const use = typeof meta[USE_FIELD] === 'string' ? meta[USE_FIELD] : (description.split(/(?<=\.)\s/)[0] ?? '');
    return [{ name, dir, kind: ensemble ? 'ensemble' : 'model', use,
      ...(evaluation.scores ? { scores: evaluation.scores } : {}),
      ...(typeof evaluation.sections === 'string' ? { scoredOn: evaluation.sections } : {}) } satisfies ShippedModel];
  });
}

/**
 * A --model (or --init, or export's) argument as a folder: a path that exists is used as it is (as always); otherwise
 * a shipped model's name (or name/member of an ensemble) gives its folder in the package. Anything else is refused naming the shipped models, since a
 * user who typed a name most likely meant one of them.
 */
export function resolveModelDir(arg: string, flag = '--model'): string {
  if (existsSync(arg)) return arg;
  const shipped = shippedModels();
  // The name alone, or with a member inside it (emseg-isbi/unet-w16-s3, for --init).
  const [name, ...member] = arg.split(/[\\/]/);
  const found = shipped.find((m) => m.name === name);
  if (found && member.length === 0) return found.dir;
  if (found && existsSync(join(found.dir, ...member))) return join(found.dir, ...member);
  const names = shipped.map((m) => m.name).join(', ') || 'none in this installation';
  throw new EmsegError('not-found', arg, `not a model directory (${flag}): no such folder, nor the name of a shipped model `
    + `(${names}; \`emseg models --shipped\` lists them)`);
}
