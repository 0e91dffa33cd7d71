/**
 * RGBA error overlays: a section in grey with the warping error's split and merger pixels marked,
 * each cluster of them ringed so that single pixels stay visible at a glance; and mosaics of them.
 */
import type { RgbaImage } from '../image/stack.js';
import type { PixelPosition } from '../metrics/index.js';

export type { RgbaImage };

export type Rgb = readonly [number, number, number];

/** Splits (a segment cut in two) in vermilion, mergers (two segments joined) in sky blue: apart for colour-blind readers too. */
export const SPLIT_COLOUR: Rgb = [255, 80, 0];
export const MERGER_COLOUR: Rgb = [0, 190, 255];
const HALO: Rgb = [0, 0, 0];
export const SPLIT_CSS = 'rgb(255,80,0)';
export const MERGER_CSS = 'rgb(0,190,255)';

export interface OverlayOptions {
  /** Background section, values in [0, 1] (raw EM or the prediction), row-major. */
  base: Float32Array;
  width: number;
  height: number;
  splits: readonly PixelPosition[];
  mergers: readonly PixelPosition[];
  /**
   * Display scale. Default: enlarge small sections by a whole factor up to `targetEdge` (so marks
   * have room), shrink large ones to fit `maxEdge` (box average).
   */
  scale?: number;
  targetEdge?: number;
  maxEdge?: number;
  /** Ring radius around each marked pixel, in display pixels (0 = no rings). */
  ring?: number;
}

/** The display scale `errorOverlay` uses for a section of this size. */
export function displayScale(width: number, height: number, targetEdge = 512, maxEdge = 768): number {
  const edge = Math.max(width, height);
  if (edge > maxEdge) return maxEdge / edge;
  return Math.max(1, Math.min(4, Math.floor(targetEdge / edge)));
}

function resampleGrey(base: Float32Array, width: number, height: number, dw: number, dh: number): Float32Array {
  const out = new Float32Array(dw * dh);
  const fx = width / dw;
  const fy = height / dh;
  for (let y = 0; y < dh; y++) {
    const y0 = Math.floor(y * fy);
    const y1 = Math.max(y0 + 1, Math.min(height, Math.floor((y + 1) * fy)));
    for (let x = 0; x < dw; x++) {
      const x0 = Math.floor(x * fx);
      const x1 = Math.max(x0 + 1, Math.min(width, Math.floor((x + 1) * fx)));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += base[yy * width + xx]!;
      out[y * dw + x] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

function blend(img: RgbaImage, x: number, y: number, c: Rgb, alpha: number): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height || alpha <= 0) return;
  const a = Math.min(1, alpha);
  const i = (y * img.width + x) * 4;
  for (let k = 0; k < 3; k++) img.data[i + k] = Math.round(img.data[i + k]! * (1 - a) + c[k]! * a);
}

/** Anti-aliased ring of radius r (1.6 px thick) centred at (cx, cy), in display pixels. */
function ring(img: RgbaImage, cx: number, cy: number, r: number, c: Rgb): void {
  const reach = Math.ceil(r + 2);
  for (let y = Math.floor(cy - reach); y <= Math.ceil(cy + reach); y++) {
    for (let x = Math.floor(cx - reach); x <= Math.ceil(cx + reach); x++) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
      blend(img, x, y, c, 1 - Math.max(0, Math.abs(d - r) - 0.8));
    }
  }
}

/** Groups points lying within `distance` (chessboard) of each other, transitively. */
export function clusters(points: readonly PixelPosition[], distance: number): PixelPosition[][] {
  const key = (x: number, y: number): string => `${x},${y}`;
  const unvisited = new Map<string, PixelPosition>();
  for (const p of points) unvisited.set(key(p.x, p.y), p);
  const groups: PixelPosition[][] = [];
  for (const start of points) {
    if (!unvisited.delete(key(start.x, start.y))) continue;
    const group = [start];
    for (let i = 0; i < group.length; i++) {
      const p = group[i]!;
      for (let dy = -distance; dy <= distance; dy++) {
        for (let dx = -distance; dx <= distance; dx++) {
          const k = key(p.x + dx, p.y + dy);
          const q = unvisited.get(k);
          if (q) {
            unvisited.delete(k);
            group.push(q);
          }
        }
      }
    }
    groups.push(group);
  }
  return groups;
}

/** A grey section with split and merger pixels filled in their colours and ringed. */
export function errorOverlay(o: OverlayOptions): RgbaImage {
  const { width, height } = o;
  // invariant: the report builds the base from the stack it draws
  if (o.base.length !== width * height) throw new RangeError(`overlay base holds ${o.base.length} values, expected ${width}x${height}`);
  const s = o.scale ?? displayScale(width, height, o.targetEdge, o.maxEdge);
  const dw = Math.max(1, Math.round(width * s));
  const dh = Math.max(1, Math.round(height * s));
  const grey = resampleGrey(o.base, width, height, dw, dh);
  const img: RgbaImage = { width: dw, height: dh, data: new Uint8Array(dw * dh * 4) };
  for (let i = 0; i < dw * dh; i++) {
    // Slightly compressed contrast so the coloured marks stand out on black and white alike.
    const v = Math.round(24 + Math.min(1, Math.max(0, grey[i]!)) * 200);
    img.data[4 * i] = v;
    img.data[4 * i + 1] = v;
    img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  const r = o.ring ?? Math.max(4, 2.5 * s);
  const mark = (points: readonly PixelPosition[], c: Rgb): void => {
    // One ring per cluster of nearby marks: rings around each pixel of a cluster would merge into
    // a blob hiding the image under it.
    if (r > 0) {
      for (const cluster of clusters(points, 2)) {
        let cx = 0;
        let cy = 0;
        for (const p of cluster) {
          cx += p.x + 0.5;
          cy += p.y + 0.5;
        }
        cx /= cluster.length;
        cy /= cluster.length;
        let reach = 0;
        for (const p of cluster) reach = Math.max(reach, Math.hypot(p.x + 0.5 - cx, p.y + 0.5 - cy));
        // A cluster spread over much of the section is visible without a ring (and one would hide the section).
        if (reach * s <= 8 * r) ring(img, cx * s, cy * s, r + reach * s, c);
      }
    }
    // The pixels themselves (at least one display pixel even when shrunk), on a dark halo for contrast.
    const box = (p: PixelPosition, grow: number): [number, number, number, number] => {
      const x0 = Math.floor(p.x * s);
      const y0 = Math.floor(p.y * s);
      return [x0 - grow, y0 - grow, Math.max(x0 + 1, Math.floor((p.x + 1) * s)) + grow, Math.max(y0 + 1, Math.floor((p.y + 1) * s)) + grow];
    };
    for (const p of points) {
      const [x0, y0, x1, y1] = box(p, 1);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) blend(img, x, y, HALO, 0.6);
    }
    for (const p of points) {
      const [x0, y0, x1, y1] = box(p, 0);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) blend(img, x, y, c, 1);
    }
  };
  mark(o.splits, SPLIT_COLOUR);
  mark(o.mergers, MERGER_COLOUR);
  return img;
}

/** Tiles images left to right, top to bottom, `gap` pixels apart on `background`. */
export function mosaic(images: readonly RgbaImage[], columns: number, gap = 8, background: Rgb = [255, 255, 255]): RgbaImage {
  if (images.length === 0) throw new RangeError('mosaic of no images'); // invariant: callers refuse an empty report first
  const cols = Math.max(1, Math.min(columns, images.length));
  const rows = Math.ceil(images.length / cols);
  const cellW = Math.max(...images.map((i) => i.width));
  const cellH = Math.max(...images.map((i) => i.height));
  const width = cols * cellW + (cols + 1) * gap;
  const height = rows * cellH + (rows + 1) * gap;
  const out: RgbaImage = { width, height, data: new Uint8Array(width * height * 4) };
  for (let i = 0; i < width * height; i++) out.data.set([...background, 255], 4 * i);
  images.forEach((img, k) => {
    const ox = gap + (k % cols) * (cellW + gap);
    const oy = gap + Math.floor(k / cols) * (cellH + gap);
    for (let y = 0; y < img.height; y++) {
      out.data.set(img.data.subarray(y * img.width * 4, (y + 1) * img.width * 4), ((oy + y) * width + ox) * 4);
    }
  });
  return out;
}

/** A column count that makes a mosaic of `n` tiles roughly square. */
export function mosaicColumns(n: number, maxColumns = 6): number {
  return Math.max(1, Math.min(maxColumns, Math.ceil(Math.sqrt(n))));
}
