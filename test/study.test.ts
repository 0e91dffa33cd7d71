import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeStack } from '../src/io/index.js';
import { parseStudy, readStudyFile, type StudyInput } from '../src/study/schema.js';
import { runFingerprint, type RunTask } from '../src/study/run.js';
import { runStudy, type StudyEvent } from '../src/study/study.js';
import type { StudySummary } from '../src/study/summary.js';
import { applyEdits, checkExpectations, planVariants } from '../src/study/variants.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { Rng } from '../src/util/rng.js';
import { refused } from './helpers/errors.js';

// A tiny patch classifier (window 11): conv 4x4, 2x2 pooling, conv 2x2, two dense layers.
const tinySpec = {
  name: 'tiny', window: 11,
  layers: [
    { type: 'conv', name: 'c1', out: 3, kernel: 4 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'conv', name: 'c2', out: 4, kernel: 2 }, { type: 'relu' },
    { type: 'dense', name: 'fc1', out: 6 }, { type: 'relu' }, { type: 'dense', name: 'fc2', out: 2 }, { type: 'softmax' },
  ],
};

/** Synthetic EM-like stack: dark membrane lines on a noisy bright background, labels membrane-0-interior-255. */
async function writeData(dir: string): Promise<{ images: string; labels: string }> {
  const [w, h, d] = [24, 24, 4];
  const rng = new Rng(3);
  const images = new Float32Array(w * h * d);
  const labels = new Uint8Array(w * h * d);
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const membrane = (x + 2 * z) % 8 === 0 || (y + z) % 9 === 0;
        const i = z * w * h + y * w + x;
        images[i] = Math.min(1, Math.max(0, (membrane ? 0.2 : 0.75) + 0.15 * (rng.next() - 0.5)));
        labels[i] = membrane ? 0 : 255;
      }
    }
  }
  const paths = { images: join(dir, 'images'), labels: join(dir, 'labels') };
  await writeStack(paths.images, { width: w, height: h, depth: d, data: images });
  await writeStack(paths.labels, { width: w, height: h, depth: d, data: labels });
  return paths;
}

function tinyStudy(data: { images: string; labels: string }, variants: StudyInput['variants']): StudyInput {
  return {
    name: 'tiny-study', base: tinySpec, variants,
    data: { ...data, polarity: 'membrane-0-interior-255', validation: [3] },
    budget: { steps: 4 }, seeds: [1, 2],
    training: { tile: 6, batch: 1, warmup: 1, backend: 'reference', checkpointMinutes: 60 },
  };
}

function collect(): { events: StudyEvent[]; onEvent: (e: StudyEvent) => void; count: (t: StudyEvent['type']) => number } {
  const events: StudyEvent[] = [];
  return { events, onEvent: (e) => events.push(e), count: (t) => events.filter((e) => e.type === t).length };
}

test('a two-variant study runs end to end, writes its summary and plots, and skips finished runs when re-run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-study-'));
  const data = await writeData(join(dir, 'data'));
  const study = parseStudy(tinyStudy(data, [
    { name: 'base' },
    { name: 'k2', edits: [{ layer: 'c1', set: { kernel: 2 } }] },
    { name: 'broken', edits: [{ layer: 'nope', set: { kernel: 2 } }] },
  ]));
  const out = join(dir, 'out');

  // Two jobs at once, each in a child process (the CLI's default path).
  const first = collect();
  const outcome = await runStudy(study, { out, jobs: 2, cores: 2, onEvent: first.onEvent });
  assert.equal(outcome.trained, 4);
  assert.equal(outcome.failed, 0);
  assert.equal(first.count('start'), 4);
  assert.equal(first.count('finish'), 4);

  // The invalid variant is reported with its name and error; the others ran.
  const broken = outcome.plans.find((p) => p.name === 'broken')!;
  assert.match(broken.error!, /no layer named "nope"/);
  const summary = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')) as StudySummary;
  assert.match(summary.variants.find((v) => v.name === 'broken')!.error!, /nope/);
  for (const name of ['base', 'k2']) {
    const v = summary.variants.find((x) => x.name === name)!;
    assert.deepEqual(v.runs, { done: 2, failed: 0, total: 2 });
    assert.ok(v.params! > 0 && v.flopsPerPixel! > 0 && v.window === 11);
    for (const m of ['pixel_error', 'rand_error', 'warping_error', 'v_rand', 'v_info'] as const) {
      const s = v.metrics[m]!;
      assert.equal(s.n, 2);
      assert.ok(Number.isFinite(s.mean) && s.min <= s.mean && s.mean <= s.max && s.sd !== null, `${name} ${m}`);
    }
    for (const seed of [1, 2]) {
      const run = join(out, name, `seed-${seed}`);
      const result = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8'));
      assert.equal(result.steps, 4);
      assert.equal(result.threads, 1);
      assert.ok(result.trainingMs >= 0);
      for (const f of ['spec.json', 'weights.safetensors', 'meta.json', 'checkpoint']) assert.ok(existsSync(join(run, f)), f);
    }
  }
  assert.equal(summary.variants.find((v) => v.name === 'base')!.receptiveField, 11);
  const md = readFileSync(join(out, 'study.md'), 'utf8');
  assert.match(md, /\| base \|/);
  assert.match(md, /broken.*invalid/s);
  assert.match(md, /sample standard deviation/);
  const plots = readdirSync(join(out, 'plots'));
  assert.ok(plots.includes('v_rand-by-variant.svg') && plots.includes('v_rand-vs-flops.svg'), plots.join());
  assert.match(readFileSync(join(out, 'study.svg'), 'utf8'), /^<svg/);

  // Re-running skips every finished run and leaves its files alone.
  const resultPath = join(out, 'k2', 'seed-2', 'result.json');
  const mtime = statSync(resultPath).mtimeMs;
  const again = collect();
  const second = await runStudy(study, { out, fork: false, onEvent: again.onEvent });
  assert.equal(second.trained, 0);
  assert.equal(second.reused, 4);
  assert.equal(again.count('skip'), 4);
  assert.equal(again.count('start'), 0);
  assert.equal(statSync(resultPath).mtimeMs, mtime);

  // A run interrupted after training (checkpoint, no result) resumes from its checkpoint: same weights, same scores.
  const before = JSON.parse(readFileSync(resultPath, 'utf8'));
  rmSync(resultPath);
  const third = collect();
  const resumed = await runStudy(study, { out, fork: false, onEvent: third.onEvent });
  assert.equal(resumed.trained, 1);
  const start = third.events.find((e) => e.type === 'start');
  assert.ok(start && start.type === 'start' && start.resumed);
  const after = JSON.parse(readFileSync(resultPath, 'utf8'));
  assert.equal(after.resumed, true);
  assert.deepEqual(after.metrics, before.metrics);
  rmSync(dir, { recursive: true, force: true });
});

test('a failing run is reported and does not stop the others', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-study-'));
  const data = await writeData(join(dir, 'data'));
  const study = parseStudy({ ...tinyStudy(data, [{ name: 'a' }, { name: 'b', edits: [{ layer: 'fc1', set: { out: 3 } }] }]), seeds: [1] });
  const out = join(dir, 'out');
  // The run folder of a/seed-1 is a plain file: that run cannot write anything.
  mkdirSync(join(out, 'a'), { recursive: true });
  writeFileSync(join(out, 'a', 'seed-1'), 'in the way');
  const ev = collect();
  const outcome = await runStudy(study, { out, fork: false, onEvent: ev.onEvent });
  assert.equal(outcome.failed, 1);
  assert.equal(outcome.trained, 1);
  const summary = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')) as StudySummary;
  const failed = summary.runs.find((r) => r.variant === 'a')!;
  assert.equal(failed.status, 'failed');
  assert.ok(failed.error && failed.error.length > 0);
  assert.equal(summary.runs.find((r) => r.variant === 'b')!.status, 'done');
  assert.match(readFileSync(join(out, 'study.md'), 'utf8'), /Runs without a result[\s\S]*a seed 1/);

  // A finished run whose settings changed since is an error for that run, not a silent reuse.
  rmSync(join(out, 'a', 'seed-1'));
  const changed = parseStudy({ ...tinyStudy(data, [{ name: 'a' }, { name: 'b', edits: [{ layer: 'fc1', set: { out: 5 } }] }]), seeds: [1] });
  const rerun = await runStudy(changed, { out, fork: false });
  assert.equal(rerun.trained, 1);
  assert.match(rerun.summary.runs.find((r) => r.variant === 'b')!.error!, /different settings/);
  rmSync(dir, { recursive: true, force: true });
});

test('the schema rejects malformed study files with a message naming the field', () => {
  const good = tinyStudy({ images: 'i', labels: 'l' }, [{ name: 'a' }]);
  assert.doesNotThrow(() => parseStudy(good));
  const bad: [unknown, RegExp][] = [
    [{ ...good, budget: {} }, /field "budget".*steps.*minutes/],
    [{ ...good, seeds: 'two' }, /field "seeds"/],
    [{ ...good, variants: [{ name: 'a', edits: [{ layer: 'c1' }] }] }, /field "variants\.0\.edits\.0": an edit needs one of/],
    [{ ...good, variants: [{ name: 'a', edits: [{ replace: [{ type: 'relu' }] }] }] }, /field "variants\.0\.edits\.0\.layer"/],
    [{ ...good, variants: [{ name: 'a', edits: [{ layer: 'c1', set: {}, remove: true }] }] }, /does one thing/],
    [{ ...good, variants: [{ name: 'a/b' }] }, /field "variants\.0\.name"/],
    [{ ...good, variants: [{ name: 'a' }, { name: 'a' }] }, /field "variants\.1\.name": variant "a" is named twice/],
    [{ ...good, data: { ...good.data, validation: 'x' } }, /field "data\.validation"/],
    [{ ...good, training: { lr: -1 } }, /field "training\.lr"/],
    [{ ...good, training: { optimiser: 'adam' } }, /field "training".*optimiser/],
    [{ ...good, metrics: ['accuracy'] }, /field "metrics\.0"/],
    [{ ...good, budget: { minutes: 2 }, training: { schedule: 'cosine' } }, /field "training\.schedule"/],
  ];
  for (const [json, message] of bad) assert.throws(() => parseStudy(json, 'my-study.json'), (err: Error) => {
    assert.match(err.message, /^my-study\.json: /);
    assert.match(err.message, message);
    return true;
  });
  const resolved = parseStudy({ ...good, seeds: 3, data: { ...good.data, validation: '2-3,0' } });
  assert.deepEqual(resolved.seeds, [1, 2, 3]);
  assert.deepEqual(resolved.data.validation, [0, 2, 3]);
  assert.equal(resolved.metrics.length, 5);
  assert.equal(parseStudy({ ...good, budget: { minutes: 1 } }).training.schedule, 'constant');
});

test('edits set, replace, insert and remove layers and set the window; results are checked like any spec', () => {
  const base = parseModelSpec(tinySpec);
  const edited = applyEdits(base, [
    { layer: 'c1', replace: [{ type: 'conv', name: 'c1a', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'conv', name: 'c1b', out: 3, kernel: 3 }] },
    { layer: 'c2', insertAfter: [{ type: 'relu' }, { type: 'conv', name: 'c3', out: 4, kernel: 1 }] },
    { layer: 'fc1', remove: true, count: 2 },
    { layer: 'fc2', set: { bias: null } },
    { window: 13 },
  ]);
  const spec = parseModelSpec(edited);
  assert.equal(spec.window, 13);
  assert.deepEqual(spec.layers.map((l) => l.name ?? l.type),
    ['c1a', 'relu', 'c1b', 'relu', 'pool', 'c2', 'relu', 'c3', 'relu', 'fc2', 'softmax']);
  assert.throws(() => applyEdits(base, [{ layer: 'c1', remove: true, count: 99 }]), refused('invalid-study', 'edit 0 (-c1(+98))', /edit 0 .*past the last layer/));
  // Automatic names (type + index) and indices address unnamed layers.
  assert.equal((applyEdits(base, [{ layer: 'pool2', set: { kernel: 3 } }]).layers as { kernel?: number }[])[2]!.kernel, 3);
  assert.equal((applyEdits(base, [{ layer: 2, set: { kernel: 3 } }]).layers as { kernel?: number }[])[2]!.kernel, 3);
});

test('the shipped example studies are valid and meet their expectations', () => {
  const folder = fileURLToPath(new URL('../../examples/studies/', import.meta.url));
  // samples.json runs on the two bundled sections (test/study-examples.test.ts); the others are ISBI studies.
  const files = readdirSync(folder).filter((f) => f.endsWith('.json') && f !== 'samples.json');
  assert.ok(files.length >= 4, files.join());
  for (const f of files) {
    const study = readStudyFile(join(folder, f));
    assert.ok(study.seeds.length >= 2, f);
    assert.deepEqual(study.data.validation, [20, 21, 22, 23, 24], f);
    const plans = planVariants(study);
    for (const p of plans) assert.equal(p.error, undefined, `${f} ${p.name}: ${p.error}`);
    assert.deepEqual(checkExpectations(study, plans), [], f);
  }
  const stacked = planVariants(readStudyFile(join(folder, 'stacked-kernels.json')));
  assert.equal(new Set(stacked.map((p) => p.summary!.receptiveField)).size, 1);
});

test('a minutes budget stops training on the clock and scores the final weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'emseg-study-'));
  const data = await writeData(join(dir, 'data'));
  const study = parseStudy({ ...tinyStudy(data, [{ name: 'a' }]), seeds: [1], budget: { minutes: 0.01 } });
  assert.equal(study.training.schedule, 'constant');
  const out = join(dir, 'out');
  const outcome = await runStudy(study, { out, fork: false });
  assert.equal(outcome.trained, 1);
  const result = JSON.parse(readFileSync(join(out, 'a', 'seed-1', 'result.json'), 'utf8'));
  assert.equal(result.stoppedBy, 'minutes');
  assert.ok(result.steps > 0 && result.trainingMs >= 600, JSON.stringify(result));
  const meta = JSON.parse(readFileSync(join(out, 'a', 'seed-1', 'meta.json'), 'utf8'));
  assert.equal(meta.step, result.steps);
  rmSync(dir, { recursive: true, force: true });
});

test('a study run\'s fingerprint changes with a border or MALIS weight, and without them is what it was before the option existed', () => {
  const study = parseStudy({ name: 's', base: 'fakhry-b', variants: [{ name: 'a' }],
    data: { images: 'i', labels: 'l', validation: [0] }, budget: { steps: 10 } });
  const task = (training: Record<string, unknown>): RunTask => ({ study: 's', variant: 'a', seed: 1, dir: 'd',
    spec: parseModelSpec({ name: 'tiny', window: 3, layers: [{ type: 'conv', out: 2, kernel: 3 }, { type: 'softmax' }] }),
    model: 'tiny', data: study.data, training: training as RunTask['training'], budget: study.budget, metrics: ['pixel_error'], evalTile: 64 });
  const { borderWeight: _w, borderSigma: _s, malisWeight: _m, ...older } = study.training;
  assert.equal(study.training.borderWeight, 0);
  assert.equal(study.training.malisWeight, 0);
  assert.equal(runFingerprint(task(study.training)), runFingerprint(task(older)));
  assert.notEqual(runFingerprint(task({ ...study.training, borderWeight: 10 })), runFingerprint(task(study.training)));
  assert.notEqual(runFingerprint(task({ ...study.training, borderWeight: 10, borderSigma: 3 })),
    runFingerprint(task({ ...study.training, borderWeight: 10 })));
  assert.notEqual(runFingerprint(task({ ...study.training, malisWeight: 1 })), runFingerprint(task(study.training)));
});
