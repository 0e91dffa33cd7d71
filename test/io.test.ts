/** Round trips and decoder paths of src/io: every supported type, compression and layout. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodePngLib } from 'fast-png';
import { EmsegIoError, encodeTiff, iterateSlices, naturalSort, openStack, readStack, writeIsbiSubmission, writeStack } from '../src/io/index.js';
import { toFloat32 } from '../src/image/stack.js';
import type { ImageStack, StackData } from '../src/image/stack.js';
import { buildTiff } from '../src/io/tiff-write.js';
import type { RawTiffPage } from '../src/io/tiff-write.js';
import { refused } from './helpers/errors.js';

const TMP = mkdtempSync(join(tmpdir(), 'emseg-io-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  return mkdtempSync(join(TMP, `t${dirCount++}-`));
}

/** Deterministic pseudo-random values (LCG) spanning the type's range. */
function pattern<T extends StackData>(make: (n: number) => T, n: number, max: number, seed = 1): T {
  const a = make(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = a instanceof Float32Array ? (s / 2 ** 32) * max : s % (max + 1);
  }
  return a;
}

function stackOf<T extends StackData>(data: T, width: number, height: number): ImageStack<T> {
  return { width, height, depth: data.length / (width * height), data };
}

function assertSameValues(actual: StackData, expected: StackData): void {
  assert.equal(actual.constructor, expected.constructor);
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`value ${i}: ${actual[i]} != ${expected[i]}`);
  }
}

function sampleBytes(data: StackData, bigEndian = false): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const size = data.BYTES_PER_ELEMENT;
  if (bigEndian) for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  return bytes;
}

/** Rewrites the header and IFDs of a buildTiff() file as big-endian ("MM"); strip bytes are left as they are. */
function toBigEndianStructure(le: Uint8Array): Uint8Array {
  const out = le.slice();
  const src = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const dst = new DataView(out.buffer);
  dst.setUint16(0, 0x4d4d);
  dst.setUint16(2, 42, false);
  const swap32 = (at: number) => dst.setUint32(at, src.getUint32(at, true), false);
  swap32(4);
  for (let ifd = src.getUint32(4, true); ifd !== 0; ) {
    const n = src.getUint16(ifd, true);
    dst.setUint16(ifd, n, false);
    for (let i = 0; i < n; i++) {
      const e = ifd + 2 + 12 * i;
      const type = src.getUint16(e + 2, true);
      const count = src.getUint32(e + 4, true);
      for (const at of [e, e + 2]) dst.setUint16(at, src.getUint16(at, true), false);
      swap32(e + 4);
      if (type === 3) dst.setUint16(e + 8, src.getUint16(e + 8, true), false); // SHORT, count 1, left-justified
      else swap32(e + 8); // LONG value, or offset of a LONG array
      if (count > 1) for (let k = 0; k < count; k++) swap32(src.getUint32(e + 8, true) + 4 * k);
    }
    swap32(ifd + 2 + 12 * n);
    ifd = src.getUint32(ifd + 2 + 12 * n, true);
  }
  return out;
}

interface TypeCase {
  name: string;
  make: (n: number) => StackData;
  max: number;
}

const TYPES: TypeCase[] = [
  { name: 'uint8', make: (n) => new Uint8Array(n), max: 255 },
  { name: 'uint16', make: (n) => new Uint16Array(n), max: 65535 },
  { name: 'uint32', make: (n) => new Uint32Array(n), max: 4294967295 },
  { name: 'float32', make: (n) => new Float32Array(n), max: 1 },
];

test('PNG 8-bit and 16-bit: write a folder, read it back identically (folder and glob)', async () => {
  for (const [data, ext] of [
    [pattern((n) => new Uint8Array(n), 7 * 5 * 3, 255), '8'],
    [pattern((n) => new Uint16Array(n), 7 * 5 * 3, 65535), '16'],
  ] as const) {
    const dir = join(freshDir(), `png${ext}`);
    const written = await writeStack(dir, stackOf(data, 7, 5));
    assert.deepEqual(readdirSync(dir), ['.emseg-manifest.json', '0000.png', '0001.png', '0002.png']);
    assert.deepEqual(written, readdirSync(dir).filter((f) => !f.startsWith('.')).map((f) => join(dir, f)));
    const back = await readStack(dir);
    assert.deepEqual([back.width, back.height, back.depth], [7, 5, 3]);
    assertSameValues(back.data, data);
    assertSameValues((await readStack(join(dir, '*.png'))).data, data);
  }
});

test('TIFF multi-page and single-page, every sample type: write, read back identically', async () => {
  for (const t of TYPES) {
    const data = pattern(t.make, 6 * 4 * 3, t.max);
    if (data instanceof Float32Array) data.set([0, -0, 1, 1e-38, 3.4e38, Number.NaN, -1.5]);
    const dir = freshDir();
    await writeStack(join(dir, 'multi.tif'), stackOf(data, 6, 4));
    const multi = await readStack(join(dir, 'multi.tif'));
    assert.deepEqual([multi.width, multi.height, multi.depth, multi.sampleType], [6, 4, 3, t.name]);
    assertSameValues(multi.data, data);

    const single = data.subarray(0, 24);
    await writeStack(join(dir, 'single.tiff'), stackOf(single, 6, 4));
    assertSameValues((await readStack(join(dir, 'single.tiff'))).data, single);

    await writeStack(join(dir, 'slices'), stackOf(data, 6, 4), { format: 'tiff-folder' });
    assert.deepEqual(readdirSync(join(dir, 'slices')), ['.emseg-manifest.json', '0000.tif', '0001.tif', '0002.tif']);
    assertSameValues((await readStack(join(dir, 'slices'))).data, data);
  }
});

/** TIFF-flavoured LZW (MSB-first, 9-12 bit codes, early change) to prove the LZW decode paths. */
function lzwEncode(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  let decoderTable = 258; // the decoder's table size when it reads the next code
  let emitted = 0;
  const put = (code: number) => {
    const width = decoderTable >= 2047 ? 12 : decoderTable >= 1023 ? 11 : decoderTable >= 511 ? 10 : 9;
    acc = (acc << width) | code;
    bits += width;
    while (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
    acc &= (1 << bits) - 1;
  };
  const emit = (code: number) => {
    put(code);
    if (emitted++ > 0) decoderTable++;
  };
  const dict = new Map<string, number>();
  let next = 258;
  put(256);
  let w = String(input[0]);
  let wCode = input[0]!;
  for (let i = 1; i < input.length; i++) {
    const key = `${w},${input[i]}`;
    const hit = dict.get(key);
    if (hit !== undefined) {
      w = key;
      wCode = hit;
      continue;
    }
    emit(wCode);
    dict.set(key, next++);
    w = String(input[i]);
    wCode = input[i]!;
  }
  emit(wCode);
  put(257);
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  assert.ok(next < 4094, 'test input too long for a table without clear codes');
  return new Uint8Array(out);
}

/** PackBits with both literal and repeat runs. */
function packBits(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < input.length) {
    let run = 1;
    while (i + run < input.length && run < 128 && input[i + run] === input[i]) run++;
    if (run >= 3) {
      out.push(257 - run, input[i]!);
      i += run;
      continue;
    }
    const start = i;
    while (i < input.length && i - start < 128 && !(input[i] === input[i + 1] && input[i] === input[i + 2])) i++;
    out.push(i - start - 1, ...input.subarray(start, i));
  }
  return new Uint8Array(out);
}

/** Horizontal differencing (predictor 2) of integer data, row by row. */
function difference(data: Uint8Array | Uint16Array | Uint32Array, width: number): typeof data {
  const out = data.slice();
  for (let i = data.length - 1; i >= 0; i--) if (i % width !== 0) out[i] = data[i]! - data[i - 1]!;
  return out;
}

function compressedTiff(
  pages: StackData[],
  width: number,
  height: number,
  compression: 1 | 5 | 32773,
  rowsPerStrip: number,
  predictor?: 2,
  bigEndian = false,
): Uint8Array {
  const file = buildTiff(
    pages.map((data): RawTiffPage => {
      const bps = (data.BYTES_PER_ELEMENT * 8) as 8 | 16 | 32;
      const src = predictor && !(data instanceof Float32Array) ? difference(data, width) : data;
      const bytes = sampleBytes(src, bigEndian);
      const strips: Uint8Array[] = [];
      const stripBytes = rowsPerStrip * width * data.BYTES_PER_ELEMENT;
      for (let at = 0; at < bytes.length; at += stripBytes) {
        const raw = bytes.subarray(at, at + stripBytes);
        strips.push(compression === 5 ? lzwEncode(raw) : compression === 32773 ? packBits(raw) : raw);
      }
      return { width, height, bitsPerSample: bps, sampleFormat: data instanceof Float32Array ? 3 : 1, compression, predictor, rowsPerStrip, strips };
    }),
  );
  return bigEndian ? toBigEndianStructure(file) : file;
}

test('hand-encoded LZW and PackBits TIFFs (every type, several strips, predictor 2, big-endian) decode exactly', async () => {
  const dir = freshDir();
  const [w, h] = [23, 17];
  for (const t of TYPES) {
    // Runs of equal values make PackBits use repeats; the pseudo-random part makes LZW codes grow past 9 bits.
    const pages = [1, 2].map((seed) => {
      const p = pattern(t.make, w * h, t.max, seed);
      p.fill(p[5]!, 40, 90);
      return p;
    });
    for (const compression of [5, 32773] as const) {
      for (const rowsPerStrip of [h, 5]) {
        const file = join(dir, `${t.name}-${compression}-${rowsPerStrip}.tif`);
        writeFileSync(file, compressedTiff(pages, w, h, compression, rowsPerStrip));
        const back = await readStack(file);
        assertSameValues(back.data, concat(pages));
      }
      const bigEndian = join(dir, `${t.name}-${compression}-be.tif`);
      writeFileSync(bigEndian, compressedTiff(pages, w, h, compression, 6, undefined, true));
      assertSameValues((await readStack(bigEndian)).data, concat(pages));
      if (t.name !== 'float32') {
        const file = join(dir, `${t.name}-${compression}-pred.tif`);
        writeFileSync(file, compressedTiff(pages, w, h, compression, 4, 2));
        assertSameValues((await readStack(file)).data, concat(pages));
      }
    }
  }
});

test('big-endian uncompressed TIFF, every type', async () => {
  const dir = freshDir();
  for (const t of TYPES) {
    const pages = [pattern(t.make, 15, t.max, 3), pattern(t.make, 15, t.max, 4)];
    const file = join(dir, `${t.name}.tif`);
    writeFileSync(file, compressedTiff(pages, 5, 3, 1, 2, undefined, true));
    assertSameValues((await readStack(file)).data, concat(pages));
  }
});

function concat(pages: StackData[]): StackData {
  const out = new (pages[0]!.constructor as new (n: number) => StackData)(pages.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pages) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('natural sort: 2.png before 10.png, in folders, globs and naturalSort()', async () => {
  assert.deepEqual(naturalSort(['s10.png', 's2.png', 's1.png']), ['s1.png', 's2.png', 's10.png']);
  const dir = freshDir();
  for (const z of [10, 2, 1, 33]) writeFileSync(join(dir, `${z}.png`), encodePngLib({ width: 2, height: 1, data: new Uint8Array([z, z]), depth: 8, channels: 1 }));
  writeFileSync(join(dir, '.DS_Store'), 'hidden files are skipped');
  const stack = await readStack(dir);
  assert.deepEqual(Array.from(stack.data), [1, 1, 2, 2, 10, 10, 33, 33]);
  assert.deepEqual((await readStack(join(dir, '*.png'))).files.map((f) => f.slice(dir.length + 1)), ['1.png', '2.png', '10.png', '33.png']);
});

test('slices are streamed one at a time with their file and page; openStack reads headers only', async () => {
  const dir = freshDir();
  const data = pattern((n) => new Uint16Array(n), 4 * 3 * 5, 65535);
  await writeStack(join(dir, 'a.tif'), stackOf(data.subarray(0, 24), 4, 3));
  await writeStack(join(dir, 'b.tif'), stackOf(data.subarray(24), 4, 3));
  const reader = await openStack([join(dir, 'a.tif'), join(dir, 'b.tif')]);
  assert.deepEqual([reader.width, reader.height, reader.depth, reader.sampleType], [4, 3, 5, 'uint16']);
  const seen: string[] = [];
  for await (const s of iterateSlices(join(dir, '*.tif'))) {
    seen.push(`${s.index}:${s.source.slice(dir.length + 1)}#${s.page}`);
    assertSameValues(s.data, data.subarray(s.index * 12, (s.index + 1) * 12));
  }
  assert.deepEqual(seen, ['0:a.tif#0', '1:a.tif#1', '2:b.tif#0', '3:b.tif#1', '4:b.tif#2']);
});

test('colour PNG is refused by default and reduced to grey only on request; 1-bit grey is unpacked', async () => {
  const dir = freshDir();
  const rgb = join(dir, 'rgb.png');
  writeFileSync(rgb, encodePngLib({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 10, 20, 30]), depth: 8, channels: 3 }));
  await assert.rejects(readStack(rgb), (e: unknown) => e instanceof EmsegIoError && e.code === 'unsupported' && e.path === rgb && /RGB colour.*to-grey/.test(e.message));
  assert.deepEqual(Array.from((await readStack(rgb, { colour: 'to-grey' })).data), [76, 18]);

  const alpha = join(dir, 'ga.png');
  writeFileSync(alpha, encodePngLib({ width: 2, height: 1, data: new Uint16Array([1000, 65535, 2000, 0]), depth: 16, channels: 2 }));
  await assert.rejects(readStack(alpha), refused('unsupported', 'ga.png'));
  assert.deepEqual(Array.from((await readStack(alpha, { colour: 'to-grey' })).data), [1000, 2000]);

  const bits = join(dir, 'bits.png');
  writeFileSync(bits, encodePngLib({ width: 10, height: 2, data: new Uint8Array([0b10100000, 0b01000000, 0b00000111, 0b11000000]), depth: 1, channels: 1 }));
  assert.deepEqual(Array.from((await readStack(bits)).data), [255, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255]);
});

test('toFloat32 maps the integer range to [0,1] without any other normalisation', () => {
  assert.deepEqual(Array.from(toFloat32(new Uint8Array([0, 51, 255]))), [0, Math.fround(0.2), 1]);
  assert.deepEqual(Array.from(toFloat32(new Uint16Array([0, 65535]))), [0, 1]);
  const f = new Float32Array([-0.5, 2]);
  assert.deepEqual(Array.from(toFloat32(f)), [-0.5, 2]);
});

test('ISBI submission: multi-page float32 TIFF, 0 = membrane, polarity stated by the caller', async () => {
  const dir = freshDir();
  const membraneProb = new Float32Array([1, 0, 0.25, 0.5, 0.75, 1, 0, 0.125]);
  const file = join(dir, 'submission.tif');
  await writeIsbiSubmission(file, stackOf(membraneProb, 2, 2), { values: 'membrane-probability' });
  const back = await readStack(file);
  assert.deepEqual([back.width, back.height, back.depth, back.sampleType], [2, 2, 2, 'float32']);
  assert.deepEqual(Array.from(back.data), [0, 1, 0.75, 0.5, 0.25, 0, 1, 0.875]);

  const same = join(dir, 'as-is.tif');
  await writeIsbiSubmission(same, stackOf(membraneProb, 2, 2), { values: 'non-membrane-probability' });
  assertSameValues((await readStack(same)).data, membraneProb);
  // Same bytes as the in-memory encoder: one writer implementation.
  assert.deepEqual(new Uint8Array(readFileSync(same)), encodeTiff([membraneProb.subarray(0, 4), membraneProb.subarray(4)], 2, 2));
});

test('float slices written as PNG are scaled by 255; streams of slices can be written', async () => {
  const dir = join(freshDir(), 'out');
  async function* produce() {
    for (let z = 0; z < 2; z++) yield { width: 3, height: 1, data: new Float32Array([0, 0.5, 1 - z * 0.2]) };
  }
  await writeStack(dir, produce());
  assert.deepEqual(Array.from((await readStack(dir)).data), [0, 128, 255, 0, 128, 204]);
});

test('a multi-page TIFF carries an ImageDescription on its first page (inline when short, out of line when long)', async () => {
  const dir = freshDir();
  const stack = { width: 3, height: 2, depth: 2, data: Float32Array.from({ length: 12 }, (_, i) => i / 12) };
  for (const text of ['abc', '{"emseg":{"close_gaps":{"sigma":2}}}']) {
    const path = join(dir, `${text.length}.tif`);
    await writeStack(path, stack, { description: text });
    const reader = await openStack(path);
    assert.equal(reader.description, text);
    assert.deepEqual((await readStack(path)).data, stack.data, 'the pixels are unchanged');
  }
  const isbi = join(dir, 'isbi.tif');
  await writeIsbiSubmission(isbi, stack, { values: 'non-membrane-probability', description: 'x'.repeat(300) });
  assert.equal((await openStack(isbi)).description, 'x'.repeat(300));
  assert.equal((await openStack(join(dir, '3.tif'))).depth, 2);
  await assert.rejects(writeStack(join(dir, 'bad.tif'), stack, { description: 'caf\u00e9' }), (e) => e instanceof EmsegIoError && e.code === 'invalid-data');
});
