import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, mkdirSync,
  writeSync } from 'node:fs';
import { join } from 'node:path';
import { EmsegError, describeError, isEmsegError } from '../errors.js';
import type { ParamSet } from '../nn/params.js';
import type { Optimizer } from '../nn/optim.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../models/safetensors.js';

/** Everything needed to continue a run exactly: weights, optimiser slots, step, RNG states, best score so far. */
export interface TrainState {
  step: number;
  samplerRng: number;
  dropoutRng: number;
  elapsedMs: number;
  best: { step: number; score: number } | null;
  /** Fingerprint of the training configuration, so a resume with different settings is refused. */
  configHash: string;
  /** The run's first losses: the divergence rule's reference (kept so a resumed run judges alike). */
  lossReference?: number[];
  /** Validation scores of a best model not yet written: it is saved once the next step's loss shows its weights did
   *  not diverge (see trainer.ts). */
  pendingBest?: Record<string, number | undefined>;
}

/**
 * A checkpoint is ONE file: the tensors (weights, optimiser slots) with the training state as safetensors metadata.
 * It is written under a temporary name, flushed to disk and renamed over the previous one, so a kill at any moment
 * leaves either the old checkpoint or the new one, never a mix. (The older format kept the state in a separate
 * state.json next to the tensors; such checkpoints still load when their two files agree.)
 */
const TENSORS = 'train-state.safetensors';
const LEGACY_STATE = 'state.json';
const OPT_PREFIX = 'optimizer/';
const FORMAT_KEY = 'emseg_train_state';
const FORMAT_VERSION = '2';
const STATE_KEY = 'state';
const TEMP_PREFIX = `.${TENSORS}.`;
const TEMP_SUFFIX = '.tmp';
/** Safetensors: an 8-byte little-endian header length, then the JSON header. */
const HEADER_LENGTH_BYTES = 8;

type StoredState = TrainState & { optimizerSteps: number };

/** Points in a checkpoint write where tests inject a failure (a crash between them must leave a loadable checkpoint). */
export type CheckpointWriteStage = 'encoded' | 'temp-written' | 'renamed';
export type CheckpointFaultHook = (stage: CheckpointWriteStage) => void;

export function checkpointPath(dir: string): string {
  return join(dir, TENSORS);
}

export function checkpointExists(dir: string): boolean {
  return existsSync(checkpointPath(dir));
}

/** Temp files left by a writer that was killed mid-write (this process's own are removed on failure). */
function removeStaleTemps(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX)) rmSync(join(dir, name), { force: true });
  }
}

/** Write, flush and close: the rename that follows must not publish a file whose data is still in the page cache only. */
function writeDurably(path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let at = 0;
    while (at < data.length) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The directory entry of the rename must reach the disk too; not every filesystem allows fsync on a directory. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the rename itself is atomic either way.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function saveCheckpoint(dir: string, params: ParamSet, optimizer: Optimizer, state: TrainState,
  fault?: CheckpointFaultHook): void {
  const tensors = new Map<string, NamedTensor>();
  for (const p of params.values()) tensors.set(p.name, { shape: p.shape, data: p.data });
  for (const [k, v] of Object.entries(optimizer.state())) tensors.set(OPT_PREFIX + k, { shape: [v.length], data: v });
  const stored: StoredState = { ...state, optimizerSteps: optimizer.stepCount };
  const bytes = encodeSafetensors(tensors, { [FORMAT_KEY]: FORMAT_VERSION, [STATE_KEY]: JSON.stringify(stored),
    step: String(state.step) });
  const target = checkpointPath(dir);
  const temp = join(dir, `${TEMP_PREFIX}${process.pid}${TEMP_SUFFIX}`);
  try {
    mkdirSync(dir, { recursive: true });
    removeStaleTemps(dir);
    fault?.('encoded');
    writeDurably(temp, bytes);
    fault?.('temp-written');
    renameSync(temp, target);
    syncDirectory(dir);
    fault?.('renamed');
  } catch (err) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // The folder itself is unusable: there is no temp file to remove.
    }
    // A full or read-only disk: say which checkpoint could not be written (the previous one is still in place).
    if ((err as NodeJS.ErrnoException).code === undefined) throw err;
    throw new EmsegError('fs-failed', target, `cannot write the checkpoint (${describeError(err)}); the previous one is kept`,
      { cause: err });
  }
  // The new file carries its own state; an older-format state.json beside it would only mislead.
  rmSync(join(dir, LEGACY_STATE), { force: true });
}

function corrupt(path: string, why: string, cause?: unknown): EmsegError {
  return new EmsegError('checkpoint-corrupt', path, `${why}; start the run again with --overwrite`, { cause });
}

function parseState(json: string, path: string): StoredState {
  let state: StoredState;
  try {
    state = JSON.parse(json) as StoredState;
  } catch (err) {
    throw corrupt(path, `its training state is not JSON (${describeError(err)})`, err);
  }
  if (!Number.isInteger(state?.step) || !Number.isInteger(state.optimizerSteps)) throw corrupt(path, 'its training state has no step');
  return state;
}

/** The state of an older two-file checkpoint, refused when its files disagree (it was killed between the writes). */
function legacyState(dir: string, metadata: Record<string, string>): StoredState {
  const statePath = join(dir, LEGACY_STATE);
  if (!existsSync(statePath)) throw corrupt(checkpointPath(dir), 'holds no training state');
  const state = parseState(readFileSync(statePath, 'utf8'), statePath);
  if (metadata.step !== String(state.step)) {
    throw corrupt(dir, `the two files of this older-format checkpoint disagree (weights at step ${metadata.step}, `
      + `state at step ${state.step}): it was interrupted while being written`);
  }
  return state;
}

function readTensors(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new EmsegError('not-found', path, `cannot read the checkpoint (${describeError(err)})`, { cause: err });
  }
  try {
    return decodeSafetensors(buf, path);
  } catch (err) {
    throw corrupt(path, `is not a readable checkpoint (${describeError(err)})`, err);
  }
}

/** Restores weights and optimiser slots in place and returns the training state. */
export function loadCheckpoint(dir: string, params: ParamSet, optimizer: Optimizer): TrainState {
  const path = checkpointPath(dir);
  const { tensors, metadata } = readTensors(path);
  const state = metadata[FORMAT_KEY] !== undefined ? parseState(metadata[STATE_KEY] ?? '', path) : legacyState(dir, metadata);
  const slots: Record<string, Float32Array | Float64Array> = {};
  for (const [name, t] of tensors) {
    if (name.startsWith(OPT_PREFIX)) {
      slots[name.slice(OPT_PREFIX.length)] = t.data;
      continue;
    }
    const p = params.get(name);
    if (!p || p.data.length !== t.data.length) {
      throw new EmsegError('checkpoint-mismatch', path, `parameter "${name}" does not fit the model`);
    }
    p.data.set(t.data);
  }
  const missing = [...params.keys()].find((name) => !tensors.has(name));
  if (missing) throw new EmsegError('checkpoint-mismatch', path, `has no parameter "${missing}" of the model`);
  optimizer.loadState(slots);
  optimizer.stepCount = state.optimizerSteps;
  const { optimizerSteps: _o, ...trainState } = state;
  return trainState;
}

/** The training state alone (step, elapsed time), read from the header without loading the tensors. */
export function readCheckpointState(dir: string): TrainState {
  const path = checkpointPath(dir);
  if (!existsSync(path)) throw new EmsegError('not-found', path, 'no checkpoint here');
  const fd = openSync(path, 'r');
  let metadata: Record<string, string>;
  try {
    const lengthBytes = Buffer.alloc(HEADER_LENGTH_BYTES);
    readSync(fd, lengthBytes, 0, HEADER_LENGTH_BYTES, 0);
    const length = Number(lengthBytes.readBigUInt64LE(0));
    if (HEADER_LENGTH_BYTES + length > fstatSync(fd).size) throw corrupt(path, 'is truncated');
    const header = Buffer.alloc(length);
    readSync(fd, header, 0, header.length, HEADER_LENGTH_BYTES);
    metadata = (JSON.parse(header.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__ ?? {};
  } catch (err) {
    throw isEmsegError(err) ? err : corrupt(path, `is not a readable checkpoint (${describeError(err)})`, err);
  } finally {
    closeSync(fd);
  }
  const state = metadata[FORMAT_KEY] !== undefined ? parseState(metadata[STATE_KEY] ?? '', path) : legacyState(dir, metadata);
  const { optimizerSteps: _o, ...trainState } = state;
  return trainState;
}
