#!/usr/bin/env node
// Byte-for-byte regression check of emseg's outputs between two checkouts (issue 24: predictions, cells and exports
// stay byte-identical through a refactor).
//
//   node scripts/compare-outputs.mjs run --emseg <checkout>/bin/emseg.js --out <dir>
//       makes small inputs in <dir>/inputs (crops of samples/isbi2012; the models are copied from the checkout),
//       runs a fixed list of emseg commands with that emseg (cwd <dir>, relative paths, one thread), and writes
//       <dir>/digests.json: sha256 and size of every file under <dir> (minus the bookkeeping in EXCLUDED, and
//       MANIFEST and HDF5_INPUT normalised, below), each command's exit status (stderr tail when it failed), and for
//       the commands that print results (--json) their stdout. <dir> must be empty or an earlier run's.
//   node scripts/compare-outputs.mjs compare <a>/digests.json <b>/digests.json
//       lists every file or command that differs or exists on one side only; exit status 1 if any, else 0.
//   node scripts/compare-outputs.mjs list
//       prints the commands a run makes.
//
// Plain Node (no new dependencies): fast-png and h5wasm, which emseg already depends on, make the inputs, so the
// inputs never depend on the checkout under test. A command that fails is recorded (exit status, stderr tail) and
// the run goes on; the commands after it that read its output fail too, and compare shows all of them.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { decode as decodePng, encode as encodePng } from 'fast-png';

const DIGESTS_VERSION = 1;
const STDERR_TAIL_CHARS = 2000;
/** Generous: one command takes seconds; a hang must not stop the run for good. */
const COMMAND_TIMEOUT_MS = 10 * 60 * 1000;

// ---- inputs ----------------------------------------------------------------------------------------------------

/** Crop size: not square (a swapped y/x shows), not a multiple of the 64-pixel blocks (partial blocks at the edges). */
const CROP_HEIGHT = 160;
const CROP_WIDTH = 208;
/** Three sections (a 2.5D model reads one on each side): crops of the two bundled sample sections. */
const SECTIONS = [
  { source: '23.png', y: 40, x: 60 },
  { source: '24.png', y: 40, x: 60 },
  { source: '23.png', y: 300, x: 280 },
];
/** bioimage.io needs a test section of at least 192 x 192. */
const SAMPLE = { source: '24.png', y: 200, x: 100, height: 200, width: 224 };
/** HDF5 input chunks (several per section, so the reader assembles them). */
const H5_CHUNKS = [1, 64, 64];

function cropPng(file, { y, x, height = CROP_HEIGHT, width = CROP_WIDTH }) {
  const img = decodePng(readFileSync(file));
  if (img.channels !== 1 || img.depth !== 8) throw new Error(`${file}: expected 8-bit grey, got ${img.channels} channels, depth ${img.depth}`);
  const out = new Uint8Array(height * width);
  for (let r = 0; r < height; r++) out.set(img.data.subarray((y + r) * img.width + x, (y + r) * img.width + x + width), r * width);
  return out;
}

/** A little-endian, uncompressed, multi-page 8-bit grey TIFF (one strip per page): written here, not by emseg. */
function tiffBytes(pages, width, height) {
  const TAGS = 9;
  const ifdBytes = 2 + TAGS * 12 + 4;
  const pageBytes = width * height;
  const buf = Buffer.alloc(8 + pages.length * (ifdBytes + pageBytes));
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(8, 4);
  pages.forEach((data, p) => {
    const ifd = 8 + p * (ifdBytes + pageBytes);
    const dataAt = ifd + ifdBytes;
    const next = p + 1 < pages.length ? dataAt + pageBytes : 0;
    // tag, type (3 SHORT, 4 LONG), value
    const entries = [[256, 4, width], [257, 4, height], [258, 3, 8], [259, 3, 1], [262, 3, 1], [273, 4, dataAt], [277, 3, 1], [278, 4, height], [279, 4, pageBytes]];
    buf.writeUInt16LE(TAGS, ifd);
    entries.forEach(([tag, type, value], i) => {
      const at = ifd + 2 + i * 12;
      buf.writeUInt16LE(tag, at);
      buf.writeUInt16LE(type, at + 2);
      buf.writeUInt32LE(1, at + 4);
      if (type === 3) buf.writeUInt16LE(value, at + 8);
      else buf.writeUInt32LE(value, at + 8);
    });
    buf.writeUInt32LE(next, ifd + 2 + TAGS * 12);
    buf.set(data, dataAt);
  });
  return buf;
}

async function writeHdf5(file, data, shape) {
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const f = new h5.File(file, 'w');
  try {
    f.create_dataset({ name: 'raw', data, shape, dtype: '<B', chunks: H5_CHUNKS, compression: 'gzip' });
  } finally {
    f.close();
  }
}

/** Float16 bits times 2^-k (k >= 0), flushed to zero below the normal range; sign kept. Exact: only the exponent moves. */
function scaleF16(bits, k) {
  const exponent = (bits >> 10) & 0x1f;
  if (exponent === 0x1f) return bits;
  if (exponent <= k) return bits & 0x8000;
  return (bits & 0x83ff) | ((exponent - k) << 10);
}

/**
 * A 2.5D model (3 sections) from the shipped fakhry-isbi: its first layer reads the middle section with the trained
 * weights, the section before with them times 1/4 and the one after with them times -1/4, so that the neighbours and
 * their order change the map (a swapped or missing neighbour shows in the bytes). Written here, not by emseg.
 */
function write25dModel(from, to) {
  mkdirSync(to, { recursive: true });
  const spec = JSON.parse(readFileSync(join(from, 'spec.json'), 'utf8'));
  spec.name = `${spec.name}-2.5d`;
  spec.input = { channels: 3, sections: 3 };
  writeFileSync(join(to, 'spec.json'), `${JSON.stringify(spec, null, 2)}\n`);
  writeFileSync(join(to, 'meta.json'), readFileSync(join(from, 'meta.json')));
  const file = readFileSync(join(from, 'weights.safetensors'));
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
  const body = file.subarray(8 + headerLength);
  const first = spec.layers.find((l) => l.type === 'conv').name;
  const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__').sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const parts = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    let bytes = body.subarray(t.data_offsets[0], t.data_offsets[1]);
    let shape = t.shape;
    if (name === `${first}.weight`) {
      if (t.dtype !== 'F16' || shape[1] !== 1) throw new Error(`${name}: expected F16 with one input channel`);
      const [out, , kh, kw] = shape;
      const plane = kh * kw;
      const src = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      const dst = new Uint16Array(out * 3 * plane);
      for (let o = 0; o < out; o++) {
        for (let i = 0; i < plane; i++) {
          const w = src[o * plane + i];
          dst[(o * 3) * plane + i] = scaleF16(w, 2);
          dst[(o * 3 + 1) * plane + i] = w;
          dst[(o * 3 + 2) * plane + i] = scaleF16(w, 2) ^ 0x8000;
        }
      }
      bytes = Buffer.from(dst.buffer);
      shape = [out, 3, kh, kw];
    }
    header[name] = { ...t, shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(join(to, 'weights.safetensors'), Buffer.concat([length, Buffer.from(json), ...parts]));
}

async function makeInputs(checkout, out) {
  const dir = join(out, 'inputs');
  mkdirSync(join(dir, 'images'), { recursive: true });
  mkdirSync(join(dir, 'labels'), { recursive: true });
  const images = [];
  SECTIONS.forEach((s, z) => {
    const name = `${String(z).padStart(2, '0')}.png`;
    const image = cropPng(join(checkout, 'samples/isbi2012/images', s.source), s);
    const labels = cropPng(join(checkout, 'samples/isbi2012/labels', s.source), s);
    images.push(image);
    writeFileSync(join(dir, 'images', name), encodePng({ width: CROP_WIDTH, height: CROP_HEIGHT, data: image, channels: 1, depth: 8 }));
    writeFileSync(join(dir, 'labels', name), encodePng({ width: CROP_WIDTH, height: CROP_HEIGHT, data: labels, channels: 1, depth: 8 }));
  });
  const sample = cropPng(join(checkout, 'samples/isbi2012/images', SAMPLE.source), SAMPLE);
  writeFileSync(join(dir, 'sample.png'), encodePng({ width: SAMPLE.width, height: SAMPLE.height, data: sample, channels: 1, depth: 8 }));
  writeFileSync(join(dir, 'stack.tif'), tiffBytes(images, CROP_WIDTH, CROP_HEIGHT));
  const volume = new Uint8Array(images.length * CROP_HEIGHT * CROP_WIDTH);
  images.forEach((img, z) => volume.set(img, z * img.length));
  await writeHdf5(join(dir, 'vol.h5'), volume, [images.length, CROP_HEIGHT, CROP_WIDTH]);
  // The models of the checkout under test (so a changed model shows as a changed input, under inputs/models/).
  for (const m of ['emseg-isbi', 'fakhry-isbi']) cpSync(join(checkout, 'models', m), join(dir, 'models', m), { recursive: true });
  write25dModel(join(checkout, 'models/fakhry-isbi'), join(dir, 'models/fakhry-2.5d'));
}

// ---- the commands ----------------------------------------------------------------------------------------------

const ENSEMBLE = 'inputs/models/emseg-isbi';
const FAKHRY = 'inputs/models/fakhry-isbi';
const MODEL_25D = 'inputs/models/fakhry-2.5d';
const IMAGES = 'inputs/images';
const LABELS = 'inputs/labels';
/** predict's determinism flags: one oneDNN thread (EMSEG_THREADS=1 covers the commands without --threads). */
const P = ['--threads', '1', '--quiet'];
/** Block sizes: y, x multiples of the networks' stride, small enough that every volume has several blocks. */
const BLOCK = '1,64,64';
const BLOCK_DEEP = '2,64,128';

/**
 * The fixed command list: name, argv (after `emseg`), and `stdout: true` where the printed text is the result
 * (--json scores), recorded after replacing the output folder's absolute path. Order matters: later commands read
 * earlier outputs. Only flags of the CLI as of b4fc5eb ("current main"); later checkouts keep the same CLI.
 */
const COMMANDS = [
  // predict, stacks: every output format, the ensemble and the patch classifier, gap closing, TTA, 2.5D
  { name: 'predict-isbi', argv: ['predict', '--model', ENSEMBLE, '--input', IMAGES, '--out', 'predict/isbi.tif', ...P] },
  { name: 'predict-tiff-membrane-prob', argv: ['predict', '--model', ENSEMBLE, '--input', IMAGES, '--out', 'predict/membrane-prob.tif', '--format', 'tiff', '--membrane-prob', ...P] },
  { name: 'predict-png-folder', argv: ['predict', '--model', ENSEMBLE, '--input', IMAGES, '--out', 'predict/png-folder', '--format', 'png-folder', ...P] },
  { name: 'predict-tiff-folder', argv: ['predict', '--model', ENSEMBLE, '--input', IMAGES, '--out', 'predict/tiff-folder', '--format', 'tiff-folder', ...P] },
  { name: 'predict-close-gaps', argv: ['predict', '--model', ENSEMBLE, '--input', IMAGES, '--out', 'predict/close-gaps.tif', '--close-gaps', ...P] },
  { name: 'predict-close-gaps-flags', argv: ['predict', '--model', FAKHRY, '--input', 'inputs/stack.tif', '--out', 'predict/close-gaps-flags.tif', '--close-gaps', '--sigma', '1', '--seed-threshold', '0.2', '--merge-threshold', '0.5', '--extra-seed-threshold', '0', ...P] },
  { name: 'predict-tta', argv: ['predict', '--model', `${ENSEMBLE}/unet-w16-s3`, '--input', IMAGES, '--out', 'predict/tta.tif', '--tta', ...P] },
  { name: 'predict-fakhry-tiff-input', argv: ['predict', '--model', FAKHRY, '--input', 'inputs/stack.tif', '--out', 'predict/fakhry.tif', '--tile', '96', ...P] },
  { name: 'predict-two-models', argv: ['predict', '--model', `${ENSEMBLE}/unet-w16-s3`, FAKHRY, '--input', IMAGES, '--out', 'predict/two-models.tif', '--voxel-size', '50,4,4', '--unit', 'nm', ...P] },
  { name: 'predict-intensity', argv: ['predict', '--model', FAKHRY, '--input', IMAGES, '--out', 'predict/min-max.tif', '--intensity', 'min-max', ...P] },
  { name: 'predict-2.5d', argv: ['predict', '--model', MODEL_25D, '--input', IMAGES, '--out', 'predict/2.5d.tif', ...P] },
  // convert: stack, HDF5 and Zarr inputs; compressions; pyramid levels (the Zarr inputs of the volume predictions)
  { name: 'convert-stack', argv: ['convert', IMAGES, 'convert/images.zarr', '--chunks', '2,64,64', '--voxel-size', '50,4,4', '--unit', 'nm', '--quiet'] },
  { name: 'convert-h5-zlib', argv: ['convert', 'inputs/vol.h5:/raw', 'convert/from-h5.zarr', '--chunks', '1,96,96', '--compression', 'zlib', '--levels', '2', '--quiet'] },
  { name: 'convert-zarr-none', argv: ['convert', 'convert/images.zarr', 'convert/rechunked.zarr', '--chunks', '3,50,70', '--compression', 'none', '--quiet'] },
  // predict, volumes: OME-Zarr uint8 and float32, several blocks, 2.5D within and across blocks, HDF5 and Zarr
  // inputs, a pyramid level, shards. Not a PNG/TIFF stack input: at b4fc5eb such an input read into a .zarr
  // output gets sections swapped, differently from run to run (io/formats/stack-volume.ts: the section cache's
  // shared page cursor is not safe under the read-ahead's concurrent reads), so it could not be a baseline.
  { name: 'predict-zarr-uint8', argv: ['predict', '--model', ENSEMBLE, '--input', 'convert/images.zarr', '--out', 'volume/maps-uint8.zarr', '--block', BLOCK, '--voxel-size', '50,4,4', '--unit', 'nm', ...P] },
  { name: 'predict-zarr-float32', argv: ['predict', '--model', ENSEMBLE, '--input', 'inputs/vol.h5:/raw', '--out', 'volume/maps-float32.zarr', '--block', BLOCK_DEEP, '--dtype', 'float32', ...P] },
  { name: 'predict-zarr-2.5d', argv: ['predict', '--model', MODEL_25D, '--input', 'convert/images.zarr/0', '--out', 'volume/maps-2.5d.zarr', '--block', BLOCK, ...P] },
  { name: 'predict-zarr-2.5d-deep', argv: ['predict', '--model', MODEL_25D, '--input', 'convert/rechunked.zarr', '--out', 'volume/maps-2.5d-deep.zarr', '--block', BLOCK_DEEP, '--dtype', 'float32', ...P] },
  { name: 'predict-zarr-scale-1', argv: ['predict', '--model', FAKHRY, '--input', 'convert/from-h5.zarr', '--scale', '1', '--out', 'volume/maps-scale-1.zarr', '--block', BLOCK, ...P] },
  { name: 'predict-zarr-shard-0', argv: ['predict', '--model', FAKHRY, '--input', 'inputs/vol.h5:/raw', '--out', 'volume/maps-sharded.zarr', '--block', BLOCK, '--shard', '0/2', ...P] },
  { name: 'predict-zarr-shard-1', argv: ['predict', '--model', FAKHRY, '--input', 'inputs/vol.h5:/raw', '--out', 'volume/maps-sharded.zarr', '--block', BLOCK, '--shard', '1/2', ...P] },
  { name: 'convert-membrane', argv: ['convert', 'predict/isbi.tif', 'convert/maps.zarr', '--kind', 'membrane', '--polarity', 'membrane-low', '--compression', 'gzip', '--quiet'] },
  // segment, stacks: label TIFF with pictures, a folder of slices, P(membrane) maps with explicit options
  { name: 'segment-tif', argv: ['segment', '--pred', 'predict/isbi.tif', '--out', 'segment/cells.tif', '--images', IMAGES, '--pictures', 'segment/pictures', '--quiet'] },
  { name: 'segment-tiff-folder', argv: ['segment', '--pred', 'predict/isbi.tif', '--out', 'segment/cells-folder', '--quiet'] },
  { name: 'segment-membrane-prob', argv: ['segment', '--pred', 'predict/membrane-prob.tif', '--out', 'segment/cells-membrane-prob.tif', '--membrane-prob', '--sigma', '1', '--seed-threshold', '0.2', '--min-seed-area', '10', '--merge-threshold', '0.5', '--extra-seed-threshold', '0.3', '--quiet'] },
  { name: 'segment-png-folder', argv: ['segment', '--pred', 'predict/png-folder', '--out', 'segment/cells-from-png.tif', '--quiet'] },
  { name: 'convert-with-labels', argv: ['convert', IMAGES, 'convert/with-labels.zarr', '--labels', 'segment/cells.tif', '--chunks', '1,64,64', '--quiet'] },
  // segment, volumes: blockwise with small halos (stitching across blocks), deep blocks, labels inside an image
  { name: 'segment-zarr', argv: ['segment', '--pred', 'volume/maps-uint8.zarr', '--out', 'volume/cells.zarr', '--block', BLOCK, '--halo', '16', '--quiet'] },
  { name: 'segment-zarr-deep', argv: ['segment', '--pred', 'volume/maps-float32.zarr', '--out', 'volume/cells-deep.zarr', '--block', BLOCK_DEEP, '--halo', '32', '--quiet'] },
  { name: 'segment-zarr-into-image', argv: ['segment', '--pred', 'volume/maps-sharded.zarr', '--out', 'convert/from-h5.zarr/labels/cells', '--block', BLOCK, '--halo', '24', '--quiet'] },
  // scores printed as JSON, and report files
  { name: 'eval-json', argv: ['eval', '--labels', LABELS, '--pred', 'predict/isbi.tif', '--json', '--per-slice', '--breakdown', '--quiet'], stdout: true },
  { name: 'eval-report-svg', argv: ['eval', '--labels', LABELS, '--pred', 'predict/close-gaps.tif', '--images', IMAGES, '--report', 'eval/report.svg', '--quiet'] },
  { name: 'eval-report-png', argv: ['eval', '--labels', LABELS, '--pred', 'predict/tta.tif', '--report', 'eval/report.png', '--quiet'] },
  { name: 'eval-report-html', argv: ['eval', '--labels', LABELS, '--pred', 'predict/fakhry.tif', '--images', IMAGES, '--report', 'eval/report.html', '--quiet'] },
  { name: 'tune-segment-json', argv: ['tune-segment', '--labels', LABELS, '--pred', 'predict/isbi.tif', '--seed-threshold', '0.1,0.2', '--merge-threshold', '0,0.6', '--json', '--quiet'], stdout: true },
  { name: 'info-json', argv: ['info', 'volume/maps-float32.zarr', '--exact', '--json', '--quiet'], stdout: true },
  // exports and model packing
  { name: 'export-onnx-ensemble', argv: ['export', ENSEMBLE, '--format', 'onnx', '--out', 'export/emseg-isbi.onnx'] },
  { name: 'export-onnx-fakhry', argv: ['export', FAKHRY, '--format', 'onnx', '--out', 'export/fakhry-isbi.onnx'] },
  { name: 'export-bioimageio', argv: ['export', ENSEMBLE, '--format', 'bioimageio', '--out', 'export/emseg-isbi.zip', '--sample', 'inputs/sample.png', '--author', 'A. Tester'] },
  { name: 'pack-ensemble-f16', argv: ['pack', `${ENSEMBLE}/unet-w16-s3`, FAKHRY, '--out', 'export/packed', '--f16'] },
];

/** The folders the commands write into. */
const OUTPUT_FOLDERS = ['predict', 'volume', 'convert', 'segment', 'eval', 'export'];

function tail(text) {
  return text.length > STDERR_TAIL_CHARS ? `...${text.slice(-STDERR_TAIL_CHARS)}` : text;
}

/** Absolute paths in printed text name this run's folders: replaced, so that two folders compare equal. */
function normalise(text, out, checkout) {
  return text.split(out).join('<OUT>').split(checkout).join('<CHECKOUT>');
}

function runCommand(emseg, out, checkout, command) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [emseg, ...command.argv], {
    cwd: out,
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, EMSEG_THREADS: '1', NO_COLOR: '1' },
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const status = result.status ?? `signal ${result.signal ?? result.error?.code ?? 'unknown'}`;
  const record = { argv: command.argv.join(' '), status };
  if (command.stdout) record.stdout = normalise(result.stdout ?? '', out, checkout);
  if (status !== 0) record.stderrTail = normalise(tail(`${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`), out, checkout);
  return { record, seconds };
}

// ---- digests ---------------------------------------------------------------------------------------------------

/**
 * Left out of the digests, with why (relative paths, '/'-separated):
 * - `.emseg/` folders inside Zarr outputs: done markers and failure records (`created`, `finished`, `time`
 *   timestamps, run ids), segment's intermediate per-block records, and chunk CRC lists that repeat the chunks
 *   already digested here. Bookkeeping for resuming, not the result.
 * - `digests.json`, `commands.log` (with times) and RUN_MARKER: this script's own outputs.
 */
const EXCLUDED = [/(^|\/)\.emseg(\/|$)/, /^digests\.json$/, /^commands\.log$/, /^compare-outputs\.run$/];
/** Written first into <dir>: a folder holding it is an earlier run's (complete or not), which a new run replaces. */
const RUN_MARKER = 'compare-outputs.run';
/**
 * Digested after normalising, with why:
 * - `.emseg-manifest.json` (folder outputs: the list of files emseg wrote there): its `written` timestamp is
 *   dropped, and the command line it records has the output folder's absolute path replaced by <OUT>.
 * - `inputs/vol.h5` (the HDF5 input this script makes): libhdf5 stores object modification times in it (two
 *   writes of the same data differ), so its digest is that of the dataset's shape and values, read back.
 */
const MANIFEST = /(^|\/)\.emseg-manifest\.json$/;
const HDF5_INPUT = /^inputs\/vol\.h5$/;

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function listFiles(root, dir = root, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name);
    const rel = relative(root, path).split(sep).join('/');
    if (EXCLUDED.some((re) => re.test(rel))) continue;
    if (entry.isDirectory()) listFiles(root, path, out);
    else if (entry.isFile()) out.push(rel);
    else out.push(`${rel} (not a plain file)`);
  }
  return out;
}

function manifestDigest(bytes, out) {
  const manifest = JSON.parse(bytes.toString('utf8'));
  delete manifest.written;
  return sha256(normalise(JSON.stringify(manifest), out, '\0'));
}

async function hdf5Digest(file) {
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const f = new h5.File(file, 'r');
  try {
    const ds = f.get('raw');
    return sha256(Buffer.concat([Buffer.from(JSON.stringify({ shape: ds.shape, dtype: ds.dtype })), Buffer.from(ds.value.buffer, ds.value.byteOffset, ds.value.byteLength)]));
  } finally {
    f.close();
  }
}

/** Members of a zip (stored or deflated), read from the central directory: name -> bytes. */
function zipMembers(buf) {
  const EOCD = 0x06054b50;
  let end = buf.length - 22;
  while (end >= 0 && buf.readUInt32LE(end) !== EOCD) end--;
  if (end < 0) throw new Error('no end of central directory');
  const count = buf.readUInt16LE(end + 10);
  let at = buf.readUInt32LE(end + 16);
  const members = new Map();
  for (let i = 0; i < count; i++) {
    const method = buf.readUInt16LE(at + 10);
    const compressed = buf.readUInt32LE(at + 20);
    const size = buf.readUInt32LE(at + 24);
    const nameLength = buf.readUInt16LE(at + 28);
    const extra = buf.readUInt16LE(at + 30);
    const comment = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const name = buf.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    const dataAt = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(dataAt, dataAt + compressed);
    const STORED = 0;
    const bytes = method === STORED ? data : inflateRawSync(data);
    if (bytes.length !== size) throw new Error(`${name}: ${bytes.length} bytes, the directory says ${size}`);
    members.set(name, bytes);
    at += 46 + nameLength + extra + comment;
  }
  return members;
}

async function digestTree(out) {
  const files = {};
  for (const rel of listFiles(out)) {
    if (rel.endsWith('(not a plain file)')) {
      files[rel] = { sha256: null, size: null };
      continue;
    }
    const bytes = readFileSync(join(out, rel));
    if (MANIFEST.test(rel)) files[rel] = { sha256: manifestDigest(bytes, out), size: null, normalised: 'written dropped, paths relative' };
    else if (HDF5_INPUT.test(rel)) files[rel] = { sha256: await hdf5Digest(join(out, rel)), size: null, normalised: 'dataset /raw: shape and values' };
    else files[rel] = { sha256: sha256(bytes), size: bytes.length };
    // Zip files are also digested member by member, so a difference names the member.
    if (rel.endsWith('.zip')) {
      try {
        for (const [name, data] of zipMembers(bytes)) files[`${rel}!/${name}`] = { sha256: sha256(data), size: data.length };
      } catch (error) {
        files[`${rel}!/`] = { error: String(error.message) };
      }
    }
  }
  return files;
}

// ---- run and compare -------------------------------------------------------------------------------------------

function parseFlags(args) {
  const flags = {};
  for (let i = 0; i < args.length; i += 2) {
    if (!args[i].startsWith('--') || args[i + 1] === undefined) throw new Error(`unexpected argument ${args[i]}`);
    flags[args[i].slice(2)] = args[i + 1];
  }
  return flags;
}

async function run(args) {
  const flags = parseFlags(args);
  if (!flags.emseg || !flags.out) throw new Error('run needs --emseg <checkout>/bin/emseg.js and --out <dir>');
  const emseg = resolve(flags.emseg);
  const checkout = dirname(dirname(emseg));
  const out = resolve(flags.out);
  if (existsSync(out) && readdirSync(out).length > 0) {
    if (!existsSync(join(out, RUN_MARKER))) throw new Error(`${out} is not empty and is not an earlier run's (no ${RUN_MARKER}): not replacing it`);
    rmSync(out, { recursive: true });
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, RUN_MARKER), `${emseg}\n`);
  const started = process.hrtime.bigint();
  await makeInputs(checkout, out);
  // emseg refuses an output whose folder does not exist (it never guesses a path): the folders are made here.
  for (const d of OUTPUT_FOLDERS) mkdirSync(join(out, d));
  const commands = {};
  const log = [];
  for (const command of COMMANDS) {
    const { record, seconds } = runCommand(emseg, out, checkout, command);
    commands[command.name] = record;
    const line = `${record.status === 0 ? 'ok  ' : 'FAIL'} ${seconds.toFixed(1).padStart(6)} s  ${command.name}: emseg ${record.argv}`;
    log.push(line);
    console.log(line);
    if (record.status !== 0) console.log(`     ${record.stderrTail.trim().split('\n').slice(-3).join('\n     ')}`);
  }
  const git = spawnSync('git', ['-C', checkout, 'log', '-1', '--format=%H%n%s'], { encoding: 'utf8' });
  const [commit = 'unknown', subject = ''] = git.stdout.trim().split('\n');
  const dirty = spawnSync('git', ['-C', checkout, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  writeFileSync(join(out, 'commands.log'), `${log.join('\n')}\n`);
  const files = await digestTree(out);
  const digests = {
    version: DIGESTS_VERSION,
    checkout: { path: checkout, commit, subject, modified: dirty.stdout.trim() !== '' },
    wallSeconds: Math.round(wall),
    commands,
    files,
  };
  writeFileSync(join(out, 'digests.json'), `${JSON.stringify(digests, null, 1)}\n`);
  const failed = Object.values(commands).filter((c) => c.status !== 0).length;
  console.log(`${Object.keys(commands).length} commands (${failed} failed), ${Object.keys(files).length} files digested in ${out}/digests.json; ${wall.toFixed(0)} s`);
}

function sameRecord(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A command's records side by side; for printed results, only their first differing line. */
function describeCommand(x, y) {
  const lines = [];
  for (const key of ['argv', 'status', 'stderrTail']) {
    if (!sameRecord(x[key], y[key])) lines.push(`    ${key}: ${JSON.stringify(x[key])}\n    ${' '.repeat(key.length)}  vs ${JSON.stringify(y[key])}`);
  }
  if (x.stdout !== y.stdout) {
    const [p, q] = [(x.stdout ?? '').split('\n'), (y.stdout ?? '').split('\n')];
    const i = p.findIndex((line, k) => line !== q[k]);
    const at = i < 0 ? p.length : i;
    lines.push(`    stdout line ${at + 1}: ${JSON.stringify(p[at])}\n    ${' '.repeat(String(at + 1).length + 12)}vs ${JSON.stringify(q[at])}`);
  }
  return lines.join('\n');
}

function describeCheckout(digests, file) {
  const c = digests.checkout;
  return `${file} (${c.commit.slice(0, 7)}${c.modified ? ' with uncommitted changes' : ''})`;
}

function compare(args) {
  if (args.length !== 2) throw new Error('compare needs two digests.json files');
  const [a, b] = args.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  if (a.version !== b.version) throw new Error(`digests of versions ${a.version} and ${b.version}: rerun both with the same script`);
  const problems = [];
  for (const kind of ['commands', 'files']) {
    const names = [...new Set([...Object.keys(a[kind]), ...Object.keys(b[kind])])].sort();
    for (const name of names) {
      const [x, y] = [a[kind][name], b[kind][name]];
      if (!x) problems.push(`${kind} ${name}: only in ${args[1]}`);
      else if (!y) problems.push(`${kind} ${name}: only in ${args[0]}`);
      else if (sameRecord(x, y)) continue;
      else if (kind === 'commands') problems.push(`commands ${name}: differs\n${describeCommand(x, y)}`);
      else problems.push(`files ${name}: differs (sha256 ${x.sha256?.slice(0, 12)}, ${x.size} bytes vs ${y.sha256?.slice(0, 12)}, ${y.size} bytes)`);
    }
  }
  for (const p of problems) console.log(p);
  const between = `${describeCheckout(a, args[0])} and ${describeCheckout(b, args[1])}`;
  if (problems.length > 0) {
    console.log(`${problems.length} difference(s) between ${between}`);
    return 1;
  }
  console.log(`equal: ${Object.keys(a.commands).length} commands, ${Object.keys(a.files).length} files, between ${between}`);
  return 0;
}

function list() {
  for (const c of COMMANDS) console.log(`${c.name}: emseg ${c.argv.join(' ')}`);
}

const [mode, ...rest] = process.argv.slice(2);
try {
  if (mode === 'run') await run(rest);
  else if (mode === 'compare') process.exitCode = compare(rest);
  else if (mode === 'list') list();
  else {
    console.error('usage: compare-outputs.mjs run --emseg <checkout>/bin/emseg.js --out <dir>\n       compare-outputs.mjs compare <a>/digests.json <b>/digests.json\n       compare-outputs.mjs list');
    process.exitCode = 2;
  }
} catch (error) {
  console.error(`compare-outputs: ${error.message}`);
  process.exitCode = 2;
}
