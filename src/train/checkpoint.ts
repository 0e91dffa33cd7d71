import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ParamSet } from '../nn/params.js';
import type { Optimizer } from '../nn/optim.js';
import { writeFileAtomic } from '../util/atomic.js';
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
}

const STATE = 'state.json';
const TENSORS = 'train-state.safetensors';
const OPT_PREFIX = 'optimizer/';

export function checkpointExists(dir: string): boolean {
  return existsSync(join(dir, STATE)) && existsSync(join(dir, TENSORS));
}

export function saveCheckpoint(dir: string, params: ParamSet, optimizer: Optimizer, state: TrainState): void {
  const tensors = new Map<string, NamedTensor>();
  for (const p of params.values()) tensors.set(p.name, { shape: p.shape, data: p.data });
  for (const [k, v] of Object.entries(optimizer.state())) tensors.set(OPT_PREFIX + k, { shape: [v.length], data: v });
  // Tensors first, state last: a state.json always refers to tensors at least as new as itself.
  writeFileAtomic(join(dir, TENSORS), encodeSafetensors(tensors, { step: String(state.step) }));
  writeFileAtomic(join(dir, STATE), `${JSON.stringify({ ...state, optimizerSteps: optimizer.stepCount }, null, 2)}\n`);
}

export function loadCheckpoint(dir: string, params: ParamSet, optimizer: Optimizer): TrainState {
  const statePath = join(dir, STATE);
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainState & { optimizerSteps: number };
  const tensorPath = join(dir, TENSORS);
  const { tensors, metadata } = decodeSafetensors(readFileSync(tensorPath), tensorPath);
  if (metadata.step !== String(state.step)) throw new Error(`${dir}: checkpoint files disagree (step ${metadata.step} vs ${state.step})`);
  const slots: Record<string, Float32Array | Float64Array> = {};
  for (const [name, t] of tensors) {
    if (name.startsWith(OPT_PREFIX)) {
      slots[name.slice(OPT_PREFIX.length)] = t.data;
      continue;
    }
    const p = params.get(name);
    if (!p || p.data.length !== t.data.length) throw new Error(`${tensorPath}: parameter "${name}" does not fit the model`);
    p.data.set(t.data);
  }
  optimizer.loadState(slots);
  optimizer.stepCount = state.optimizerSteps;
  return state;
}
