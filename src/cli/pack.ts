import type { Command } from 'commander';
import { EmsegError } from '../errors.js';
import { loadModels, saveEnsemble, saveModel } from '../models/model-dir.js';
import { resolveModelDir } from '../models/shipped.js';
import { writeDirectoryAtomic } from '../io/atomic.js';
import { typedPath } from '../util/paths.js';

export interface PackOptions {
  models: readonly string[];
  out: string;
  /** Store the weights as float16 (half the size; computation stays fp32). */
  f16: boolean;
  overwrite: boolean;
}

/**
 * One model directory to ship from trained ones: a copy of a single model, or an ensemble directory whose
 * members `emseg predict --model <out>` averages. Returns the member names (empty for a single model).
 */
export function runPack(o: PackOptions): string[] {
  const models = o.models.flatMap((dir) => loadModels(resolveModelDir(dir)));
  if (models.length === 0) throw new EmsegError('invalid-option', 'emseg pack', 'needs at least one model directory');
  const precision = o.f16 ? 'f16' : 'as-is';
  let members: string[] = [];
  writeDirectoryAtomic(o.out, o.overwrite, (dir) => {
    if (models.length === 1) {
      const m = models[0]!;
      saveModel(dir, m.spec, m.params, { ...m.meta, packed: { from: typedPath(m.dir), weights: o.f16 ? 'float16' : 'as trained' } }, precision);
      return;
    }
    members = saveEnsemble(dir, models, { emseg: { format: 1 },
      ensemble: { from: models.map((m) => typedPath(m.dir)), weights: o.f16 ? 'float16' : 'as trained' } }, precision);
  });
  return members;
}

export function registerPack(program: Command): void {
  program
    .command('pack')
    .description('one model directory to ship from trained ones: a copy, or an ensemble (predict averages its members)')
    .argument('<models...>', 'trained model directories')
    .requiredOption('--out <dir>', 'model directory to write')
    .option('--f16', 'store the weights as float16 (half the size; inference stays fp32)')
    .option('--overwrite', 'replace an existing <dir>')
    .action((models: string[], o) => {
      const members = runPack({ models, out: o.out, f16: o.f16 ?? false, overwrite: o.overwrite ?? false });
      process.stdout.write(`wrote ${o.out}${members.length ? ` (ensemble of ${members.join(', ')})` : ''}\n`);
    });
}
