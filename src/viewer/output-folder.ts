/**
 * emseg's own output folders as `emseg view` inputs, known by what emseg recorded there (the folder manifests of
 * io/output-guard.ts), never guessed from pixels: the demo's folder (its maps and cells, over the bundled samples it
 * always runs on) and a predict output folder (png-folder, tiff-folder: a membrane map, in the polarity its command
 * wrote). Any other folder is left to classify.ts's content rules.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE } from '../io/output-guard.js';
import { DEMO_OUTPUTS, SAMPLE_IMAGES, SAMPLE_LABELS } from '../pipeline/assets.js';
import type { ViewInputs } from './model.js';

/** The command line a folder's manifest records (["emseg", "predict", ...]), or null when it has none we can read. */
function manifestCommand(folder: string): string[] | null {
  const path = join(folder, MANIFEST_FILE);
  if (!existsSync(path)) return null;
  try {
    const command = (JSON.parse(readFileSync(path, 'utf8')) as { command?: unknown }).command;
    return Array.isArray(command) && command.every((c) => typeof c === 'string') ? command : null;
  } catch {
    return null; // not a manifest emseg can read: the folder is classified by its content (which then says what is wrong)
  }
}

/** The view inputs of an emseg output folder, or null when `dir` is not one. */
export function outputFolderInputs(dir: string): ViewInputs | null {
  if (manifestCommand(join(dir, DEMO_OUTPUTS.mapPictures))?.[1] === 'demo') {
    const inputs: ViewInputs = { images: SAMPLE_IMAGES, labels: SAMPLE_LABELS };
    if (existsSync(join(dir, DEMO_OUTPUTS.maps))) inputs.map = join(dir, DEMO_OUTPUTS.maps);
    if (existsSync(join(dir, DEMO_OUTPUTS.cells))) inputs.cells = join(dir, DEMO_OUTPUTS.cells);
    return inputs;
  }
  const command = manifestCommand(dir);
  if (command?.[1] === 'predict') return { map: dir, ...(command.includes('--membrane-prob') ? { membraneProb: true } : {}) };
  return null;
}
