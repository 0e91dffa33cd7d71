/**
 * TIFF reading. Metadata and most pixel data come from the `tiff` package. Written by hand, because
 * `tiff` 7 does not do them: (1) a pre-walk of the IFD chain, since `tiff` follows a looped chain
 * forever and allocates whatever count a hostile tag claims; (2) PackBits strips and 32-bit unsigned
 * integer samples, which `tiff` rejects. LZW strips on that path still go through `tiff`'s decoder.
 */
import { inflateSync } from 'node:zlib';
import { EmsegError } from '../errors.js';
import { decode as decodeTiffLib } from 'tiff';
import type { TiffIfd } from 'tiff';
import { EmsegIoError, describe } from './errors.js';
import { MAX_SLICE_PIXELS, checkDecodeMemory } from './limits.js';
import type { ColourPolicy } from './png.js';
import type { SampleType, StackData } from '../image/stack.js';
import { buildTiff } from './tiff-write.js';

export interface TiffPageInfo {
  width: number;
  height: number;
  /** Type of the grey slice this page decodes to. */
  sampleType: SampleType;
  ifd: TiffIfd;
}

export interface TiffFile {
  littleEndian: boolean;
  pages: TiffPageInfo[];
}

const COMPRESSION: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'deflate', 32946: 'deflate', 32773: 'PackBits' };
const TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8];
const MAX_PAGES = 1_000_000;

export function isTiff(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const le = bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 42 && bytes[3] === 0;
  const be = bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 42;
  return le || be;
}

/** Validates the header and all page headers; allocates no pixel memory. */
export function inspectTiff(bytes: Uint8Array, path: string, colour: ColourPolicy = 'reject'): TiffFile {
  if (!isTiff(bytes)) {
    const bigTiff = bytes.length >= 4 && (bytes[2] === 43 || bytes[3] === 43) && (bytes[0] === 0x49 || bytes[0] === 0x4d);
    if (bigTiff) throw new EmsegIoError('unsupported', path, 'BigTIFF files are not supported; save as classic TIFF');
    throw new EmsegIoError('not-image', path, 'not a TIFF file (wrong magic bytes)');
  }
  const littleEndian = bytes[0] === 0x49;
  walkIfdChain(bytes, littleEndian, path);
  let ifds: TiffIfd[];
  try {
    ifds = decodeTiffLib(bytes, { ignoreImageData: true });
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `TIFF header is corrupt (${describe(err)})`, { cause: err });
  }
  return { littleEndian, pages: ifds.map((ifd, i) => checkPage(ifd, i, bytes.length, path, colour)) };
}

/** Follows the IFD chain, refusing loops and any tag whose data lies outside the file. */
function walkIfdChain(bytes: Uint8Array, le: boolean, path: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new EmsegIoError('corrupt', path, 'TIFF file truncated inside its header');
  const seen = new Set<number>();
  let offset = view.getUint32(4, le);
  if (offset === 0) throw new EmsegIoError('corrupt', path, 'TIFF file has no image (no IFD)');
  while (offset !== 0) {
    if (seen.has(offset)) throw new EmsegIoError('corrupt', path, `TIFF page chain loops back to offset ${offset}`);
    if (seen.size >= MAX_PAGES) throw new EmsegIoError('too-large', path, `TIFF has more than ${MAX_PAGES} pages`);
    seen.add(offset);
    offset = walkIfd(view, offset, le, path, seen.size - 1, 0);
  }
}

/** Checks one IFD (and its EXIF/GPS sub-IFDs); returns the offset of the next IFD. */
function walkIfd(view: DataView, offset: number, le: boolean, path: string, page: number, depth: number): number {
  const where = `TIFF page ${page + 1}`;
  if (offset + 2 > view.byteLength) throw truncated(path, `${where} header lies beyond the end of the file`);
  const n = view.getUint16(offset, le);
  if (offset + 2 + 12 * n + 4 > view.byteLength) throw truncated(path, `${where} header is cut off`);
  for (let i = 0; i < n; i++) {
    const e = offset + 2 + 12 * i;
    const tag = view.getUint16(e, le);
    const type = view.getUint16(e + 2, le);
    const count = view.getUint32(e + 4, le);
    const size = (TYPE_SIZE[type] ?? 0) * count;
    const valueOffset = view.getUint32(e + 8, le);
    if (size > 4 && valueOffset + size > view.byteLength) {
      throw truncated(path, `${where}: tag ${tag} claims ${count} values beyond the end of the file`);
    }
    if ((tag === 0x8769 || tag === 0x8825) && depth === 0) walkIfd(view, valueOffset, le, path, page, 1);
  }
  return view.getUint32(offset + 2 + 12 * n, le);
}

function truncated(path: string, what: string): EmsegIoError {
  return new EmsegIoError('corrupt', path, `truncated or corrupt TIFF: ${what}`);
}

function checkPage(ifd: TiffIfd, i: number, fileSize: number, path: string, colour: ColourPolicy): TiffPageInfo {
  const where = `TIFF page ${i + 1}`;
  const unsupported = (what: string) => new EmsegIoError('unsupported', path, `${where}: ${what}`);
  const { width, height, bitsPerSample: bps, sampleFormat, samplesPerPixel: spp } = ifd;
  if (!(width > 0) || !(height > 0)) throw truncated(path, `${where} has no valid width/height`);
  if (width * height > MAX_SLICE_PIXELS) {
    throw new EmsegIoError('too-large', path, `${where} claims ${width}x${height} pixels (limit ${MAX_SLICE_PIXELS})`);
  }
  if (COMPRESSION[ifd.compression] === undefined) throw unsupported(`compression ${ifd.compression} (read: none, LZW, deflate, PackBits)`);
  if (ifd.orientation !== undefined && ifd.orientation !== 1) throw unsupported(`orientation ${ifd.orientation} (only top-left)`);
  const sampleType = sampleTypeOf(bps, sampleFormat);
  if (!sampleType) throw unsupported(`${bps}-bit samples of format ${sampleFormat} (read: 8/16/32-bit unsigned, 32-bit float)`);
  const photometric = ifd.type ?? 1;
  const isColour = spp > 1 || photometric === 2 || photometric === 3;
  if (isColour && colour !== 'to-grey') throw unsupported(`colour image (${spp} samples per pixel), expected grey; pass --to-grey (API: colour: 'to-grey') to keep its luma, or convert it`);
  if (photometric > 3) throw unsupported(`photometric interpretation ${photometric}`);
  if (photometric === 0 && sampleType === 'float32') throw unsupported('WhiteIsZero float image');
  if (isColour && (ifd.planarConfiguration !== 1 || !fastPathFits(ifd))) throw unsupported('colour layout (planar, PackBits or 32-bit)');
  if (!fastPathFits(ifd) && (ifd.tiled || bps === 1)) {
    throw unsupported(`${ifd.tiled ? 'tiled ' : ''}${COMPRESSION[ifd.compression]} ${bps}-bit image (not handled by the decoder)`);
  }
  checkStrips(ifd, fileSize, path, where);
  checkDecodeMemory(path, `${where} (${width}x${height})`, width * height * spp * Math.ceil(bps / 8), fileSize);
  return { width, height, sampleType, ifd };
}

function sampleTypeOf(bps: number, format: number): SampleType | undefined {
  if (format === 1 && (bps === 1 || bps === 8)) return 'uint8';
  if (format === 1 && bps === 16) return 'uint16';
  if (format === 1 && bps === 32) return 'uint32';
  if (format === 3 && bps === 32) return 'float32';
  return undefined;
}

/** Strips/tiles must lie inside the file; uncompressed data must be as long as the header says. */
function checkStrips(ifd: TiffIfd, fileSize: number, path: string, where: string): void {
  const offsets = (ifd.tiled ? ifd.tileOffsets : ifd.stripOffsets) as ArrayLike<number> | undefined;
  const counts = (ifd.tiled ? ifd.tileByteCounts : ifd.stripByteCounts) as ArrayLike<number> | undefined;
  if (!offsets || offsets.length === 0) throw truncated(path, `${where} has no pixel data offsets`);
  if (!counts || counts.length !== offsets.length) {
    if (ifd.compression !== 1 || ifd.tiled) throw truncated(path, `${where} has no valid byte counts`);
    return; // `tiff` guesses counts for uncompressed strips; reads past the end fail later as 'corrupt'
  }
  let total = 0;
  for (let k = 0; k < offsets.length; k++) {
    if (offsets[k]! + counts[k]! > fileSize) throw truncated(path, `${where} pixel data runs past the end of the file`);
    total += counts[k]!;
  }
  const needed = ifd.width * ifd.height * ifd.samplesPerPixel * (ifd.bitsPerSample / 8);
  if (ifd.compression === 1 && !ifd.tiled && total < needed) {
    throw truncated(path, `${where} claims ${ifd.width}x${ifd.height} pixels but holds ${total} of ${needed} bytes`);
  }
}

/** Cases `tiff` decodes itself; everything else goes through decodeStripsByHand. */
function fastPathFits(ifd: TiffIfd): boolean {
  const byLib = [1, 5, 8, 32946].includes(ifd.compression);
  const bps = ifd.bitsPerSample;
  return byLib && (ifd.sampleFormat === 3 ? bps === 32 : bps !== 32);
}

/** Decodes page `index` to one grey slice. */
export function decodeTiffPage(bytes: Uint8Array, file: TiffFile, index: number, path: string): StackData {
  const page = file.pages[index]!;
  const where = `TIFF page ${index + 1}`;
  try {
    const ifd = page.ifd;
    if (!fastPathFits(ifd)) return decodeStripsByHand(bytes, ifd, file.littleEndian, path, where);
    const decoded = decodeTiffLib(bytes, { pages: [index] })[0]!;
    return toGrey(decoded, page.sampleType);
  } catch (err) {
    if (err instanceof EmsegIoError) throw err;
    throw new EmsegIoError('corrupt', path, `${where} is truncated or corrupt (${describe(err)})`, { cause: err });
  }
}

function toGrey(ifd: TiffIfd, type: SampleType): StackData {
  const data = ifd.data as Uint8Array | Uint16Array | Float32Array;
  const n = ifd.width * ifd.height;
  if (ifd.bitsPerSample === 1) return data.map((v) => (v ? 255 : 0)) as Uint8Array;
  if (ifd.type === 3) return paletteToGrey(ifd, data);
  if (ifd.samplesPerPixel === 1) return data;
  const out = type === 'uint16' ? new Uint16Array(n) : type === 'float32' ? new Float32Array(n) : new Uint8Array(n);
  const c = ifd.samplesPerPixel;
  const grey = c < 3; // grey + alpha: keep grey
  for (let i = 0, j = 0; i < n; i++, j += c) {
    const v = grey ? data[j]! : 0.299 * data[j]! + 0.587 * data[j + 1]! + 0.114 * data[j + 2]!;
    out[i] = type === 'float32' ? v : Math.round(v);
  }
  return out;
}

/** Palette entries are 16-bit RGB; the grey slice is the 8-bit luma of each entry. */
function paletteToGrey(ifd: TiffIfd, indices: ArrayLike<number>): Uint8Array {
  const palette = ifd.palette;
  if (!palette) throw new EmsegError('corrupt', '', 'palette image without a colour map');
  const lut = palette.map(([r, g, b]) => Math.round((0.299 * r! + 0.587 * g! + 0.114 * b!) / 257));
  const out = new Uint8Array(ifd.width * ifd.height);
  for (let i = 0; i < out.length; i++) out[i] = lut[indices[i]!] ?? 0;
  return out;
}

/** PackBits and/or uint32 pages (strips only, one sample per pixel). */
function decodeStripsByHand(bytes: Uint8Array, ifd: TiffIfd, le: boolean, path: string, where: string): StackData {
  const { width, height } = ifd;
  const size = ifd.bitsPerSample / 8;
  const rowBytes = width * size;
  const rowsPerStrip = Math.min(ifd.rowsPerStrip, height);
  const raw = new Uint8Array(rowBytes * height);
  const offsets = ifd.stripOffsets;
  const counts = ifd.stripByteCounts ?? offsets.map(() => rowBytes * rowsPerStrip);
  if (offsets.length < Math.ceil(height / rowsPerStrip)) throw truncated(path, `${where} has too few strips`);
  for (let s = 0, at = 0; at < raw.length; s++) {
    const want = Math.min(rowBytes * rowsPerStrip, raw.length - at);
    const strip = bytes.subarray(offsets[s]!, offsets[s]! + counts[s]!);
    const plain = decompress(strip, ifd.compression, want, path, `${where} strip ${s + 1}`);
    raw.set(plain.subarray(0, want), at);
    at += want;
  }
  const out = samplesOf(raw, ifd, le);
  if (ifd.predictor === 2) undoHorizontalDifferencing(out, width, path, where);
  else if (ifd.predictor !== 1) throw new EmsegIoError('unsupported', path, `${where}: predictor ${ifd.predictor}`);
  if (ifd.type === 0) invert(out, ifd.bitsPerSample);
  return out;
}

/** Raw strip bytes to typed samples in the file's byte order. */
function samplesOf(raw: Uint8Array, ifd: TiffIfd, le: boolean): StackData {
  const n = ifd.width * ifd.height;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (ifd.bitsPerSample) {
    case 8:
      return raw;
    case 16:
      return Uint16Array.from({ length: n }, (_, i) => view.getUint16(2 * i, le));
    default:
      return ifd.sampleFormat === 3
        ? Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, le))
        : Uint32Array.from({ length: n }, (_, i) => view.getUint32(4 * i, le));
  }
}

function decompress(strip: Uint8Array, compression: number, want: number, path: string, where: string): Uint8Array {
  let out: Uint8Array;
  if (compression === 1) out = strip;
  else if (compression === 32773) out = unpackBits(strip, want);
  else if (compression === 5) out = lzwViaTiff(strip, want);
  else out = new Uint8Array(inflateSync(strip, { maxOutputLength: Math.max(want, 1) }));
  if (out.length < want) throw truncated(path, `${where} decodes to ${out.length} of ${want} bytes`);
  return out;
}

/** PackBits (TIFF 6.0, section 9): n >= 0 copies n+1 literal bytes, n in [-127,-1] repeats one byte 1-n times. */
export function unpackBits(src: Uint8Array, want: number): Uint8Array {
  const out = new Uint8Array(want);
  let i = 0;
  let o = 0;
  while (o < want && i < src.length) {
    const n = (src[i++]! << 24) >> 24;
    if (n >= 0) {
      const end = Math.min(i + n + 1, src.length);
      const len = Math.min(end - i, want - o);
      out.set(src.subarray(i, i + len), o);
      o += len;
      i = end;
    } else if (n !== -128) {
      if (i >= src.length) break;
      out.fill(src[i++]!, o, Math.min(o + 1 - n, want));
      o = Math.min(o + 1 - n, want);
    }
  }
  return out.subarray(0, o);
}

/**
 * `tiff` exports no raw LZW decoder, only whole-file decoding; wrapping the strip in a one-row 8-bit
 * TIFF lets us reuse its LZW code for the uint32/PackBits-path instead of writing another LZW decoder.
 */
function lzwViaTiff(strip: Uint8Array, want: number): Uint8Array {
  const wrapper = buildTiff([{ width: want, height: 1, bitsPerSample: 8, sampleFormat: 1, compression: 5, rowsPerStrip: 1, strips: [strip] }]);
  return decodeTiffLib(wrapper)[0]!.data as Uint8Array;
}

function undoHorizontalDifferencing(data: StackData, width: number, path: string, where: string): void {
  if (data instanceof Float32Array) throw new EmsegIoError('unsupported', path, `${where}: predictor 2 on float data`);
  const mask = 2 ** (data.BYTES_PER_ELEMENT * 8);
  for (let row = 0; row < data.length; row += width) {
    for (let x = 1; x < width; x++) data[row + x] = (data[row + x]! + data[row + x - 1]!) % mask;
  }
}

function invert(data: StackData, bps: number): void {
  const max = 2 ** bps - 1;
  for (let i = 0; i < data.length; i++) data[i] = max - data[i]!;
}
