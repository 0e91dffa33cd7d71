import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { createBackend, type BackendKind } from '../backend/index.js';
import { EmsegError, describeError, isEmsegError } from '../errors.js';
import { openImageFile } from '../io/image-file.js';
import { resolveModelDir } from '../models/shipped.js';
import { ensembleMembers, intensityRecord, loadModels, readModelMeta, SPEC_FILE, type LoadedModel } from '../models/model-dir.js';
import { writeFileAtomic } from '../io/atomic.js';
import { buildBioimageioPackage, type SampleSection } from './bioimageio/package.js';
import { buildOnnx } from './onnx/export.js';
import { buildOnnx3d } from './onnx/export3d.js';
import { volumeGeometry } from '../infer/volume.js';
import { MEMBRANE_CLASS } from '../infer/predict.js';
import { CLOSE_GAPS_META_KEY, closeGapsOptions } from '../pipeline/close-gaps.js';

export const EXPORT_FORMATS = ['onnx', 'bioimageio'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  model: string;
  format: ExportFormat;
  out: string;
  overwrite: boolean;
  /** bioimage.io only. */
  name?: string;
  authors?: string[];
  license?: string;
  sample?: string;
  backend?: BackendKind;
  emsegVersion: string;
  command: string;
}

export interface ExportResult {
  out: string;
  bytes: number;
  members: string[];
}

/** The models of a model or ensemble directory, with errors that name it. */
function loadExportModels(dir: string): LoadedModel[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new EmsegError('not-found', dir, 'is not a model directory (emseg train --out or emseg pack --out make one)');
  }
  if (!ensembleMembers(dir) && !existsSync(resolve(dir, SPEC_FILE))) {
    throw new EmsegError('not-found', dir, `is not a model directory (no ${SPEC_FILE} or ensemble.json)`);
  }
  try {
    return loadModels(dir);
  } catch (err) {
    if (isEmsegError(err)) throw err;
    throw new EmsegError('invalid-model', dir, describeError(err), { cause: err });
  }
}

async function readSample(path: string): Promise<SampleSection> {
  const file = await openImageFile(path);
  const page = file.pages[0]!;
  for await (const data of file.pageData()) return { path, width: page.width, height: page.height, data };
  throw new EmsegError('corrupt', path, 'has no image page');
}

/** Writes an ONNX model or a bioimage.io package of a model or ensemble directory. */
export async function runExport(given: ExportOptions): Promise<ExportResult> {
  const o = { ...given, model: resolveModelDir(given.model, 'model') }; // a shipped model's name is its folder
  if (existsSync(o.out) && !o.overwrite) throw new EmsegError('exists', o.out, 'already exists (pass --overwrite to replace it)');
  const models = loadExportModels(o.model);
  const meta = readModelMeta(o.model);
  const dirName = basename(resolve(o.model));
  const name = o.name ?? (dirName.startsWith('emseg') ? dirName : `emseg ${dirName}`);
  // The graph makes maps only; the gap-closing setting tuned for them travels as metadata for tools that segment.
  const gaps = closeGapsOptions([o.model], {});
  const closeGaps = gaps.from !== null ? gaps.options : undefined;
  let bytes: Uint8Array;
  if (o.format === 'onnx' && models[0]!.spec.input.dims === 3) {
    bytes = onnx3d(models, meta, name, o);
  } else if (o.format === 'onnx') {
    bytes = buildOnnx(models, { name, description: typeof meta.description === 'string' ? meta.description : name,
      producerVersion: o.emsegVersion, metadata: { membrane_channel: String(MEMBRANE_CLASS),
        intensity: intensityRecord(models[0]!.meta).intensity, command: o.command,
        ...(closeGaps ? { [CLOSE_GAPS_META_KEY]: JSON.stringify(closeGaps) } : {}) } }).bytes;
  } else {
    if (!o.sample) throw new EmsegError('invalid-option', '--sample', 'a bioimage.io package needs a sample section for its test tensors');
    bytes = buildBioimageioPackage({ models, meta, name, closeGaps, authors: o.authors?.length ? o.authors : ['emseg contributors'],
      license: o.license ?? 'MIT', emsegVersion: o.emsegVersion, command: o.command, sample: await readSample(o.sample),
      backend: createBackend({ kind: o.backend ?? 'auto' }) }).zip;
  }
  writeFileAtomic(o.out, bytes);
  return { out: o.out, bytes: bytes.length, members: models.map((m) => basename(m.dir)) };
}

/**
 * A 3-d network as ONNX for one input size, the one `emseg predict` tiles volumes with by default (infer/volume.ts):
 * its valid outputs, the offset and the targets in the metadata, so that a block-wise runner elsewhere can tile as
 * emseg does. Ensembles of 3-d networks are refused: the graph has one network's outputs.
 */
function onnx3d(models: LoadedModel[], meta: Record<string, unknown>, name: string, o: ExportOptions): Uint8Array {
  if (models.length > 1) throw new EmsegError('unsupported-export', o.model, 'is an ensemble of 3-d networks; export its members one by one');
  const m = models[0]!;
  return buildOnnx3d(m, { name, description: typeof meta.description === 'string' ? meta.description : name, producerVersion: o.emsegVersion,
    metadata: { intensity: intensityRecord(m.meta).intensity, command: o.command } }, volumeGeometry(m.spec).input).bytes;
}
