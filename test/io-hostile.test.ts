/** Bad input and failed writes: a typed error naming the file, and never a partial output. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { EmsegIoError, encodeTiff, openStack, readStack, writeIsbiSubmission, writeStack } from '../src/io/index.js';
import type { SliceLike } from '../src/image/stack.js';
import { METRIC_FIXTURES, SAMPLES } from './helpers/data.js';

const FIXTURES = METRIC_FIXTURES;
const TMP = mkdtempSync(join(tmpdir(), 'emseg-io-hostile-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  return mkdtempSync(join(TMP, `t${dirCount++}-`));
}

function isIoError(code: string, path: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof EmsegIoError, `expected EmsegIoError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.path, path, e.message);
    assert.ok(e.message.includes(path), e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

const grey = (w: number, h: number, v = 7) => encodePng({ width: w, height: h, data: new Uint8Array(w * h).fill(v), depth: 8, channels: 1 });
const tiff3 = () => encodeTiff([0, 1, 2].map((z) => new Float32Array(64 * 64).fill(z / 2)), 64, 64);

/** Offset of the n-th IFD (from 0) of a little-endian TIFF. */
function ifdOffset(bytes: Uint8Array, n: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = v.getUint32(4, true);
  for (let i = 0; i < n; i++) off = v.getUint32(off + 2 + 12 * v.getUint16(off, true), true);
  return off;
}

/** Byte offset of the entry for `tag` in the first IFD. */
function entryOffset(bytes: Uint8Array, tag: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const off = ifdOffset(bytes, 0);
  for (let i = 0; i < v.getUint16(off, true); i++) if (v.getUint16(off + 2 + 12 * i, true) === tag) return off + 2 + 12 * i;
  throw new Error(`tag ${tag} not found`);
}

function patched(bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer));
  return copy;
}

test('missing path, empty folder, glob without match', async () => {
  const dir = freshDir();
  await assert.rejects(readStack(join(dir, 'nope')), isIoError('not-found', join(dir, 'nope'), /no such file/));
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'empty', '.hidden'), 'x');
  await assert.rejects(readStack(join(dir, 'empty')), isIoError('empty', join(dir, 'empty'), /no .png/));
  await assert.rejects(readStack(join(dir, '*.png')), isIoError('not-found', join(dir, '*.png'), /glob matches no file/));
});

test('non-image file in a slice folder, wrong magic bytes, empty file', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, '0.png'), grey(2, 2));
  writeFileSync(join(dir, 'notes.txt'), 'not a slice');
  await assert.rejects(readStack(dir), isIoError('not-image', join(dir, 'notes.txt'), /not an image/));
  rmSync(join(dir, 'notes.txt'));
  writeFileSync(join(dir, '1.png'), 'hello, I am text');
  await assert.rejects(readStack(dir), isIoError('not-image', join(dir, '1.png'), /wrong magic bytes/));
  writeFileSync(join(dir, '1.png'), '');
  await assert.rejects(readStack(dir), isIoError('corrupt', join(dir, '1.png'), /empty/));
  writeFileSync(join(dir, '1.png'), grey(2, 2).subarray(0, 20));
  await assert.rejects(readStack(dir), isIoError('corrupt', join(dir, '1.png'), /header/));
});

test('mixed sizes or sample types within a stack name the odd file', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, '1.png'), grey(2, 2));
  writeFileSync(join(dir, '2.png'), grey(2, 2));
  writeFileSync(join(dir, '10.png'), grey(3, 2));
  await assert.rejects(openStack(dir), isIoError('mismatch', join(dir, '10.png'), /3x2 but .*1\.png is 2x2/));
  writeFileSync(join(dir, '10.png'), encodePng({ width: 2, height: 2, data: new Uint16Array(4), depth: 16, channels: 1 }));
  await assert.rejects(openStack(dir), isIoError('mismatch', join(dir, '10.png'), /uint16 but .* is uint8/));
});

test('truncated and corrupt PNG', async () => {
  const dir = freshDir();
  const png = new Uint8Array(readFileSync(join(SAMPLES, 'images', '23.png')));
  const cut = join(dir, 'cut.png');
  writeFileSync(cut, png.subarray(0, Math.floor(png.length / 2)));
  await assert.rejects(readStack(cut), isIoError('corrupt', cut));
  const flipped = join(dir, 'flipped.png');
  const bad = png.slice();
  bad[Math.floor(bad.length / 2)]! ^= 0xff;
  writeFileSync(flipped, bad);
  await assert.rejects(readStack(flipped), isIoError('corrupt', flipped, /truncated or corrupt/));
});

test('PNG headers claiming absurd sizes are refused before decoding', async () => {
  const dir = freshDir();
  const huge = join(dir, 'huge.png');
  writeFileSync(huge, patched(grey(4, 4), (v) => (v.setUint32(16, 70000), v.setUint32(20, 70000))));
  await assert.rejects(readStack(huge), isIoError('too-large', huge, /70000x70000/));
  const tiny = join(dir, 'tiny.png');
  writeFileSync(tiny, patched(grey(4, 4), (v) => (v.setUint32(16, 40000), v.setUint32(20, 40000))));
  await assert.rejects(readStack(tiny), isIoError('corrupt', tiny, /40000x40000 pixels but the file is only/));
});

test('truncated multi-page TIFF, damaged deflate data, looped page chain', async () => {
  const dir = freshDir();
  const full = tiff3();
  for (const fraction of [0.3, 0.6, 0.99]) {
    const cut = join(dir, `cut-${fraction}.tif`);
    writeFileSync(cut, full.subarray(0, Math.floor(full.length * fraction)));
    await assert.rejects(readStack(cut), isIoError('corrupt', cut, /truncated or corrupt TIFF/));
  }
  const raw = new Uint8Array(readFileSync(join(FIXTURES, 'raw.tif')));
  const halfRaw = join(dir, 'half-raw.tif');
  writeFileSync(halfRaw, raw.subarray(0, raw.length >> 1));
  await assert.rejects(readStack(halfRaw), isIoError('corrupt', halfRaw));
  const damaged = join(dir, 'damaged.tif');
  const bad = new Uint8Array(readFileSync(join(FIXTURES, 'gt.tif')));
  bad.fill(0xff, 200, 1200); // inside the first page's deflate stream
  writeFileSync(damaged, bad);
  await assert.rejects(readStack(damaged), isIoError('corrupt', damaged, /page 1/));
  const loop = join(dir, 'loop.tif');
  writeFileSync(loop, patched(full, (v) => {
    const last = ifdOffset(full, 2);
    v.setUint32(last + 2 + 12 * v.getUint16(last, true), ifdOffset(full, 0), true);
  }));
  await assert.rejects(readStack(loop), isIoError('corrupt', loop, /loops/));
});

test('TIFF headers claiming absurd sizes or counts are refused before allocation', async () => {
  const dir = freshDir();
  const one = encodeTiff([new Uint8Array(16)], 4, 4);
  const cases: [string, (v: DataView) => void, string, RegExp][] = [
    ['huge.tif', (v) => (v.setUint32(entryOffset(one, 256) + 8, 100000, true), v.setUint32(entryOffset(one, 257) + 8, 100000, true)), 'too-large', /100000x100000/],
    ['short.tif', (v) => (v.setUint32(entryOffset(one, 256) + 8, 30000, true), v.setUint32(entryOffset(one, 257) + 8, 30000, true)), 'corrupt', /claims 30000x30000 pixels but holds 16/],
    ['count.tif', (v) => v.setUint32(entryOffset(one, 273) + 4, 2 ** 30, true), 'corrupt', /claims 1073741824 values beyond the end/],
    ['strip.tif', (v) => v.setUint32(entryOffset(one, 279) + 8, 2 ** 31, true), 'corrupt', /runs past the end/],
    ['jpeg.tif', (v) => v.setUint16(entryOffset(one, 259) + 8, 7, true), 'unsupported', /compression 7/],
    ['rgb.tif', (v) => v.setUint16(entryOffset(one, 277) + 8, 3, true), 'unsupported', /colour image/],
    ['int16.tif', (v) => v.setUint16(entryOffset(one, 339) + 8, 2, true), 'unsupported', /format 2/],
    ['bigtiff.tif', (v) => v.setUint16(2, 43, true), 'unsupported', /BigTIFF/],
    ['magic.tif', (v) => v.setUint16(2, 41, true), 'not-image', /wrong magic bytes/],
  ];
  for (const [name, edit, code, message] of cases) {
    const file = join(dir, name);
    writeFileSync(file, patched(one, edit));
    await assert.rejects(readStack(file), isIoError(code, file, message), name);
  }
});

async function* slicesThenCrash(good: number, bad: () => SliceLike | never): AsyncGenerator<SliceLike> {
  for (let z = 0; z < good; z++) yield { width: 4, height: 3, data: new Float32Array(12).fill(0.5) };
  yield bad();
}
const crash = (): never => {
  throw new Error('simulated crash while producing slice 2');
};

test('a failure while writing leaves no output and no temporary file', async () => {
  const dir = freshDir();
  const tif = join(dir, 'out.tif');
  await assert.rejects(writeStack(tif, slicesThenCrash(2, crash)), /simulated crash/);
  await assert.rejects(writeIsbiSubmission(tif, slicesThenCrash(2, crash), { values: 'membrane-probability' }), /simulated crash/);
  await assert.rejects(writeStack(join(dir, 'pngs'), slicesThenCrash(2, crash)), /simulated crash/);
  await assert.rejects(writeStack(join(dir, 'tifs'), slicesThenCrash(2, crash), { format: 'tiff-folder' }), /simulated crash/);
  const nan = () => ({ width: 4, height: 3, data: new Float32Array(12).fill(Number.NaN) });
  await assert.rejects(writeIsbiSubmission(tif, slicesThenCrash(2, nan), { values: 'membrane-probability' }), isIoError('invalid-data', tif, /slice 2 pixel 0 is NaN/));
  await assert.rejects(writeStack(join(dir, 'pngs'), slicesThenCrash(1, () => ({ width: 4, height: 3, data: new Float32Array(12).fill(1.5) }))), isIoError('invalid-data', join(dir, 'pngs', '0001.png'), /1\.5/));
  const small = () => ({ width: 2, height: 2, data: new Float32Array(4) });
  await assert.rejects(writeStack(tif, slicesThenCrash(2, small)), isIoError('mismatch', tif, /slice 2 is 2x2/));
  const u32 = { width: 1, height: 1, depth: 1, data: new Uint32Array(1) };
  await assert.rejects(writeStack(join(dir, 'pngs'), u32), isIoError('invalid-data', join(dir, 'pngs', '0000.png'), /32-bit integer/));
  assert.deepEqual(readdirSync(dir), [], 'nothing may be left behind');

  await assert.rejects(writeStack(join(dir, 'missing', 'out.tif'), u32), isIoError('not-found', join(dir, 'missing', 'out.tif'), /output folder .* does not exist/));
  await assert.rejects(writeStack(join(dir, 'x.png'), u32), isIoError('wrong-format', join(dir, 'x.png'), /folder of .png slices/));
  assert.deepEqual(readdirSync(dir), []);
});

test('existing outputs are refused unless overwrite is set; a failed overwrite keeps the old output', async () => {
  const dir = freshDir();
  const stack = (v: number, depth = 2) => ({ width: 2, height: 2, depth, data: new Uint8Array(4 * depth).fill(v) });
  const tif = join(dir, 'out.tif');
  await writeStack(tif, stack(1));
  const before = readFileSync(tif);
  await assert.rejects(writeStack(tif, stack(2)), isIoError('exists', tif, /--overwrite/));
  await assert.rejects(writeIsbiSubmission(tif, stack(0), { values: 'membrane-probability' }), isIoError('exists', tif, /--overwrite/));
  assert.deepEqual(readFileSync(tif), before);
  await assert.rejects(writeStack(tif, slicesThenCrash(1, crash), { overwrite: true }), /simulated crash/);
  assert.deepEqual(readFileSync(tif), before);
  await writeStack(tif, stack(2), { overwrite: true });
  assert.deepEqual(Array.from((await readStack(tif)).data), new Array(8).fill(2));

  const folder = join(dir, 'slices');
  await writeStack(folder, stack(1, 3));
  await assert.rejects(writeStack(folder, stack(2, 3)), isIoError('exists', join(folder, '0000.png'), /--overwrite/));
  await assert.rejects(writeStack(folder, slicesThenCrash(2, crash), { overwrite: true }), /simulated crash/);
  assert.deepEqual(Array.from((await readStack(folder)).data), new Array(12).fill(1));
  await writeStack(folder, stack(3, 2), { overwrite: true });
  assert.deepEqual(readdirSync(folder), ['.emseg-manifest.json', '0000.png', '0001.png'], 'the old, deeper stack must not leak into the new one');
  assert.equal(readdirSync(dir).length, 2);
  assert.ok(!existsSync(join(dir, 'slices', '0002.png')));
});

test('a label or image path that is a copy of a valid file with a misleading extension is sniffed by content', async () => {
  const dir = freshDir();
  copyFileSync(join(FIXTURES, 'gt.tif'), join(dir, 'gt.png'));
  assert.equal((await readStack(join(dir, 'gt.png'))).depth, 5);
});
