import { EmsegError } from '../../errors.js';

/**
 * NumPy .npy files (format version 1.0), the test-tensor format of bioimage.io packages. The format is a few lines
 * of spec (numpy.lib.format): the magic "\x93NUMPY", version bytes 1 0, a little-endian uint16 header length, an
 * ASCII Python-dict header {'descr', 'fortran_order', 'shape'} padded with spaces and ending in '\n' so the data
 * starts at a multiple of 64 bytes, then the raw little-endian C-order data. No npy package is installed in this
 * project, and writing and reading two dtypes does not justify one.
 */

export type NpyArray = Uint8Array | Uint16Array | Uint32Array | Float32Array;

const MAGIC = [0x93, ...Buffer.from('NUMPY', 'latin1')];
const VERSION = [1, 0];
const PREAMBLE_BYTES = MAGIC.length + VERSION.length + 2;
const ALIGNMENT = 64;
const DESCR: Record<string, string> = { Uint8Array: '|u1', Uint16Array: '<u2', Uint32Array: '<u4', Float32Array: '<f4' };
const ITEM_SIZE: Record<string, number> = { '|u1': 1, '<u2': 2, '<u4': 4, '<f4': 4 };

export function encodeNpy(data: NpyArray, shape: readonly number[]): Uint8Array {
  if (data.length !== shape.reduce((a, b) => a * b, 1)) {
    throw new EmsegError('invalid-option', 'npy', `${data.length} values do not fill shape ${shape.join('x')}`);
  }
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${DESCR[data.constructor.name]}', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = Math.ceil((PREAMBLE_BYTES + header.length + 1) / ALIGNMENT) * ALIGNMENT;
  header = `${header.padEnd(total - PREAMBLE_BYTES - 1, ' ')}\n`;
  const out = new Uint8Array(total + data.byteLength);
  out.set([...MAGIC, ...VERSION, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), PREAMBLE_BYTES);
  // Node runs on little-endian hosts only, so the typed array's bytes are already in the declared order.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** Reads what encodeNpy writes (version 1.0, C order, |u1, <u2, <u4 or <f4); `path` names the file in errors. */
export function decodeNpy(bytes: Uint8Array, path: string): { data: NpyArray; shape: number[] } {
  const bad = (why: string): never => { throw new EmsegError('corrupt', path, why); };
  if (bytes.length < PREAMBLE_BYTES || !MAGIC.every((b, i) => bytes[i] === b)) bad('is not a .npy file');
  if (bytes[MAGIC.length] !== 1) bad(`has .npy version ${bytes[MAGIC.length]}; only 1.0 is read`);
  const headerLength = bytes[8]! | (bytes[9]! << 8);
  const header = Buffer.from(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (/'fortran_order':\s*True/.test(header)) bad('is in Fortran order');
  if (descr === undefined || shapeText === undefined) return bad('has no descr or shape in its header');
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = PREAMBLE_BYTES + headerLength;
  const body = bytes.slice(start); // a copy: typed arrays need an aligned, exactly sized buffer
  const make: Record<string, () => NpyArray> = {
    '|u1': () => new Uint8Array(body.buffer, 0, count),
    '<u2': () => new Uint16Array(body.buffer, 0, count),
    '<u4': () => new Uint32Array(body.buffer, 0, count),
    '<f4': () => new Float32Array(body.buffer, 0, count),
  };
  const build = make[descr];
  if (!build) return bad(`has dtype ${descr}; only |u1, <u2, <u4 and <f4 are read`);
  const itemSize = ITEM_SIZE[descr]!;
  if (body.length !== count * itemSize) bad(`holds ${body.length} data bytes, shape ${shape.join('x')} needs ${count * itemSize}`);
  return { data: build(), shape };
}
