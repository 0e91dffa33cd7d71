import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import type { Int8Calibration } from '../nn/int8.js';
import { Network } from '../nn/network.js';
import type { PlanNode } from '../nn/plan.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ParamSet } from '../nn/params.js';
import { sectionRadius, type ModelSpec } from '../nn/spec.js';
import { dihedral, inverseDihedral } from '../image/dihedral.js';
import type { Profile } from '../util/profile.js';
import { sectionFrom, type SectionSource } from './section.js';
import { AUTO_TILE, chooseTile, type TileSize } from './tile-choice.js';
import { commonStride, geometryForSteps, tileStep, type TileGeometry } from './tiling.js';

/** Class index of membrane in every emseg model's output. */
export const MEMBRANE_CLASS = 1;
/** Output tile edge when none is given: chosen per section by cost within the memory budget (infer/tile-choice.ts). */
export const DEFAULT_TILE: TileSize = AUTO_TILE;
const TTA_TRANSFORMS = [0, 1, 2, 3, 4, 5, 6, 7];

export interface ModelWeights {
  spec: ModelSpec;
  params: ParamSet;
}

export interface PredictOptions {
  /**
   * Output tile edge in pixels (rounded up to the networks' stride, capped by the section; bounds memory), or
   * AUTO_TILE: the cheapest within the memory budget (chooseTile). The maps are the same at every tile size.
   */
  tile?: TileSize;
  /** Average over the 8 rotations/flips (test-time augmentation), applied tile by tile. */
  tta?: boolean;
  /** Called after each tile with (done, total) for this section. */
  onTile?: (done: number, total: number) => void;
  /** Adds the time of each step of a tile (PREDICT_STEPS) to this profile. */
  profile?: Profile;
  /** Sees each node's first input as model number `model` runs it (int8 calibration, infer/int8.ts). */
  observe?: (model: number, node: PlanNode, input: Tensor) => void;
}

export interface PredictorOptions {
  /** Predict with int8 convolutions (nn/int8.ts): one calibration per model, in order; the backend must allow int8. */
  int8?: readonly Int8Calibration[];
}

/** The steps of a tile run as a profile names them: the window read (mirrored), the network, the kept outputs added. */
export const PREDICT_STEPS = { read: 'predict:read', network: 'predict:network', place: 'predict:place', average: 'predict:average' } as const;

const untimed: Pick<Profile, 'time'> = { time: (_name, fn) => fn() };

/** Rows [top, top + rows) of a section's membrane map, full width. */
export interface MapBand {
  top: number;
  rows: number;
  data: Float32Array;
}

/** How a section is cut: bands of `stepH` rows, each band `cols` tiles of `stepW` columns. */
export interface BandLayout {
  stepH: number;
  stepW: number;
  bands: number;
  cols: number;
}

/**
 * Membrane probability maps for sections of any size: dense fully convolutional evaluation with mirrored borders,
 * in bands of tile rows, optionally averaged over test-time augmentation and over an ensemble of models. Every
 * model x transform runs on the same tile grid; a transform is applied to each tile's input and undone on its
 * output, so no whole-section copy is made and the result does not depend on the tile size.
 */
export class Predictor {
  private readonly nets = new Map<string, { geometry: TileGeometry; net: Network }>();
  /** Tile input windows by size (window()); ensemble members of other architectures have other sizes. */
  private readonly windowBuffers = new Map<number, Float32Array>();
  /** Host copies of the networks' outputs by size (membrane()). */
  private readonly outputBuffers = new Map<number, Float32Array>();
  /** AUTO_TILE's choice per section size. */
  private readonly chosen = new Map<string, number>();
  private readonly stride: number;
  /** Consecutive sections every model reads (1: 2D models), centred on the predicted one. */
  readonly sections: number;
  /** Sections read on each side of the predicted one (neighbourSections' radius). */
  readonly radius: number;

  constructor(readonly models: readonly ModelWeights[], readonly backend: Backend, private readonly options: PredictorOptions = {}) {
    if (models.length === 0) throw new EmsegError('invalid-option', 'models', 'Predictor needs at least one model');
    if (options.int8 && options.int8.length !== models.length) {
      throw new EmsegError('mismatch', 'int8 calibration', `${options.int8.length} calibrations for ${models.length} models`);
    }
    this.stride = commonStride(models.map((m) => m.spec));
    this.sections = models[0]!.spec.input.sections;
    this.radius = sectionRadius(models[0]!.spec);
    const other = models.find((m) => m.spec.input.sections !== this.sections);
    if (other) {
      throw new EmsegError('mismatch', other.spec.name, `reads ${other.spec.input.sections} sections but ${models[0]!.spec.name} reads `
        + `${this.sections}; the models of an ensemble must read the same sections`);
    }
  }

  /** The band and tile grid used for an h x w section at this tile size (AUTO_TILE: chosen for the section). */
  layout(height: number, width: number, size: TileSize = DEFAULT_TILE): BandLayout {
    const tile = size === AUTO_TILE ? this.autoTile(height, width) : size;
    const stepH = tileStep(tile, height, this.stride);
    const stepW = tileStep(tile, width, this.stride);
    return { stepH, stepW, bands: Math.ceil(height / stepH), cols: Math.ceil(width / stepW) };
  }

  private autoTile(height: number, width: number): number {
    const key = `${height}x${width}`;
    let tile = this.chosen.get(key);
    if (tile === undefined) {
      tile = chooseTile(this.models.map((m) => m.spec), height, width).tile;
      this.chosen.set(key, tile);
    }
    return tile;
  }

  /** Tile geometry of one model at this layout (odd quarter turns of TTA use the transposed one). */
  geometry(model: ModelWeights, stepH: number, stepW: number): TileGeometry {
    return this.network(model, stepH, stepW).geometry;
  }

  /**
   * P(membrane) per pixel of an h x w section (row-major), assembled from its bands; a model reading several
   * sections takes them as an array in order (neighbourSections), the predicted one in the middle.
   */
  predict(image: Float32Array | readonly Float32Array[], height: number, width: number, options: PredictOptions = {}): Float32Array {
    const planes = image instanceof Float32Array ? [image] : image;
    const bad = planes.findIndex((p) => p.length !== height * width);
    if (bad >= 0) {
      throw new EmsegError('mismatch', 'image', `${planes.length > 1 ? `section ${bad} ` : ''}has ${planes[bad]!.length} pixels, expected ${height}x${width}`);
    }
    const out = new Float32Array(height * width);
    for (const band of this.bands(planes.map((p) => sectionFrom(p, height, width)), options)) out.set(band.data, band.top * width);
    return out;
  }

  /**
   * The membrane map of a section band by band, top to bottom; memory is bounded by the tile, not the section.
   * Models that read several sections take them in order (neighbourSections), the predicted one in the middle.
   */
  *bands(input: SectionSource | readonly SectionSource[], options: PredictOptions = {}): Generator<MapBand> {
    const sections = this.checkSections(input);
    const { height, width } = sections[0]!;
    const grid = this.layout(height, width, options.tile ?? DEFAULT_TILE);
    const transforms = options.tta ? TTA_TRANSFORMS : [0];
    const runs = transforms.length * this.models.length;
    const total = grid.bands * grid.cols * runs;
    let done = 0;
    const profile = options.profile ?? untimed;
    for (let b = 0; b < grid.bands; b++) {
      const top = b * grid.stepH;
      const rows = Math.min(grid.stepH, height - top);
      const sum = new Float32Array(rows * width);
      for (const model of this.models) {
        for (const k of transforms) {
          for (let c = 0; c < grid.cols; c++) {
            this.addTile(model, k, sections, grid, top, c * grid.stepW, sum, profile, options.observe);
            options.onTile?.(++done, total);
          }
        }
      }
      profile.time(PREDICT_STEPS.average, () => {
        for (let i = 0; i < sum.length; i++) sum[i]! /= runs;
      });
      yield { top, rows, data: sum };
    }
  }

  private checkSections(input: SectionSource | readonly SectionSource[]): readonly SectionSource[] {
    const sections = Array.isArray(input) ? input as readonly SectionSource[] : [input as SectionSource];
    if (sections.length !== this.sections) {
      throw new EmsegError('mismatch', this.models[0]!.spec.name, `reads ${this.sections} sections at once but was given ${sections.length}`);
    }
    const { height, width } = sections[0]!;
    if (sections.some((s) => s.height !== height || s.width !== width)) {
      throw new EmsegError('mismatch', 'sections', `the neighbouring sections of a ${height}x${width} section differ in size`);
    }
    return sections;
  }

  private network(model: ModelWeights, stepH: number, stepW: number) {
    const index = this.models.indexOf(model);
    const key = `${index}:${stepH}x${stepW}`;
    let entry = this.nets.get(key);
    if (!entry) {
      const geometry = geometryForSteps(model.spec, stepH, stepW);
      entry = { geometry, net: new Network(geometry.plan, model.params, this.backend, undefined, this.options.int8?.[index]) };
      this.nets.set(key, entry);
    }
    return entry;
  }

  /** Runs one model under dihedral transform k on the tile at (top, left) and adds its kept outputs to `sum`. */
  private addTile(model: ModelWeights, k: number, sections: readonly SectionSource[], grid: BandLayout, top: number,
    left: number, sum: Float32Array, profile: Pick<Profile, 'time'>, observe: PredictOptions['observe']): void {
    const turned = (k & 1) === 1;
    const { geometry: g, net } = this.network(model, turned ? grid.stepW : grid.stepH, turned ? grid.stepH : grid.stepW);
    const window = profile.time(PREDICT_STEPS.read, () => this.window(sections, g.margin, grid, k, top, left));
    const m = this.models.indexOf(model);
    const seen = observe && ((node: PlanNode, x: Tensor) => observe(m, node, x));
    const plane = profile.time(PREDICT_STEPS.network, () => this.membrane(net, window, g, seen));
    profile.time(PREDICT_STEPS.place, () => this.place(plane, g, k, sections[0]!, grid, top, left, sum));
  }

  /**
   * The tile's input window (every section read), mirrored at the section border, under dihedral transform k. One
   * buffer per window size is reused tile after tile (the backend copies it in before the next tile is read): a
   * fresh one would be new memory, page-faulted in, every tile.
   */
  private window(sections: readonly SectionSource[], m: number, grid: BandLayout, k: number, top: number, left: number): Float32Array {
    const inH = grid.stepH + 2 * m;
    const inW = grid.stepW + 2 * m;
    const area = inH * inW;
    const window = reusable(this.windowBuffers, sections.length * area);
    sections.forEach((s, c) => {
      const channel = window.subarray(c * area, (c + 1) * area);
      s.read(top - m, left - m, inH, inW, channel);
      if (k !== 0) channel.set(dihedral(channel, inH, inW, k).data);
    });
    return window;
  }

  /** Adds a tile's kept outputs to the band's sum at their input pixels, with transform k undone. */
  private place(plane: Float32Array, g: TileGeometry, k: number, section: SectionSource, grid: BandLayout, top: number,
    left: number, sum: Float32Array): void {
    const m = g.margin;
    const inW = grid.stepW + 2 * m;
    // Put the outputs back where their input pixels are, then undo the transform: kept pixels start at `margin`.
    const [, oh, ow] = g.plan.output;
    let back = plane;
    let stride = ow;
    let origin = g.halo * ow + g.halo;
    if (k !== 0) {
      const placed = new Float32Array(g.inputH * g.inputW);
      for (let y = 0; y < oh; y++) placed.set(plane.subarray(y * ow, (y + 1) * ow), (y + g.offset) * g.inputW + g.offset);
      back = dihedral(placed, g.inputH, g.inputW, inverseDihedral(k)).data;
      stride = inW;
      origin = m * inW + m;
    }
    const { width, height } = section;
    const rows = Math.min(grid.stepH, height - top);
    const cols = Math.min(grid.stepW, width - left);
    for (let y = 0; y < rows; y++) {
      const src = origin + y * stride;
      const dst = y * width + left;
      for (let x = 0; x < cols; x++) sum[dst + x]! += back[src + x]!;
    }
  }

  /** The membrane-class plane of the network's output for one input tile. */
  private membrane(net: Network, input: Float32Array, g: TileGeometry, observe?: (node: PlanNode, x: Tensor) => void): Float32Array {
    const x = this.backend.fromArray(input, [1, this.sections, g.inputH, g.inputW]);
    let probs;
    try {
      probs = net.predict(x, observe);
    } finally {
      x.dispose();
    }
    try {
      const [classes, oh, ow] = g.plan.output;
      // Into one host buffer per output size, reused tile after tile (the caller adds the plane into its band at
      // once): a fresh array every tile was new memory, page-faulted in.
      return (probs.toArray(reusable(this.outputBuffers, classes * oh * ow)) as Float32Array).subarray(MEMBRANE_CLASS * oh * ow, (MEMBRANE_CLASS + 1) * oh * ow);
    } finally {
      probs.dispose();
    }
  }
}

/** The buffer of `length` floats in `buffers`, made on first use and reused after. */
function reusable(buffers: Map<number, Float32Array>, length: number): Float32Array {
  let b = buffers.get(length);
  if (!b) buffers.set(length, b = new Float32Array(length));
  return b;
}
