import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EmsegError, isEmsegError, type EmsegErrorCode } from '../src/errors.js';
import { MANIFEST_FILE, checkOutputPath, outputFormatFor, readStack, writeStack } from '../src/io/index.js';
import { saveModel } from '../src/models/model-dir.js';
import { initParams } from '../src/nn/params.js';
import { planModel } from '../src/nn/plan.js';
import { parseModelSpec } from '../src/nn/spec.js';
import { runPredict } from '../src/pipeline/predict.js';
import { labelOutputFormat, runSegment } from '../src/pipeline/segment.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/segment/index.js';
import { writeDirectoryAtomic, writeFileAtomic } from '../src/io/atomic.js';
import { cleanupTempFiles, registerTemp, sweepStaleTemps } from '../src/util/temp-files.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(root, 'bin/emseg.js');
const SAMPLE = join(root, 'samples/isbi2012/images/23.png');
const TEMP = /^\..*\.tmp$/;
/** A guard against a hung child, not a speed target: the runs below take seconds. */
const HANG_GUARD_MS = 120_000;
const POLL_MS = 50;
const TIFF_HEADER_BYTES = 8;

const fresh = () => mkdtempSync(join(tmpdir(), 'emseg-outputs-'));
const stack = (v: number, depth = 2) => ({ width: 2, height: 2, depth, data: new Uint8Array(4 * depth).fill(v) });
const refused = (code: EmsegErrorCode, path?: string) => (err: unknown) =>
  isEmsegError(err, code) && (path === undefined || err.path === path);
const temps = (dir: string) => readdirSync(dir).filter((f) => TEMP.test(f));

const spec = parseModelSpec({
  name: 'tiny', window: 7,
  layers: [{ type: 'conv', name: 'c1', out: 3, kernel: 2 }, { type: 'relu' }, { type: 'pool', kernel: 2 },
    { type: 'dense', name: 'fc', out: 2 }, { type: 'softmax' }],
});

function tinyModel(dir: string): string {
  const model = join(dir, 'model');
  saveModel(model, spec, initParams(planModel(spec, 7, 7), 4), {});
  return model;
}

/** A folder of `n` links to one bundled ISBI section: a stack slow enough on the reference backend to be killed mid-run. */
function sectionFolder(dir: string, n: number): string {
  const folder = join(dir, 'sections');
  mkdirSync(folder);
  for (let i = 0; i < n; i++) symlinkSync(SAMPLE, join(folder, `${String(i).padStart(3, '0')}.png`));
  return folder;
}

const predictBase = { tta: false, bf16: false, tile: 16, backend: 'reference' as const, membraneProb: false };

test('--overwrite never replaces a FIFO, a device node or a symbolic link, with any writer', async (t) => {
  const dir = fresh();
  const fifo = join(dir, 'fifo.tif');
  execFileSync('mkfifo', [fifo]);
  const outside = join(fresh(), 'precious.tif');
  writeFileSync(outside, 'not yours');
  const link = join(dir, 'link.tif');
  symlinkSync(outside, link);
  const specials = [fifo, link];
  const device = join(dir, 'null.tif');
  try {
    execFileSync('mknod', [device, 'c', '1', '3'], { stdio: 'pipe' }); // same numbers as /dev/null; needs root
    specials.push(device);
  } catch {
    t.diagnostic('mknod not permitted here: the device-node case is skipped');
  }
  for (const path of specials) {
    await assert.rejects(writeStack(path, stack(1), { overwrite: true }), refused('special-file', path));
    assert.throws(() => writeFileAtomic(path, 'x'), refused('special-file', path));
  }
  assert.ok(statSync(fifo).isFIFO());
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readFileSync(outside, 'utf8'), 'not yours');
  if (specials.includes(device)) assert.ok(statSync(device).isCharacterDevice());

  const folder = join(dir, 'slices');
  await writeStack(folder, stack(1));
  execFileSync('mkfifo', [join(folder, '0002.png')]);
  await assert.rejects(writeStack(folder, stack(2, 3), { overwrite: true }), refused('special-file', join(folder, '0002.png')));
  assert.deepEqual(Array.from((await readStack(join(folder, '000[01].png'))).data), new Array(8).fill(1), 'old output kept whole');
  assert.deepEqual(temps(dir).concat(temps(folder)), []);
});

test('an output is never one of the inputs: same file, hard link, path through a link, or the folder holding them', async () => {
  const dir = fresh();
  const model = tinyModel(dir);
  const input = join(dir, 'in.tif');
  await writeStack(input, { width: 24, height: 20, depth: 2, data: new Float32Array(2 * 24 * 20).fill(0.5) });
  const before = readFileSync(input);
  const hard = join(dir, 'hard.tif');
  linkSync(input, hard);
  symlinkSync(dir, join(dir, 'via'));
  const job = { ...predictBase, models: [model], input, overwrite: true };
  for (const out of [input, hard, join(dir, 'via', 'in.tif')]) {
    await assert.rejects(runPredict({ ...job, out, format: 'isbi' }), refused('is-input', out));
  }
  assert.deepEqual(readFileSync(input), before);

  const slices = join(dir, 'slices');
  await writeStack(slices, { width: 24, height: 20, depth: 2, data: new Uint8Array(2 * 24 * 20).fill(9) });
  for (const out of [slices, `${slices}/`]) {
    await assert.rejects(runPredict({ ...job, input: slices, out, format: 'png-folder' }), refused('is-input', out));
  }
  await assert.rejects(runPredict({ ...job, out: model, format: 'tiff-folder' }), refused('is-input', model));
  assert.deepEqual(Array.from((await readStack(slices)).data), new Array(2 * 24 * 20).fill(9));
});

test('a folder output replaces and removes only the files its manifest lists', async () => {
  const dir = fresh();
  const folder = join(dir, 'slices');
  await writeStack(folder, stack(1, 3));
  const manifest = () => JSON.parse(readFileSync(join(folder, MANIFEST_FILE), 'utf8')) as { files: string[] };
  assert.deepEqual(manifest().files, ['0000.png', '0001.png', '0002.png']);
  const mine = readFileSync(join(folder, '0000.png'));
  writeFileSync(join(folder, '0009.png'), mine);
  writeFileSync(join(folder, 'notes.txt'), 'my notes');

  await assert.rejects(writeStack(folder, stack(2, 2)), refused('exists'));
  await writeStack(folder, stack(2, 2), { overwrite: true });
  assert.deepEqual(readdirSync(folder).sort(), [MANIFEST_FILE, '0000.png', '0001.png', '0009.png', 'notes.txt'],
    'the stale 0002.png of the earlier output is removed; the user\'s 0009.png and notes are not');
  assert.deepEqual(manifest().files, ['0000.png', '0001.png']);
  assert.deepEqual(readFileSync(join(folder, '0009.png')), mine);

  writeFileSync(join(folder, '0002.png'), mine); // the user's own file where a new slice would go
  await assert.rejects(writeStack(folder, stack(3, 3), { overwrite: true }), refused('foreign-file', join(folder, '0002.png')));
  assert.deepEqual(readFileSync(join(folder, '0002.png')), mine);
  assert.deepEqual(Array.from((await readStack(join(folder, '000[01].png'))).data), new Array(8).fill(2));
  assert.deepEqual(temps(folder), []);

  writeFileSync(join(folder, MANIFEST_FILE), '{"files": ["../outside.png"]}');
  await assert.rejects(writeStack(folder, stack(3, 2), { overwrite: true }), refused('corrupt', join(folder, MANIFEST_FILE)));
});

test('segment pictures keep a manifest too: a user\'s picture is refused and no label stack is written', async () => {
  const dir = fresh();
  const maps = join(dir, 'maps.tif');
  await writeStack(maps, { width: 32, height: 32, depth: 2, data: new Float32Array(2 * 32 * 32).fill(0.9) });
  const pictures = join(dir, 'pictures');
  mkdirSync(pictures);
  writeFileSync(join(pictures, '0001.png'), 'my picture');
  const job = { pred: maps, out: join(dir, 'cells.tif'), membraneProb: false, pictures, options: { ...DEFAULT_SEGMENT_OPTIONS }, overwrite: true };
  await assert.rejects(runSegment(job), refused('foreign-file', join(pictures, '0001.png')));
  assert.equal(readFileSync(join(pictures, '0001.png'), 'utf8'), 'my picture');
  assert.ok(!existsSync(job.out));
  assert.deepEqual(temps(dir).concat(temps(pictures)), []);
  await assert.rejects(runSegment({ ...job, pictures: undefined, out: maps }), refused('is-input', maps));
});

test('the output path must fit the format: o.png is no TIFF, dir/ is no file, x.tif is no folder', async () => {
  const dir = fresh();
  for (const [path, format] of [['o.png', 'isbi'], ['o', 'isbi'], ['d/', 'isbi'], [dir, 'tiff'], ['x.tif', 'png-folder'],
    ['x.TIFF', 'tiff-folder'], ['x.png', 'png-folder']] as const) {
    assert.throws(() => checkOutputPath(path, format), refused('wrong-format', path), `${path} as ${format}`);
  }
  for (const [path, format] of [['o.tif', 'isbi'], ['o.tiff', 'tiff'], ['out', 'png-folder'], ['x.tif/', 'tiff-folder']] as const) {
    checkOutputPath(path, format);
  }
  assert.equal(outputFormatFor('d/'), 'png-folder');
  assert.equal(outputFormatFor(dir), 'png-folder');
  assert.throws(() => labelOutputFormat('cells.png'), refused('wrong-format', 'cells.png'));
  assert.equal(labelOutputFormat('cells/'), 'tiff-folder');
  assert.equal(labelOutputFormat('cells.tif'), 'tiff');

  const slash = `${join(dir, 'new')}/`;
  assert.deepEqual(await writeStack(slash, stack(1)), [join(dir, 'new', '0000.png'), join(dir, 'new', '0001.png')]);

  const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
  for (const out of ['o.png', 'o.tif/']) {
    const r = cli(['predict', '--model', 'no-model-needed', '--input', 'none', '--out', out]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^emseg: ${out.replace('.', '\\.')}: .*isbi`));
  }
  const r = cli(['segment', '--pred', 'none.tif', '--out', 'cells.png']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^emseg: cells\.png: labels are 32-bit/);
  assert.deepEqual(readdirSync(dir), ['new']);
});

test('temporaries: registered ones are removed on demand; a dead process\'s are swept, nothing else is', async () => {
  const dir = fresh();
  const listeners = process.listenerCount('SIGTERM');
  const live = join(dir, '.x.tif.1.00000000.tmp');
  writeFileSync(live, 'partial');
  registerTemp(live);
  assert.equal(process.listenerCount('SIGTERM'), listeners + 1);
  assert.deepEqual(cleanupTempFiles(), [live]);
  assert.ok(!existsSync(live));
  assert.equal(process.listenerCount('SIGTERM'), listeners, 'with no temporary alive, signals get their default back');

  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const stale = join(dir, `.out.tif.${dead}.deadbeef.tmp`);
  const staleDir = join(dir, `.model.${dead}.0badf00d.tmp`);
  const ours = join(dir, `.out.tif.${process.pid}.cafebabe.tmp`);
  const theirs = join(dir, '.notes.tmp');
  for (const f of [stale, ours, theirs]) writeFileSync(f, 'x');
  mkdirSync(staleDir);
  writeFileSync(join(staleDir, 'weights.safetensors'), 'x');
  await writeStack(join(dir, 'out.tif'), stack(1));
  assert.deepEqual(temps(dir).sort(), ['.notes.tmp', `.out.tif.${process.pid}.cafebabe.tmp`]);
  assert.deepEqual(sweepStaleTemps(dir), [], 'a folder is swept once per process');
});

test('writeDirectoryAtomic replaces only a folder emseg wrote, never a link or a folder of the user\'s', () => {
  const dir = fresh();
  const target = join(dir, 'model');
  const fill = (v: string) => (d: string) => {
    mkdirSync(join(d, 'member'));
    writeFileSync(join(d, 'member', 'w.bin'), v);
    writeFileSync(join(d, 'meta.json'), v);
  };
  writeDirectoryAtomic(target, false, fill('1'));
  assert.throws(() => writeDirectoryAtomic(target, false, fill('2')), refused('exists', target));
  writeDirectoryAtomic(target, true, fill('2'));
  assert.equal(readFileSync(join(target, 'member', 'w.bin'), 'utf8'), '2');
  writeFileSync(join(target, 'member', 'mine.txt'), 'mine');
  assert.throws(() => writeDirectoryAtomic(target, true, fill('3')), refused('foreign-file', join(target, 'member', 'mine.txt')));
  assert.equal(readFileSync(join(target, 'meta.json'), 'utf8'), '2');

  const home = join(dir, 'home');
  mkdirSync(home);
  writeFileSync(join(home, 'thesis.tex'), 'years of work');
  assert.throws(() => writeDirectoryAtomic(home, true, fill('3')), refused('foreign-file', join(home, 'thesis.tex')));
  symlinkSync(home, join(dir, 'link'));
  assert.throws(() => writeDirectoryAtomic(join(dir, 'link'), true, fill('3')), refused('special-file'));
  assert.equal(readFileSync(join(home, 'thesis.tex'), 'utf8'), 'years of work');
  assert.deepEqual(temps(dir), []);
});

/** Starts `emseg predict` on the reference backend and resolves once it is writing pages into its temporary. */
async function predictUntilWriting(dir: string, input: string, model: string, out: string) {
  const child = spawn(process.execPath, [BIN, 'predict', '--model', model, '--input', input, '--out', out,
    '--backend', 'reference', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })));
  const deadline = Date.now() + HANG_GUARD_MS;
  for (;;) {
    const tmp = temps(dir).find((f) => statSync(join(dir, f)).size > TIFF_HEADER_BYTES);
    if (tmp !== undefined) return { child, exited, tmp, stderr: () => stderr };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      assert.fail(`predict never started writing (exit ${child.exitCode}): ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

test('emseg predict interrupted by SIGINT or SIGTERM exits 130 or 143 and leaves no temporary file', async () => {
  const dir = fresh();
  const model = tinyModel(dir);
  const input = sectionFolder(dir, 100);
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const out = join(dir, `maps-${signal}.tif`);
    const run = await predictUntilWriting(dir, input, model, out);
    run.child.kill(signal);
    assert.deepEqual(await run.exited, { code: status, signal: null }, run.stderr());
    assert.deepEqual(temps(dir), []);
    assert.ok(!existsSync(out));
  }
});

test('a temporary left by a killed predict (SIGKILL) is removed, and reported, by the next run writing there', async () => {
  const dir = fresh();
  const model = tinyModel(dir);
  const input = sectionFolder(dir, 100);
  const run = await predictUntilWriting(dir, input, model, join(dir, 'maps.tif'));
  run.child.kill('SIGKILL');
  assert.equal((await run.exited).signal, 'SIGKILL');
  assert.deepEqual(temps(dir), [run.tmp], 'SIGKILL cannot be caught: the temporary stays until the next run');
  const next = spawnSync(process.execPath, [BIN, 'predict', '--model', model, '--input', SAMPLE, '--out', join(dir, 'one.tif'),
    '--backend', 'reference', '--quiet'], { encoding: 'utf8' });
  assert.equal(next.status, 0, next.stderr);
  assert.ok(next.stderr.includes(`removed ${join(dir, run.tmp)}`), next.stderr);
  assert.deepEqual(temps(dir), []);
  assert.equal((await readStack(join(dir, 'one.tif'))).depth, 1);
});

test('an error of the slice producer reaches the caller as it is, and its output leaves nothing behind', async () => {
  const dir = fresh();
  async function* failing() {
    yield { width: 2, height: 2, data: new Uint8Array(4) };
    throw new EmsegError('invalid-option', '--sigma', 'simulated producer error');
  }
  for (const out of [join(dir, 'o.tif'), join(dir, 'slices')]) {
    await assert.rejects(writeStack(out, failing()), refused('invalid-option', '--sigma'));
  }
  assert.throws(() => writeDirectoryAtomic(join(dir, 'model'), false, () => {
    throw new EmsegError('invalid-option', '--f16', 'simulated fill error');
  }), refused('invalid-option', '--f16'));
  assert.deepEqual(readdirSync(dir), []);
});
