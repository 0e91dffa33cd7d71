import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/backend/backend.js';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { isEmsegError } from '../src/errors.js';
import { tileGeometry } from '../src/infer/tiling.js';
import { loadModel } from '../src/models/model-dir.js';
import { encodeSafetensors } from '../src/models/safetensors.js';
import { resolveSpec } from '../src/models/zoo.js';
import { createOptimizer } from '../src/nn/optim.js';
import { initParams, type ParamSet } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { checkpointInterval, parseCheckpointEvery, runTrain, type TrainJob } from '../src/pipeline/train.js';
import { checkpointExists, checkpointPath, loadCheckpoint, readCheckpointState, saveCheckpoint,
  type CheckpointWriteStage, type TrainState } from '../src/train/checkpoint.js';
import { divergenceBound, lossDivergence, nonFiniteParam, TrainingDiverged } from '../src/train/divergence.js';
import { checkTrainingMemory, estimateTrainingMemory } from '../src/train/memory.js';
import { train, type TrainConfig } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const emseg = join(root, 'bin/emseg.js');
const samples = join(root, 'samples/isbi2012');

const spec = parseModelSpec({
  name: 'tiny-patch', window: 7,
  layers: [
    { type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc1', out: 4 }, { type: 'relu' }, { type: 'dense', name: 'fc2', out: 2 }, { type: 'softmax' },
  ],
});

const tmp = () => mkdtempSync(join(tmpdir(), 'emseg-faults-'));

function freshParams(seed: number): ParamSet {
  return initParams(planModel(spec, 7, 7), seed);
}

/** Weights all equal to `value`: a loaded checkpoint shows which save it came from. */
function stamped(value: number): { params: ParamSet; state: TrainState } {
  const params = freshParams(1);
  for (const p of params.values()) p.data.fill(value);
  return { params, state: { step: value, samplerRng: value, dropoutRng: value, elapsedMs: value, best: null, configHash: 'h' } };
}

function loadStamp(dir: string): number {
  const params = freshParams(2);
  const state = loadCheckpoint(dir, params, createOptimizer({ kind: 'adam' }));
  for (const p of params.values()) assert.ok(p.data.every((v) => v === state.step), `${p.name} is not from step ${state.step}`);
  return state.step;
}

test('a checkpoint write that fails at any point leaves the previous checkpoint (or the new one) loadable, and no temp file', () => {
  const stages: CheckpointWriteStage[] = ['encoded', 'temp-written', 'renamed'];
  for (const stage of stages) {
    const dir = tmp();
    const good = stamped(1);
    saveCheckpoint(dir, good.params, createOptimizer({ kind: 'adam' }), good.state);
    const next = stamped(2);
    assert.throws(() => saveCheckpoint(dir, next.params, createOptimizer({ kind: 'adam' }), next.state, (s) => {
      if (s === stage) throw new Error(`crash at ${s}`);
    }), /crash at/);
    assert.equal(loadStamp(dir), stage === 'renamed' ? 2 : 1, stage);
    assert.deepEqual(readdirSync(dir), ['train-state.safetensors'], stage);
  }
});

test('a checkpoint that cannot be written is an fs-failed error naming it', () => {
  const blocker = join(tmp(), 'not-a-folder');
  writeFileSync(blocker, 'x');
  const { params, state } = stamped(1);
  assert.throws(() => saveCheckpoint(blocker, params, createOptimizer({ kind: 'adam' }), state),
    (err) => isEmsegError(err, 'fs-failed') && err.path === checkpointPath(blocker));
});

test('a writer killed at random moments always leaves a whole checkpoint', async () => {
  const dir = tmp();
  // The child rewrites the checkpoint as fast as it can; each save has weights equal to its step.
  const script = `
    import { saveCheckpoint } from ${JSON.stringify(join(root, 'dist/src/train/checkpoint.js'))};
    import { createOptimizer } from ${JSON.stringify(join(root, 'dist/src/nn/optim.js'))};
    const w = new Float32Array(200000);
    const params = new Map([['c1.weight', { name: 'c1.weight', shape: [w.length], data: w, grad: w }]]);
    for (let step = 1; ; step++) {
      w.fill(step);
      saveCheckpoint(${JSON.stringify(dir)}, params, createOptimizer({ kind: 'sgd' }),
        { step, samplerRng: 0, dropoutRng: 0, elapsedMs: 0, best: null, configHash: 'h' });
      if (step === 3) process.stdout.write('ready\\n');
    }`;
  for (let round = 0; round < 4; round++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 20 + 37 * round));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const w = new Float32Array(200000);
    const params = new Map([['c1.weight', { name: 'c1.weight', shape: [w.length], data: w, grad: w }]]);
    const state = loadCheckpoint(dir, params, createOptimizer({ kind: 'sgd' }));
    assert.ok(state.step >= 3 && w.every((v) => v === state.step), `round ${round}: weights disagree with step ${state.step}`);
  }
});

test('older two-file checkpoints load when their files agree and are refused (checkpoint-corrupt) when not', () => {
  const dir = tmp();
  const { params } = stamped(4);
  const tensors = new Map([...params.values()].map((p) => [p.name, { shape: p.shape, data: p.data }]));
  writeFileSync(checkpointPath(dir), encodeSafetensors(tensors, { step: '4' }));
  const state = { step: 4, samplerRng: 1, dropoutRng: 2, elapsedMs: 3, best: null, configHash: 'h', optimizerSteps: 4 };
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
  assert.equal(loadStamp(dir), 4);
  assert.equal(readCheckpointState(dir).elapsedMs, 3);
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...state, step: 5 }));
  assert.throws(() => loadStamp(dir), (err) => isEmsegError(err, 'checkpoint-corrupt'));
  // Saving over it in the new format retires state.json.
  const next = stamped(6);
  saveCheckpoint(dir, next.params, createOptimizer({ kind: 'adam' }), next.state);
  assert.equal(existsSync(join(dir, 'state.json')), false);
  assert.equal(loadStamp(dir), 6);
});

test('a truncated checkpoint is refused with checkpoint-corrupt, not a crash', () => {
  const dir = tmp();
  const good = stamped(1);
  saveCheckpoint(dir, good.params, createOptimizer({ kind: 'adam' }), good.state);
  truncateSync(checkpointPath(dir), 100);
  assert.throws(() => loadStamp(dir), (err) => isEmsegError(err, 'checkpoint-corrupt'));
  assert.throws(() => readCheckpointState(dir), (err) => isEmsegError(err, 'checkpoint-corrupt'));
});

test('divergence rule: non-finite losses, and losses far above the first steps\' median', () => {
  assert.equal(lossDivergence(0.7, []), null);
  assert.notEqual(lossDivergence(NaN, []), null);
  assert.notEqual(lossDivergence(Infinity, [0.7]), null);
  assert.equal(divergenceBound([0.5, 0.7, 0.6]), 600);
  assert.equal(divergenceBound([0.001]), 10, 'the absolute floor applies to tiny reference losses');
  assert.equal(lossDivergence(5, [0.7, 0.6]), null);
  assert.notEqual(lossDivergence(1e25, [0.7, 0.6]), null);
  const params = freshParams(1);
  assert.equal(nonFiniteParam(params), null);
  params.get('fc1.weight')!.data[3] = NaN;
  assert.equal(nonFiniteParam(params), 'fc1.weight');
});

function syntheticData(sections: number, size: number) {
  const images = new Float32Array(sections * size * size);
  const labels = new Uint8Array(sections * size * size);
  const rng = new Rng(1);
  for (let i = 0; i < images.length; i++) {
    const x = i % size;
    const y = Math.floor(i / size) % size;
    labels[i] = x % 8 === 0 || y % 9 === 0 ? 1 : 0;
    images[i] = labels[i] ? 0.2 + 0.1 * rng.next() : 0.7 + 0.1 * rng.next();
  }
  return { images: { width: size, height: size, depth: sections, data: images },
    labels: { width: size, height: size, depth: sections, data: labels }, source: { synthetic: true } };
}

function config(out: string, steps: number, lr: number): TrainConfig {
  return { model: 'tiny-patch', spec, out, trainSections: [0, 1], validationSections: [2], tile: 6, batch: 2, steps,
    stepsPerEpoch: 1, optimizer: { kind: 'sgd', momentum: 0.9 }, schedule: { kind: 'constant', lr }, balance: 'weights',
    elastic: null, jitter: null, seed: 3, checkpointMinutes: 0, checkpointSteps: 1, select: 'v_rand' };
}

test('a diverging run stops with "diverged" naming the step; its checkpoint and best model stay finite', async () => {
  const out = tmp();
  const backend = createReferenceBackend('float32');
  const steps: number[] = [];
  let diverged: TrainingDiverged | undefined;
  await assert.rejects(train(config(out, 50, 1000), syntheticData(3, 24), backend, { onStep: (r) => steps.push(r.step) }),
    (err) => {
      diverged = err instanceof TrainingDiverged ? err : undefined;
      return isEmsegError(err, 'diverged') && diverged !== undefined
        && [steps.length, steps.length + 1].includes(diverged.step) && err.message.includes(`step ${diverged.step}`);
    });
  assert.ok(steps.length < 50, 'lr 1000 must not survive 50 steps');
  const log = readFileSync(join(out, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.at(-1).type, 'diverged');
  if (checkpointExists(join(out, 'checkpoint'))) {
    const params = initParams(tileGeometry(spec, 6, 6, 6).plan, 0);
    const state = loadCheckpoint(join(out, 'checkpoint'), params, createOptimizer({ kind: 'sgd' }));
    assert.ok(state.step <= steps.length);
    assert.equal(nonFiniteParam(params), null);
  }
  if (existsSync(join(out, 'weights.safetensors'))) {
    const best = loadModel(out);
    assert.equal(nonFiniteParam(best.params), null);
    assert.ok((best.meta.step as number) < diverged!.weightsStep, 'the best model is not the weights that blew up');
    assert.ok(Number.isFinite((best.meta.validation as { v_rand?: number }).v_rand), 'the best model has a finite score');
  }
});

test('a loss exploding after healthy steps keeps the last best model that a later loss vouched for', async () => {
  // The reference backend, with the loss of the 5th step replaced by an exploded one.
  const reference = createReferenceBackend('float32');
  let calls = 0;
  const backend: Backend = { ...reference, softmaxCrossEntropy: (logits, target) => {
    const result = reference.softmaxCrossEntropy(logits, target);
    return ++calls === 5 ? { ...result, loss: 1e25 } : result;
  } };
  const out = tmp();
  // Nothing held back: every validation makes a new best, so the one at step 4 is waiting when step 5 blows up.
  await assert.rejects(train({ ...config(out, 50, 0.01), validationSections: [] }, syntheticData(3, 24), backend),
    (err) => err instanceof TrainingDiverged && err.code === 'diverged' && err.step === 5 && err.weightsStep === 4);
  // The weights validated at step 4 are the ones whose loss exploded: the best model on disk is step 3's.
  assert.equal(loadModel(out).meta.step, 3);
  assert.equal(readCheckpointState(join(out, 'checkpoint')).step, 4, 'the last checkpoint stays');
  const log = readFileSync(join(out, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(log.at(-1), { type: 'diverged', step: 5, loss: 1e25, reason: log.at(-1).reason, discardedBest: 4 });
});

test('a run that crashes while writing a checkpoint resumes from the previous one and ends as an uninterrupted run', async () => {
  const data = syntheticData(3, 24);
  const backend = createReferenceBackend('float32');
  const straight = tmp();
  await train(config(straight, 6, 0.01), data, backend);
  for (const stage of ['encoded', 'temp-written'] as const) {
    const crashed = tmp();
    let saves = 0;
    await assert.rejects(train(config(crashed, 6, 0.01), data, backend, {
      checkpointFault: (s) => {
        if (s === stage && ++saves === 4) throw new Error('crash');
      },
    }), /crash/);
    assert.equal(readCheckpointState(join(crashed, 'checkpoint')).step, 3, stage);
    await train(config(crashed, 6, 0.01), data, backend, {}, true);
    const weights = (dir: string) => {
      const params = freshParams(0);
      const state = loadCheckpoint(join(dir, 'checkpoint'), params, createOptimizer({ kind: 'sgd' }));
      return { step: state.step, lossReference: state.lossReference, params: [...params.values()].map((p) => [...p.data]) };
    };
    assert.deepEqual(weights(crashed), weights(straight), stage);
  }
});

test('a best model still waiting for the next loss when the run dies is written by the resumed run', async () => {
  const data = syntheticData(3, 24);
  const backend = createReferenceBackend('float32');
  const out = tmp();
  const run = { ...config(out, 6, 0.01), validationSections: [] };
  let saves = 0;
  // Dies right after the checkpoint of step 4 is in place, before step 5 could vouch for step 4's weights.
  await assert.rejects(train(run, data, backend, { checkpointFault: (s) => {
    if (s === 'renamed' && ++saves === 4) throw new Error('crash');
  } }), /crash/);
  assert.equal(loadModel(out).meta.step, 3);
  const onDisk: unknown[] = [];
  await train(run, data, backend, { onStep: () => onDisk.push(loadModel(out).meta.step) }, true);
  assert.deepEqual(onDisk, [4, 5], 'after each step, the best model validated one step earlier');
  assert.equal(loadModel(out).meta.step, 6);
});

test('--checkpoint-every takes steps or minutes; the older --checkpoint-minutes is an alias', async () => {
  assert.deepEqual(parseCheckpointEvery('500'), { checkpointMinutes: 0, checkpointSteps: 500 });
  assert.deepEqual(parseCheckpointEvery('10m'), { checkpointMinutes: 10 });
  assert.deepEqual(parseCheckpointEvery('0.5m'), { checkpointMinutes: 0.5 });
  for (const bad of ['0', '-3', '10x', 'm', '']) {
    assert.throws(() => parseCheckpointEvery(bad), (err) => isEmsegError(err, 'invalid-option') && err.path === '--checkpoint-every', bad);
  }
  assert.deepEqual(checkpointInterval(undefined, 7), { checkpointMinutes: 7 });
  assert.deepEqual(checkpointInterval(undefined, undefined), { checkpointMinutes: 3 });
  assert.throws(() => checkpointInterval({ checkpointMinutes: 1 }, 2), (err) => isEmsegError(err, 'invalid-option'));

  const saved: number[] = [];
  const every3 = { ...config(tmp(), 7, 0.01), checkpointSteps: 3, checkpointMinutes: 1e6 };
  await train(every3, syntheticData(3, 24), createReferenceBackend('float32'), { onCheckpoint: (s) => saved.push(s) });
  assert.deepEqual(saved, [3, 6, 7]);
});

test('the training memory estimate grows with tile and batch, and an oversized tile is refused (too-large)', async () => {
  const fakhry = resolveSpec('fakhry-a');
  const at = (tile: number, batch: number) => estimateTrainingMemory(tileGeometry(fakhry, tile, tile, tile).plan, batch, 'adam').totalBytes;
  assert.ok(at(128, 2) > 2.5 * at(64, 2) && at(64, 4) > 1.9 * at(64, 2));
  const plan = tileGeometry(fakhry, 64, 64, 64).plan;
  assert.throws(() => checkTrainingMemory(plan, 2, 'adam', at(64, 2)),
    (err) => isEmsegError(err, 'too-large') && err.path === '--tile');
  assert.doesNotThrow(() => checkTrainingMemory(plan, 2, 'adam', 10 * at(64, 2)));
  assert.throws(() => checkTrainingMemory(plan, 64, 'adam', 10 * at(64, 2)),
    (err) => isEmsegError(err, 'too-large') && err.path === '--batch', 'one tile fits: the batch is too large');
  const job: TrainJob = { images: join(samples, 'images'), labels: join(samples, 'labels'), polarity: 'membrane-0-interior-255',
    out: tmp(), model: 'fakhry-a', val: [], resume: false, overwrite: false, tile: 50_000, batch: 2, steps: 1, epochSteps: 1,
    optimizer: 'adam', lr: 1e-3, momentum: 0.9, weightDecay: 0, schedule: 'constant', warmup: 1, balance: 'weights',
    select: 'v_rand', seed: 1, checkpointMinutes: 3 };
  await assert.rejects(runTrain(job, createReferenceBackend('float32'), {}), (err) => isEmsegError(err, 'too-large'));
});

// ---- the real CLI in a child process: signals stop after a step with a checkpoint and a non-zero exit.

const trainArgs = (out: string, steps: number) => [emseg, 'train', '--images', join(samples, 'images'), '--labels',
  join(samples, 'labels'), '--out', out, '--model', 'fakhry-a', '--val', 'none', '--tile', '16', '--batch', '1',
  '--steps', String(steps), '--schedule', 'constant', '--checkpoint-every', '60m', '--quiet'];

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function run(args: string[], onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<Exit> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  onSpawn?.(child);
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Resolves once the run has logged `count` steps. */
async function stepsLogged(out: string, count: number): Promise<void> {
  const log = join(out, 'train-log.jsonl');
  for (;;) {
    if (existsSync(log) && readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} stops train after the current step, saves a checkpoint, exits ${status}; --resume continues from it`, async () => {
    const out = tmp();
    const stopped = await run(trainArgs(out, 100_000), (child) => {
      void stepsLogged(out, 1).then(() => child.kill(signal));
    });
    assert.equal(stopped.code, status, stopped.stderr);
    const saved = readCheckpointState(join(out, 'checkpoint')).step;
    assert.ok(saved >= 1);
    assert.match(stopped.stdout, new RegExp(`stopped by ${signal} at step ${saved}`));
    const resumed = await run([...trainArgs(out, saved + 2), '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const steps = readFileSync(join(out, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .filter((r) => r.type === 'step').map((r) => r.step as number);
    assert.deepEqual(steps.slice(-3), [saved, saved + 1, saved + 2], 'the resumed run continues at the saved step');
    assert.equal(readCheckpointState(join(out, 'checkpoint')).step, saved + 2);
  });
}

test('after the first stop signal, a second one ends the process at once, even in the middle of synchronous work', async () => {
  // The stop handler alone, in a child that then busies itself far longer than the test waits.
  const script = `
    import { trapStopSignals } from ${JSON.stringify(join(root, 'dist/src/cli/train.js'))};
    const stop = trapStopSignals();
    process.kill(process.pid, 'SIGINT');
    setTimeout(() => {
      process.stdout.write('first:' + stop.signal + '\\n');
      const until = Date.now() + 60_000;
      while (Date.now() < until);
      process.stdout.write('survived\\n');
    }, 50);`;
  const exit = await run(['--input-type=module', '-e', script], (child) => {
    child.stdout!.once('data', () => child.kill('SIGTERM'));
  });
  assert.match(exit.stdout, /first:SIGINT/);
  assert.doesNotMatch(exit.stdout, /survived/);
  assert.equal(exit.signal, 'SIGTERM');
});

test('--hold-out sections are neither trained on nor validated on; overlaps, unknown sections and nothing left are refused', async () => {
  const job = (val: number[], holdOut: number[]): TrainJob => ({ images: join(samples, 'images'), labels: join(samples, 'labels'),
    polarity: 'membrane-0-interior-255', out: tmp(), model: 'fakhry-a', val, holdOut, resume: false, overwrite: false, tile: 16,
    batch: 1, steps: 1, epochSteps: 1, optimizer: 'adam', lr: 1e-3, momentum: 0.9, weightDecay: 0, schedule: 'constant', warmup: 1,
    balance: 'weights', select: 'v_rand', seed: 1, checkpointMinutes: 3 });
  const backend = createReferenceBackend('float32');
  const refused = (path: string, message: RegExp) => (err: unknown) => isEmsegError(err, 'invalid-option') && err.path === path && message.test(err.message);
  await assert.rejects(runTrain(job([1], [1]), backend, {}), refused('--hold-out', /also a validation section/));
  await assert.rejects(runTrain(job([], [5]), backend, {}), refused('--hold-out', /section 5 does not exist/));
  await assert.rejects(runTrain(job([1], [0]), backend, {}), refused('--val', /no section is left/));
  const ok = job([], [1]);
  await runTrain(ok, backend, {});
  const meta = loadModel(ok.out).meta as { training: { trainSections: number[]; validationSections: number[] } };
  assert.deepEqual(meta.training.trainSections, [0]);
  assert.deepEqual(meta.training.validationSections, []);
});
