/** Colours of each layer, as RGBA tiles the page lays over each other. */
import { encode } from 'fast-png';
import { labelsToMask, type LabelPolarity } from '../io/index.js';
import { MERGER, SPLIT } from './errors-layer.js';
import type { LayerKind } from './protocol.js';
import type { Plane } from './source.js';

export type Rgb = readonly [number, number, number];
/** Ground-truth membrane outlines. */
export const LABEL_COLOUR: Rgb = [0, 255, 0];
export const SPLIT_COLOUR: Rgb = [0, 200, 255];
export const MERGER_COLOUR: Rgb = [255, 0, 255];
const OPAQUE = 255;
/**
 * Alpha of the other cells while one neuron is highlighted: faint enough that the chosen one stands out, still
 * there so that its neighbours can be seen.
 */
export const DIMMED_ALPHA = 48;
const GOLDEN_ANGLE_DEG = 137.508;

/** How samples of a layer become colours. */
export interface Painter {
  /** Intensity to [0, 1] for the grey image. */
  grey?: (v: number) => number;
  /** P(membrane) of a map sample. */
  pMembrane?: (v: number) => number;
  polarity?: LabelPolarity;
  /** A cell id shown opaque while every other id is dimmed to DIMMED_ALPHA (the page's click on a neuron). */
  highlight?: number;
  /** File the labels came from, for the error a label value outside the polarity raises. */
  source?: string;
}

/**
 * "Hot" colour map for P(membrane): transparent where p = 0, red at 0.5, yellow at 1, so that the image shows
 * through interiors and membranes stand out. (paint() inlines it for speed; tests compare against this.)
 */
export function hot(p: number): [number, number, number, number] {
  const q = Math.min(1, Math.max(0, p));
  return [OPAQUE, Math.round(OPAQUE * Math.max(0, 2 * q - 1)), 0, Math.round(OPAQUE * q)];
}

/**
 * A distinct colour per cell id: hues a golden angle apart, so neighbouring ids never look alike. A pure function of
 * the id, so one neuron has one colour on every section, in every view and in every run of the viewer.
 */
export function cellColour(id: number): Rgb {
  const h = ((id * GOLDEN_ANGLE_DEG) % 360) / 60;
  const s = 0.85;
  const v = 0.95;
  const c = v * s;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const m = v - c;
  const [r, g, b] = h < 1 ? [c, x, 0] : h < 2 ? [x, c, 0] : h < 3 ? [0, c, x] : h < 4 ? [0, x, c] : h < 5 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * OPAQUE), Math.round((g + m) * OPAQUE), Math.round((b + m) * OPAQUE)];
}

/** RGBA pixels of one tile of a layer (tight loops: a tile is 65536 pixels, made while someone waits). */
export function paint(kind: LayerKind, tile: Plane, painter: Painter): Uint8Array {
  const n = tile.width * tile.height;
  const out = new Uint8Array(n * 4);
  const put = (i: number, c: Rgb, a: number) => {
    out[4 * i] = c[0];
    out[4 * i + 1] = c[1];
    out[4 * i + 2] = c[2];
    out[4 * i + 3] = a;
  };
  const d = tile.data;
  switch (kind) {
    case 'image': {
      const grey = painter.grey!;
      for (let i = 0; i < n; i++) {
        const g = Math.round(OPAQUE * grey(d[i]!));
        out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = g;
        out[4 * i + 3] = OPAQUE;
      }
      break;
    }
    case 'map':
    case 'compare': {
      const pMembrane = painter.pMembrane!;
      for (let i = 0; i < n; i++) {
        const q = Math.min(1, Math.max(0, pMembrane(d[i]!)));
        out[4 * i] = OPAQUE;
        out[4 * i + 1] = Math.round(OPAQUE * Math.max(0, 2 * q - 1));
        out[4 * i + 3] = Math.round(OPAQUE * q);
      }
      break;
    }
    case 'cells': {
      const colours = new Map<number, Rgb>();
      const chosen = painter.highlight;
      for (let i = 0; i < n; i++) {
        const id = d[i]!;
        if (id === 0) continue;
        let c = colours.get(id);
        if (!c) colours.set(id, (c = cellColour(id)));
        put(i, c, chosen === undefined || id === chosen ? OPAQUE : DIMMED_ALPHA);
      }
      break;
    }
    case 'labels': {
      const membrane = labelsToMask(d, painter.polarity!, painter.source!);
      for (let i = 0; i < n; i++) if (membrane[i]) put(i, LABEL_COLOUR, OPAQUE);
      break;
    }
    case 'errors':
      for (let i = 0; i < n; i++) {
        if (d[i] === SPLIT) put(i, SPLIT_COLOUR, OPAQUE);
        else if (d[i] === MERGER) put(i, MERGER_COLOUR, OPAQUE);
      }
      break;
  }
  return out;
}

/**
 * Fastest deflate: tiles are made on demand while someone waits, travel over loopback, and stay cached; level 1
 * encodes several times faster than the default for tiles a little larger.
 */
const TILE_ZLIB = { level: 1 } as const;

/** PNG of one tile of a layer: the image as grey, overlays as RGBA. */
export function renderTile(kind: LayerKind, tile: Plane, painter: Painter): Uint8Array {
  const rgba = paint(kind, tile, painter);
  const { width, height } = tile;
  if (kind !== 'image') return encode({ width, height, data: rgba, channels: 4, depth: 8 }, { zlib: TILE_ZLIB });
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i]!;
  return encode({ width, height, data: grey, channels: 1, depth: 8 }, { zlib: TILE_ZLIB });
}
