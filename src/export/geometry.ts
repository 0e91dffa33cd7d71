import { EmsegError } from '../errors.js';
import { MIN_TILE, geometryForSteps, tileGeometry } from '../infer/tiling.js';
import { layerDef } from '../nn/layers/index.js';
import type { Plan, PlanMode } from '../nn/plan.js';
import type { ModelSpec } from '../nn/spec.js';

/**
 * How an exported model turns an image of any size into an output of the same size, and the single-tile
 * forward pass of emseg that it reproduces. The image is mirrored (edge not repeated, as emseg's tiles are)
 * by `before` pixels at the top/left and `afterBase + ((residue - (n + before + afterBase)) mod step)` at the
 * bottom/right, so the padded size is one emseg plans the network at; output pixel (i, j) of the image is then
 * network output (i + sliceStart, j + sliceStart).
 */
export interface ExportGeometry {
  mode: PlanMode;
  before: number;
  afterBase: number;
  /** Padded sizes are residue + k * step. */
  step: number;
  residue: number;
  sliceStart: number;
  /** Pixels of context each output pixel draws on at each side (what a block-wise runner must overlap). */
  halo: number;
  /** Receptive field of one output pixel, in input pixels. */
  field: number;
}

/** The padded size for an image axis of n pixels. */
export function paddedSize(g: ExportGeometry, n: number): number {
  const base = n + g.before + g.afterBase;
  return base + ((((g.residue - base) % g.step) + g.step) % g.step);
}

/**
 * The export follows emseg's own tiling exactly (infer/tiling.ts): the image is mirrored by the model's tile margin
 * on each side and up to the next multiple of its stride, and the kept outputs start `halo` = margin - offset in,
 * which is what one tile covering the whole image computes, and so what any tiled prediction equals.
 */
export function exportGeometry(spec: ModelSpec): ExportGeometry {
  const t = tileGeometry(spec, MIN_TILE, MIN_TILE, MIN_TILE);
  if (!spec.window) checkSizeIndependent(spec, t.plan, geometryForSteps(spec, t.stepH + t.stride, t.stepW + t.stride).plan);
  return { mode: spec.window ? 'dense' : 'strided', before: t.margin, afterBase: t.margin, step: t.stride,
    residue: (2 * t.margin) % t.stride, sliceStart: t.halo, halo: t.margin, field: t.plan.field };
}

/**
 * The graph is written for one input size: a layer whose ONNX form bakes in something that follows the input's size
 * (a U-Net skip's crop offset) must not change between two sizes the export serves.
 */
function checkSizeIndependent(spec: ModelSpec, a: Plan, b: Plan): void {
  a.nodes.forEach((node, i) => {
    const why = layerDef(node.type).onnxSizeDependence?.(node, b.nodes[i]!);
    if (why) throw new EmsegError('unsupported-export', `${spec.name} layer "${node.name}"`, why);
  });
}
