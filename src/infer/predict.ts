import type { Backend } from '../backend/backend.js';
import { Network } from '../nn/network.js';
import type { ParamSet } from '../nn/params.js';
import type { ModelSpec } from '../nn/spec.js';
import { dihedral, inverseDihedral } from '../image/dihedral.js';
import { extractMirrored } from '../image/mirror.js';
import { tileGeometry, type TileGeometry } from './tiling.js';

/** Class index of membrane in every emseg model's output. */
export const MEMBRANE_CLASS = 1;

export interface ModelWeights {
  spec: ModelSpec;
  params: ParamSet;
}

export interface PredictOptions {
  /** Output tile edge in pixels; bounds memory on large sections. */
  tile?: number;
  /** Average over the 8 rotations/flips (test-time augmentation). */
  tta?: boolean;
  /** Called after each tile with (done, total) for this section. */
  onTile?: (done: number, total: number) => void;
}

/**
 * Membrane probability maps for whole sections of any size: dense fully convolutional evaluation with mirrored
 * borders, tiled with halos, optionally averaged over test-time augmentation and over an ensemble of models.
 */
export class Predictor {
  private readonly nets = new Map<string, { geometry: TileGeometry; net: Network }>();

  constructor(readonly models: readonly ModelWeights[], readonly backend: Backend) {
    if (models.length === 0) throw new Error('Predictor needs at least one model');
  }

  /** P(membrane) per pixel of an h x w section (row-major). */
  predict(image: Float32Array, height: number, width: number, options: PredictOptions = {}): Float32Array {
    if (image.length !== height * width) throw new Error(`image has ${image.length} pixels, expected ${height}x${width}`);
    const transforms = options.tta ? [0, 1, 2, 3, 4, 5, 6, 7] : [0];
    const sum = new Float32Array(height * width);
    const total = transforms.length * this.models.length;
    let done = 0;
    for (const model of this.models) {
      for (const k of transforms) {
        const t = dihedral(image, height, width, k);
        const p = this.predictOne(model, t.data, t.height, t.width, (d, n) => options.onTile?.(done * n + d, total * n),
          options.tile ?? 512);
        const back = dihedral(p, t.height, t.width, inverseDihedral(k)).data;
        for (let i = 0; i < sum.length; i++) sum[i] += back[i]!;
        done++;
      }
    }
    for (let i = 0; i < sum.length; i++) sum[i] /= total;
    return sum;
  }

  private network(model: ModelWeights, tile: number, height: number, width: number) {
    const index = this.models.indexOf(model);
    const key = `${index}:${tile}:${Math.min(tile, height)}:${Math.min(tile, width)}`;
    let entry = this.nets.get(key);
    if (!entry) {
      const geometry = tileGeometry(model.spec, tile, height, width);
      entry = { geometry, net: new Network(geometry.plan, model.params, this.backend) };
      this.nets.set(key, entry);
    }
    return entry;
  }

  private predictOne(model: ModelWeights, image: Float32Array, height: number, width: number,
    onTile: (done: number, total: number) => void, tile: number): Float32Array {
    const { geometry: g, net } = this.network(model, tile, height, width);
    const out = new Float32Array(height * width);
    const [, oh, ow] = g.plan.output;
    const rows = Math.ceil(height / g.stepH);
    const cols = Math.ceil(width / g.stepW);
    const input = new Float32Array(g.inputH * g.inputW);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const y0 = r * g.stepH;
        const x0 = c * g.stepW;
        extractMirrored(image, height, width, y0 - g.offset - g.halo, x0 - g.offset - g.halo, g.inputH, g.inputW, input);
        const x = this.backend.fromArray(input, [1, 1, g.inputH, g.inputW]);
        let probs;
        try {
          probs = net.predict(x);
        } finally {
          x.dispose();
        }
        const p = probs.toArray();
        probs.dispose();
        const plane = MEMBRANE_CLASS * oh * ow;
        for (let y = 0; y < g.stepH && y0 + y < height; y++) {
          for (let xx = 0; xx < g.stepW && x0 + xx < width; xx++) {
            out[(y0 + y) * width + x0 + xx] = p[plane + (y + g.halo) * ow + xx + g.halo]!;
          }
        }
        onTile(r * cols + c + 1, rows * cols);
      }
    }
    return out;
  }
}
