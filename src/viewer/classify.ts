/**
 * What each PATH given to `emseg view` is, when no flag names its role: a training run (a folder with the trainer's
 * JSONL log), a study (a folder with study.json), an eval result (.json), or a stack told apart by its samples:
 * float = membrane map (a second one: the map to compare), uint32 = cells, other integers = the image, then labels.
 * An OME-Zarr image (a .zarr folder, or a URL: s3://, http(s)://) is told apart by emseg's metadata first; its
 * labels/cells come along as cells.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EmsegError } from '../errors.js';
import { openStack } from '../io/index.js';
import { isUrl, openVolume } from '../io/registry.js';
import { LOG_FILE } from '../train/trainer.js';
import { STUDY_FILE } from './data.js';
import type { ViewInputs } from './model.js';
import { outputFolderInputs } from './output-folder.js';
import { cellsLabelsPath, emsegAttributes, hasCellsLabels, isZarrPath, viewerPath } from './zarr-source.js';

type Role = keyof Omit<ViewInputs, 'membraneProb' | 'polarity'>;

async function roleOf(path: string, taken: Set<Role>): Promise<Role[]> {
  if (isUrl(path)) return zarrRoleOf(path, taken); // a URL is a volume (OME-Zarr), in its store; openVolume says otherwise
  const isDir = existsSync(path) && statSync(path).isDirectory();
  if (isDir && existsSync(join(path, LOG_FILE))) return ['train'];
  if (isDir && existsSync(join(path, STUDY_FILE))) return ['study'];
  if (!isDir && path.toLowerCase().endsWith('.json')) return ['eval'];
  if (isDir && (await isZarrPath(path))) return zarrRoleOf(path, taken);
  const stack = await openStack(path, { colour: 'to-grey' });
  if (stack.sampleType === 'float32') return ['map', 'compare'];
  if (stack.sampleType === 'uint32') return ['cells'];
  return taken.has('images') ? ['labels'] : ['images'];
}

/** An OME-Zarr image: emseg's metadata names membrane maps and labels; otherwise the samples decide, as for stacks. */
async function zarrRoleOf(path: string, taken: Set<Role>): Promise<Role[]> {
  const reader = await openVolume(path);
  const kind = emsegAttributes(reader).kind;
  if (kind === 'membrane' || reader.dtype === 'float32') return ['map', 'compare'];
  if (kind === 'labels' || reader.dtype === 'uint32') return reader.dtype === 'uint32' ? ['cells', 'labels'] : ['labels', 'cells'];
  return taken.has('images') ? ['labels'] : ['images'];
}

/** Adds the layers of an emseg output folder; one whose role is taken already is refused, as for single paths. */
function addOutputFolder(path: string, folder: ViewInputs, inputs: ViewInputs, taken: Set<Role>): void {
  for (const [key, value] of Object.entries(folder) as [keyof ViewInputs, string | boolean][]) {
    if (key === 'membraneProb' || key === 'polarity') continue;
    if (taken.has(key)) {
      throw new EmsegError('ambiguous', path, `is an emseg output folder that holds a ${key} input, but one was given already; `
        + 'name each with its flag (--images, --map, --compare, --cells, --labels)');
    }
    (inputs as Record<string, unknown>)[key] = value;
    taken.add(key);
  }
  if (folder.membraneProb) inputs.membraneProb = true;
}

/** Adds the positional paths to the inputs the flags named; a role given twice is refused rather than guessed. */
export async function classifyPaths(paths: readonly string[], flags: ViewInputs): Promise<ViewInputs> {
  const inputs: ViewInputs = { ...flags };
  const taken = new Set<Role>((Object.keys(inputs) as (keyof ViewInputs)[]).filter((k): k is Role => k !== 'membraneProb' && k !== 'polarity' && inputs[k] !== undefined));
  for (const path of paths) {
    const folder = existsSync(path) && statSync(path).isDirectory() ? outputFolderInputs(path) : null;
    if (folder) {
      addOutputFolder(path, folder, inputs, taken);
      continue;
    }
    const candidates = await roleOf(path, taken);
    const role = candidates.find((r) => !taken.has(r));
    if (role === undefined) {
      throw new EmsegError('ambiguous', path, `looks like a ${candidates[0]} input, but one was given already; name each with its flag (--images, --map, --compare, --cells, --labels, --eval, --train, --study)`);
    }
    inputs[role] = viewerPath(path);
    taken.add(role);
    // An OME-Zarr image carries its cells as the labels image labels/cells: shown too, unless cells were named.
    if (role === 'images' && !taken.has('cells') && (await isZarrPath(path)) && hasCellsLabels(await openVolume(path))) {
      inputs.cells = cellsLabelsPath(path);
      taken.add('cells');
    }
  }
  return inputs;
}
