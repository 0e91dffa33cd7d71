/**
 * Minimal baseline-TIFF writer: little-endian, one uncompressed strip per page, grey, uint8/16/32 or
 * float32, any number of pages. Written by hand because the `tiff` package only decodes and the ISBI
 * submission format needs a multi-page float32 TIFF. Pages are laid out as [strip bytes][IFD][arrays],
 * so a stack can be streamed page by page: each IFD is linked from the previous one by a 4-byte patch.
 */
import { EmsegIoError } from './errors.js';
import type { StackData } from '../image/stack.js';
import type { TiffResolution } from './voxel-size.js';

/** What the directory of a page says; the strips come separately. */
export interface TiffPageHeader {
  width: number;
  height: number;
  bitsPerSample: 8 | 16 | 32;
  /** 1 = unsigned integer, 3 = IEEE float. */
  sampleFormat: 1 | 3;
  /** 1 = none (default); other values only when the caller encoded the strips itself. */
  compression?: number;
  predictor?: number;
  rowsPerStrip: number;
  /** ImageDescription (ASCII, tag 270): what emseg records about the data, e.g. the maps' gap-closing options. */
  description?: string;
  /** XResolution, YResolution and ResolutionUnit (io/voxel-size.ts tiffResolution): the pixel size, when known. */
  resolution?: TiffResolution;
}

/** One page with its strips already encoded (raw, or compressed by the caller for tests). */
export interface RawTiffPage extends TiffPageHeader {
  strips: Uint8Array[];
}

/** Where a streamed page's strips, directory and link go. */
export interface StreamedPagePlacement {
  /** Start of the page's first strip. */
  position: number;
  /** File offset of each strip. */
  strips: number[];
  ifd: { position: number; bytes: Uint8Array };
  link: { position: number; bytes: Uint8Array };
}

export interface PagePlacement {
  /** Where `bytes` go in the file. */
  position: number;
  bytes: Uint8Array;
  /** 4 bytes to write at `link.position` so the previous IFD (or the header) points to this page. */
  link: { position: number; bytes: Uint8Array };
}

const ASCII = 2;
const SHORT = 3;
const LONG = 4;
const RATIONAL = 5;
/** Bytes of one RATIONAL value (two LONGs), which never fits in a directory entry. */
const RATIONAL_BYTES = 8;
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Computes the byte layout of a TIFF file one page at a time; the caller writes the bytes. */
export class TiffLayout {
  private end = 8;
  private linkPosition = 4;

  constructor(private readonly path: string) {}

  /** The 8-byte header ("II", 42, first-IFD offset 0 until the first page is linked). */
  header(): Uint8Array {
    const h = new Uint8Array(8);
    const v = new DataView(h.buffer);
    v.setUint16(0, 0x4949);
    v.setUint16(2, 42, true);
    return h;
  }

  addPage(page: RawTiffPage): PagePlacement {
    const placed = this.placePage(page, page.strips.map((b) => b.length));
    const bytes = new Uint8Array(placed.ifd.position + placed.ifd.bytes.length - placed.position);
    let at = 0;
    for (const strip of page.strips) {
      bytes.set(strip, at);
      at += strip.length;
    }
    bytes.set(placed.ifd.bytes, placed.ifd.position - placed.position);
    return { position: placed.position, bytes, link: placed.link };
  }

  /**
   * Lays out a page whose strips the caller writes itself, one at a time, at `strips[i]` (so a large page is never
   * held whole); `ifd` (the directory and its arrays) and `link` are written once, in any order.
   */
  placePage(page: TiffPageHeader, stripLengths: readonly number[]): StreamedPagePlacement {
    const position = this.end;
    const stripBytes = stripLengths.reduce((s, b) => s + b, 0);
    const stripsEnd = position + stripBytes;
    const ifdOffset = stripsEnd + (stripsEnd & 1); // IFDs must start on a word boundary
    const entries = entriesFor(page);
    const n = stripLengths.length;
    const arraysOffset = ifdOffset + 2 + 12 * entries.length + 4;
    const arrayBytes = n > 1 ? 8 * n : 0; // StripOffsets and StripByteCounts out of line
    const text = descriptionBytes(page.description, this.path);
    const textOffset = arraysOffset + arrayBytes;
    const textEnd = textOffset + (text.length > 4 ? text.length : 0);
    // The two resolutions follow the text, on a word boundary (TIFF values start at even offsets).
    const rationalsOffset = textEnd + (page.resolution ? textEnd & 1 : 0);
    const end = rationalsOffset + (page.resolution ? 2 * RATIONAL_BYTES : 0);
    if (end > 2 ** 32 - 1) {
      throw new EmsegIoError('too-large', this.path, 'TIFF output would exceed 4 GiB (BigTIFF is not supported); write a folder of slices instead');
    }
    const bytes = new Uint8Array(end - ifdOffset);
    const view = new DataView(bytes.buffer);
    const offsets: number[] = [];
    let at = position;
    for (const length of stripLengths) {
      offsets.push(at);
      at += length;
    }
    writeIfd(view, 0, entries, stripLengths, offsets, { offsets: arraysOffset, counts: arraysOffset + 4 * n,
      xres: rationalsOffset, yres: rationalsOffset + RATIONAL_BYTES }, { text, offset: textOffset });
    if (text.length > 4) bytes.set(text, textOffset - ifdOffset);
    if (n > 1) {
      stripLengths.forEach((length, i) => {
        view.setUint32(arraysOffset - ifdOffset + 4 * i, offsets[i]!, true);
        view.setUint32(arraysOffset - ifdOffset + 4 * (n + i), length, true);
      });
    }
    if (page.resolution) {
      [page.resolution.x, page.resolution.y].forEach(([num, den], i) => {
        view.setUint32(rationalsOffset - ifdOffset + RATIONAL_BYTES * i, num, true);
        view.setUint32(rationalsOffset - ifdOffset + RATIONAL_BYTES * i + 4, den, true);
      });
    }
    const link = { position: this.linkPosition, bytes: u32le(ifdOffset) };
    this.linkPosition = ifdOffset + 2 + 12 * entries.length;
    this.end = end;
    return { position, strips: offsets, ifd: { position: ifdOffset, bytes }, link };
  }
}

type Entry = [tag: number, type: number, value: number | 'offsets' | 'counts' | 'description' | 'xres' | 'yres'];

/** The description as NUL-terminated ASCII (TIFF 6.0, type 2); anything else is refused, not mangled. */
function descriptionBytes(description: string | undefined, path: string): Uint8Array {
  if (description === undefined) return new Uint8Array(0);
  if (!/^[\x01-\x7f]*$/.test(description)) {
    throw new EmsegIoError('invalid-data', path, 'a TIFF ImageDescription must be 7-bit ASCII without NUL');
  }
  return Uint8Array.from(`${description}\0`, (c) => c.charCodeAt(0));
}

function entriesFor(p: TiffPageHeader): Entry[] {
  const e: Entry[] = [
    [256, LONG, p.width],
    [257, LONG, p.height],
    [258, SHORT, p.bitsPerSample],
    [259, SHORT, p.compression ?? 1],
    [262, SHORT, 1], // BlackIsZero
    ...(p.description !== undefined ? [[270, ASCII, 'description'] as Entry] : []),
    [273, LONG, 'offsets'],
    [277, SHORT, 1],
    [278, LONG, p.rowsPerStrip],
    [279, LONG, 'counts'],
    ...(p.resolution ? [[282, RATIONAL, 'xres'], [283, RATIONAL, 'yres']] as Entry[] : []),
    [284, SHORT, 1],
    ...(p.resolution ? [[296, SHORT, p.resolution.unit] as Entry] : []),
  ];
  if (p.predictor !== undefined) e.push([317, SHORT, p.predictor]);
  e.push([339, SHORT, p.sampleFormat]);
  return e;
}

function writeIfd(
  view: DataView,
  at: number,
  entries: Entry[],
  stripLengths: readonly number[],
  offsets: number[],
  arrays: { offsets: number; counts: number; xres: number; yres: number },
  description: { text: Uint8Array; offset: number },
): void {
  const n = stripLengths.length;
  view.setUint16(at, entries.length, true);
  entries.forEach(([tag, type, value], i) => {
    const e = at + 2 + 12 * i;
    const rational = value === 'xres' || value === 'yres';
    const count = typeof value === 'number' || rational ? 1 : value === 'description' ? description.text.length : n;
    view.setUint16(e, tag, true);
    view.setUint16(e + 2, type, true);
    view.setUint32(e + 4, count, true);
    if (value === 'description') {
      // Up to 4 bytes sit in the entry itself; longer text lies after the directory.
      if (count <= 4) new Uint8Array(view.buffer, view.byteOffset + e + 8, count).set(description.text);
      else view.setUint32(e + 8, description.offset, true);
    } else if (rational) {
      view.setUint32(e + 8, arrays[value], true);
    } else if (typeof value === 'number') {
      if (type === SHORT) view.setUint16(e + 8, value, true);
      else view.setUint32(e + 8, value, true);
    } else if (n === 1) {
      view.setUint32(e + 8, value === 'offsets' ? offsets[0]! : stripLengths[0]!, true);
    } else {
      view.setUint32(e + 8, arrays[value], true);
    }
  });
  view.setUint32(at + 2 + 12 * entries.length, 0, true); // next IFD: patched when another page follows
}

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

/** Raw little-endian bytes of a grey slice, as one uncompressed strip. */
export function pageFromSlice(data: StackData, width: number, height: number): RawTiffPage {
  const bitsPerSample = (data.BYTES_PER_ELEMENT * 8) as 8 | 16 | 32;
  const sampleFormat = data instanceof Float32Array ? 3 : 1;
  return { width, height, bitsPerSample, sampleFormat, rowsPerStrip: height, strips: [littleEndianBytes(data)] };
}

/** Raw little-endian bytes of some rows of a slice (one strip of a streamed page). */
export function littleEndianBytes(data: StackData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LE || data.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const size = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += size) for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k]!;
  return out;
}

/** Assembles a whole TIFF in memory (small files, tests, in-memory decoding helpers). */
export function buildTiff(pages: RawTiffPage[], path = '<memory>'): Uint8Array {
  const layout = new TiffLayout(path);
  const parts: PagePlacement[] = pages.map((p) => layout.addPage(p));
  const last = parts.at(-1);
  const out = new Uint8Array(last ? last.position + last.bytes.length : 8);
  out.set(layout.header(), 0);
  for (const p of parts) {
    out.set(p.bytes, p.position);
    out.set(p.link.bytes, p.link.position);
  }
  return out;
}

/** Encodes grey slices (all the same size and type) as an uncompressed multi-page TIFF. */
export function encodeTiff(slices: StackData[], width: number, height: number): Uint8Array {
  return buildTiff(slices.map((s) => pageFromSlice(s, width, height)));
}
