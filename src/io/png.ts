/** PNG slices: header checks before allocation, decode via fast-png, grey policy, 8/16-bit encode. */
import { convertIndexedToRgb, decode, encode, hasPngSignature } from 'fast-png';
import type { DecodedPng } from 'fast-png';
import { EmsegIoError, describe } from './errors.js';
import { MAX_SLICE_PIXELS, checkDecodeMemory } from './limits.js';

/** What to do with colour, palette or alpha images: refuse (default) or reduce to one grey channel. */
export type ColourPolicy = 'reject' | 'to-grey';

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
}

/** Bytes needed to read the header: signature (8) + IHDR length/type (8) + IHDR data (13). */
export const PNG_HEADER_BYTES = 29;

const COLOUR_NAMES: Record<number, string> = {
  0: 'grey',
  2: 'RGB colour',
  3: 'palette colour',
  4: 'grey + alpha',
  6: 'RGBA colour',
};
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && hasPngSignature(bytes.subarray(0, 8));
}

/** Parses IHDR by hand so absurd sizes are refused before fast-png allocates anything. */
export function readPngHeader(bytes: Uint8Array, path: string): PngHeader {
  if (!isPng(bytes)) throw new EmsegIoError('not-image', path, 'not a PNG file (wrong magic bytes)');
  if (bytes.length < PNG_HEADER_BYTES) throw new EmsegIoError('corrupt', path, 'PNG file truncated inside its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (view.getUint32(8) !== 13 || type !== 'IHDR') {
    throw new EmsegIoError('corrupt', path, 'PNG header is damaged (first chunk is not IHDR)');
  }
  const header = {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24]!,
    colourType: bytes[25]!,
  };
  if (header.width === 0 || header.height === 0) {
    throw new EmsegIoError('corrupt', path, `PNG header claims an empty image (${header.width}x${header.height})`);
  }
  if (CHANNELS[header.colourType] === undefined) {
    throw new EmsegIoError('corrupt', path, `PNG header has an invalid colour type ${header.colourType}`);
  }
  return header;
}

/**
 * Refuses headers whose size cannot be real. Deflate never expands data more than 1032:1,
 * so raw pixel bytes far beyond 1032 x file size mean a corrupt or truncated file.
 */
export function checkPngSize(h: PngHeader, fileSize: number, path: string): void {
  const pixels = h.width * h.height;
  if (pixels > MAX_SLICE_PIXELS) {
    throw new EmsegIoError('too-large', path, `PNG header claims ${h.width}x${h.height} pixels (limit ${MAX_SLICE_PIXELS})`);
  }
  const rawBytes = h.height * (1 + Math.ceil((h.width * CHANNELS[h.colourType]! * h.bitDepth) / 8));
  if (rawBytes > 1032 * fileSize + 4096) {
    throw new EmsegIoError(
      'corrupt',
      path,
      `PNG header claims ${h.width}x${h.height} pixels but the file is only ${fileSize} bytes: truncated or corrupt`,
    );
  }
  checkDecodeMemory(path, `a ${h.width}x${h.height} PNG`, rawBytes, fileSize);
}

export function checkPngColour(h: PngHeader, colour: ColourPolicy, path: string): void {
  if (h.colourType !== 0 && colour !== 'to-grey') {
    throw new EmsegIoError('unsupported', path, `PNG is ${COLOUR_NAMES[h.colourType]}, expected grey; pass --to-grey (API: colour: 'to-grey') to keep its luma, or convert it`);
  }
}

export interface GreySlice {
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
}

/** Decodes one PNG to a single grey channel (8- or 16-bit). */
export function decodePng(bytes: Uint8Array, path: string, colour: ColourPolicy = 'reject'): GreySlice {
  const header = readPngHeader(bytes, path);
  checkPngSize(header, bytes.length, path);
  checkPngColour(header, colour, path);
  let png: DecodedPng;
  try {
    png = decode(bytes, { checkCrc: true });
  } catch (err) {
    throw new EmsegIoError('corrupt', path, `PNG is truncated or corrupt (${describe(err)})`, { cause: err });
  }
  const expected = Math.ceil((png.width * png.channels * png.depth) / 8) * png.height;
  if (png.data.length * (png.depth === 16 ? 2 : 1) < expected) {
    throw new EmsegIoError('corrupt', path, 'PNG pixel data is truncated');
  }
  return { width: png.width, height: png.height, data: toGrey(png, header.colourType) };
}

function toGrey(png: DecodedPng, colourType: number): Uint8Array | Uint16Array {
  if (colourType === 3) return luminance(convertIndexedToRgb(png), png.palette![0]!.length, false, new Uint8Array(png.width * png.height));
  if (png.depth < 8) return unpackLowDepth(png);
  const n = png.width * png.height;
  if (png.channels === 1) return png.data as Uint8Array | Uint16Array;
  const out = png.depth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  return luminance(png.data, png.channels, png.channels === 2, out);
}

/** ITU-R BT.601 luma; grey+alpha keeps the grey channel. Alpha is ignored (documented in ColourPolicy). */
function luminance<T extends Uint8Array | Uint16Array>(
  src: ArrayLike<number>,
  channels: number,
  greyAlpha: boolean,
  out: T,
): T {
  for (let i = 0, j = 0; i < out.length; i++, j += channels) {
    out[i] = greyAlpha ? src[j]! : Math.round(0.299 * src[j]! + 0.587 * src[j + 1]! + 0.114 * src[j + 2]!);
  }
  return out;
}

/** fast-png returns 1/2/4-bit grey rows still packed; unpack them and stretch to 0..255 (e.g. 1-bit labels). */
function unpackLowDepth(png: DecodedPng): Uint8Array {
  const { width, height, depth } = png;
  const src = png.data as Uint8Array;
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const max = (1 << depth) - 1;
  const scale = 255 / max;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = src[y * rowBytes + (bit >> 3)]!;
      const value = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * width + x] = Math.round(value * scale);
    }
  }
  return out;
}

/** Encodes one grey slice: Uint8Array as 8-bit, Uint16Array as 16-bit PNG. */
export function encodePng(data: Uint8Array | Uint16Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data, channels: 1, depth: data instanceof Uint16Array ? 16 : 8 });
}
