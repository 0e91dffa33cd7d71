/**
 * Volume outputs never destroy: `convert`, blockwise `predict` and `segment` with --overwrite replace only an
 * OME-Zarr folder emseg wrote that holds nothing else; never a folder of the user's files, a link, a file (an HDF5
 * file at the output path), an input, or a foreign Zarr. A conversion cut by a signal leaves no half-built output,
 * and one cut by kill -9 is removed (and named) by the next conversion into the same folder.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmsegError } from '../src/errors.js';
import { convertToOmeZarr } from '../src/pipeline/convert.js';
import { createOmeZarr } from '../src/io/formats/ome-zarr-write.js';
import { openVolume } from '../src/io/registry.js';
import { runVolumePredict } from '../src/pipeline/volume-predict.js';
import { runVolumeSegment } from '../src/pipeline/volume-segment.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../src/segment/index.js';
import { REPO_ROOT } from './helpers/data.js';
import { writeMaps } from './helpers/segment-maps.js';
import { sampleVolume, tempDir, writeVolume, zooModel } from './helpers/volume-predict-fixture.js';
import { writeHdf5 } from './helpers/volumes.js';

const CLI = join(REPO_ROOT, 'bin', 'emseg.js');
const TMP = tempDir('volume-outputs');
after(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const dir = join(TMP, `case${n++}`);
  mkdirSync(dir);
  return join(dir, name);
};

function refused(code: string, path?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof EmsegError, `expected an EmsegError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (path !== undefined) assert.equal(e.path, path, e.message);
    return true;
  };
}

async function smallZarr(dir: string): Promise<string> {
  const w = await createOmeZarr(dir, { shape: [2, 32, 32], dtype: 'uint8', chunks: [1, 32, 32], levels: 1 });
  await w.writeRegion({ start: [0, 0, 0], end: [2, 32, 32] }, Uint8Array.from({ length: 2 * 32 * 32 }, (_, i) => i % 251));
  return dir;
}

function emseg(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

test('convert --overwrite leaves a folder of the user\'s files alone (CLI: non-zero exit, the file named and kept)', async () => {
  const src = await smallZarr(fresh('src.zarr'));
  const out = fresh('d');
  mkdirSync(out);
  writeFileSync(join(out, 'thesis.docx'), 'years of work');
  const run = emseg('convert', src, out, '--overwrite', '--quiet');
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /thesis\.docx/);
  assert.equal(readFileSync(join(out, 'thesis.docx'), 'utf8'), 'years of work');
  const reader = await openVolume(src);
  await assert.rejects(convertToOmeZarr(reader, out, { overwrite: true }), refused('foreign-file', join(out, 'thesis.docx')));
  assert.deepEqual(readdirSync(out), ['thesis.docx']);
});

test('convert --overwrite never replaces a symbolic link, a file at the output path, or its own HDF5 input', async () => {
  const src = await smallZarr(fresh('src.zarr'));
  const reader = await openVolume(src);
  const target = fresh('elsewhere');
  mkdirSync(target);
  const link = join(TMP, `link${n++}.zarr`);
  symlinkSync(target, link);
  await assert.rejects(convertToOmeZarr(reader, link, { overwrite: true }), refused('special-file', link));
  assert.equal(readlinkSync(link), target);

  const other = fresh('other.h5');
  writeFileSync(other, 'an HDF5 file of the user');
  await assert.rejects(convertToOmeZarr(reader, other, { overwrite: true }), refused('wrong-format', other));
  assert.equal(readFileSync(other, 'utf8'), 'an HDF5 file of the user');

  const h5 = fresh('vol.h5');
  const data = Uint8Array.from({ length: 2 * 16 * 16 }, (_, i) => i % 200);
  await writeHdf5(h5, [{ path: '/raw', data, shape: [2, 16, 16], dtype: '<B' }, { path: '/labels', data, shape: [2, 16, 16], dtype: '<B' }]);
  const before = readFileSync(h5);
  const run = emseg('convert', `${h5}:/raw`, h5, '--overwrite', '--quiet');
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /input/);
  assert.deepEqual(readFileSync(h5), before);
  const h5reader = await openVolume(`${h5}:/raw`);
  await assert.rejects(convertToOmeZarr(h5reader, h5, { overwrite: true }), refused('is-input', h5));
  await h5reader.close();
});

test('convert --overwrite refuses a folder that holds its input, and a Zarr another program wrote', async () => {
  const src = await smallZarr(fresh('vol.zarr'));
  const level = await openVolume(join(src, '0'));
  await assert.rejects(convertToOmeZarr(level, src, { overwrite: true }), refused('is-input', src));
  assert.ok(existsSync(join(src, '0', '.zarray')));

  const foreign = fresh('foreign.zarr');
  mkdirSync(join(foreign, '0'), { recursive: true });
  writeFileSync(join(foreign, '.zgroup'), '{"zarr_format": 2}');
  writeFileSync(join(foreign, '.zattrs'), '{"multiscales": []}');
  await assert.rejects(convertToOmeZarr(level, foreign, { overwrite: true }), refused('foreign-file', foreign));
  assert.ok(existsSync(join(foreign, '.zattrs')));
  await level.close();
});

test('convert --overwrite replaces its own earlier output, and refuses it when a foreign file was added', async () => {
  const src = await smallZarr(fresh('src.zarr'));
  const reader = await openVolume(src);
  const out = fresh('out.zarr');
  await convertToOmeZarr(reader, out, { levels: 1 });
  await assert.rejects(convertToOmeZarr(reader, out, { levels: 1 }), refused('exists', out));
  await convertToOmeZarr(reader, out, { levels: 1, overwrite: true, compression: 'zlib' });
  assert.equal(JSON.parse(readFileSync(join(out, '0', '.zarray'), 'utf8')).compressor.id, 'zlib');
  writeFileSync(join(out, '0', 'notes.txt'), 'mine');
  await assert.rejects(convertToOmeZarr(reader, out, { levels: 1, overwrite: true }), refused('foreign-file', join(out, '0', 'notes.txt')));
  assert.equal(readFileSync(join(out, '0', 'notes.txt'), 'utf8'), 'mine');
  rmSync(join(out, '0', 'notes.txt'));
  symlinkSync('/etc/hostname', join(out, 'hostname'));
  await assert.rejects(convertToOmeZarr(reader, out, { levels: 1, overwrite: true }), refused('foreign-file', join(out, 'hostname')));
  await reader.close();
});

test('blockwise predict and segment --overwrite refuse an output holding a foreign file; resuming refuses a folder of other files', async () => {
  const dir = fresh('predict');
  mkdirSync(dir);
  const shape = [2, 40, 40] as const;
  const { zarr } = await writeVolume(dir, shape, await sampleVolume(shape), [1, 40, 40]);
  const model = zooModel(dir, 'fakhry-a', 3);
  const out = join(dir, 'm.zarr');
  const job = { models: [model], input: zarr, out, backend: 'reference' as const, tile: 16, tta: false, bf16: false,
    membraneProb: false, dtype: 'uint8' as const, block: [1, 40, 40] as const, restart: false, threads: 1 };
  await runVolumePredict({ ...job, overwrite: false });
  writeFileSync(join(out, 'notes.txt'), 'mine');
  await assert.rejects(runVolumePredict({ ...job, overwrite: true }), refused('foreign-file', join(out, 'notes.txt')));
  assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine');
  rmSync(join(out, 'notes.txt'));
  await runVolumePredict({ ...job, overwrite: true });

  const cells = join(dir, 'cells.zarr');
  const seg = { pred: out, out: cells, options: { ...DEFAULT_SEGMENT_OPTIONS }, overwrite: false };
  await runVolumeSegment(seg);
  writeFileSync(join(cells, 'notes.txt'), 'mine');
  await assert.rejects(runVolumeSegment({ ...seg, overwrite: true }), refused('foreign-file', join(cells, 'notes.txt')));
  assert.equal(readFileSync(join(cells, 'notes.txt'), 'utf8'), 'mine');

  const mine = join(dir, 'mine');
  mkdirSync(mine);
  writeFileSync(join(mine, 'data.csv'), '1,2,3');
  await assert.rejects(runVolumeSegment({ ...seg, out: join(mine, '') }), refused('foreign-file'));
  await assert.rejects(runVolumePredict({ ...job, out: mine, overwrite: false }), refused('foreign-file', join(mine, 'data.csv')));
  assert.deepEqual(readdirSync(mine), ['data.csv']);
});

test('segment --overwrite into maps.zarr/labels/cells still replaces its own labels image', async () => {
  const dir = fresh('seg');
  mkdirSync(dir);
  const maps = join(dir, 'maps.zarr');
  await writeMaps(maps, [2, 64, 64], [1, 64, 64]);
  const out = join(maps, 'labels', 'cells');
  const seg = { pred: maps, out, options: { ...DEFAULT_SEGMENT_OPTIONS }, overwrite: false };
  await runVolumeSegment(seg);
  await runVolumeSegment({ ...seg, overwrite: true });
  assert.ok(existsSync(join(out, '0', '.zarray')));
});

/** A 24 x 256 x 256 stack to convert: large enough that the conversion is still running when a signal comes. */
async function bigSource(): Promise<string> {
  const dir = fresh('big');
  mkdirSync(dir);
  const shape = [24, 256, 256] as const;
  return (await writeVolume(dir, shape, await sampleVolume(shape), [1, 256, 256])).stack;
}

/** Starts `emseg convert` with one-chunk-row chunks and waits until its hidden temporary output exists. */
async function startConvert(src: string, out: string) {
  const child = spawn(process.execPath, [CLI, 'convert', src, out, '--chunks', '1,32,32', '--compression', 'gzip', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  const folder = join(out, '..');
  for (let i = 0; i < 600 && !readdirSync(folder).some((f) => f.endsWith('.tmp')); i++) await sleep(50);
  assert.ok(readdirSync(folder).some((f) => f.endsWith('.tmp')), 'the conversion never started its temporary output');
  return { child, exited, stderr: () => stderr };
}

test('convert cut by SIGTERM removes its half-built output (exit 143); after kill -9 the next conversion removes and names it', async () => {
  const src = await bigSource();
  const out = fresh('out.zarr');
  const folder = join(out, '..');
  const term = await startConvert(src, out);
  term.child.kill('SIGTERM');
  assert.equal(await term.exited, 143);
  assert.deepEqual(readdirSync(folder), []);

  const killed = await startConvert(src, out);
  killed.child.kill('SIGKILL');
  await killed.exited;
  const left = readdirSync(folder).filter((f) => f.endsWith('.tmp'));
  assert.equal(left.length, 1, 'kill -9 leaves the temporary (nothing can remove it then)');
  const rerun = emseg('convert', join(src, '0000.png'), out, '--quiet');
  assert.equal(rerun.status, 0, rerun.stderr);
  assert.match(rerun.stderr, new RegExp(`removed .*${left[0]!.replace(/\./g, '\\.')}`));
  assert.deepEqual(readdirSync(folder), ['out.zarr']);
});
