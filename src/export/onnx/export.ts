import { EmsegError } from '../../errors.js';
import type { ParamSet } from '../../nn/params.js';
import { planModel } from '../../nn/plan.js';
import type { ModelSpec } from '../../nn/spec.js';
import { exportGeometry, paddedSize, type ExportGeometry } from '../geometry.js';
import { attr, GraphBuilder } from './graph.js';
import { emitNetwork } from './layers.js';
import { encodeModelProto, IR_VERSION, OPSET_VERSION } from './proto.js';

/** Names of the graph's input (the normalised image) and output (class probabilities). */
export const INPUT_NAME = 'raw';
export const OUTPUT_NAME = 'probabilities';
/** Names of the dynamic dimensions. */
const BATCH_DIM = 'batch';
const HEIGHT_DIM = 'height';
const WIDTH_DIM = 'width';
/** NCHW axes. */
const HEIGHT_AXIS = 2;
const WIDTH_AXIS = 3;

export interface ExportableModel {
  spec: ModelSpec;
  params: ParamSet;
}

export interface OnnxGraphInfo {
  /** Graph name and doc string. */
  name: string;
  description: string;
  producerVersion: string;
  /** Key/value pairs stored in the model's metadata_props. */
  metadata: Record<string, string>;
}

/**
 * Metadata key: how many consecutive sections the graph reads, one input channel each, centred on the section whose
 * map it computes (channel k = section z - (n - 1) / 2 + k, mirrored at the stack's ends); 1 for 2D models.
 */
export const SECTIONS_METADATA = 'input_sections';

export interface OnnxExport {
  bytes: Uint8Array;
  geometries: ExportGeometry[];
  channels: number;
  classes: number;
}

/**
 * One ONNX model for a model or an ensemble: input `raw` [batch, channels, height, width] (float32 in [0,1], any
 * size), output `probabilities` [batch, classes, height, width]; each member mirrors the input as emseg's tiles do
 * (./geometry.ts), runs its network, and its output is cut back to the input's size; members are averaged.
 */
export function buildOnnx(models: readonly ExportableModel[], info: OnnxGraphInfo): OnnxExport {
  const first = models[0];
  if (!first) throw new EmsegError('invalid-option', 'onnx export', 'needs at least one model');
  if (models.some((m) => m.spec.input.dims === 3)) {
    // 3-d networks export for one input size (onnx/export3d.ts), as single models: their outputs are not a
    // per-section map of the image's size, which is what this graph's mirroring, slicing and averaging make.
    throw new EmsegError('unsupported-export', models.find((m) => m.spec.input.dims === 3)!.spec.name,
      'is a 3-d network: its ONNX export is buildOnnx3d (one input size, the valid region out), not a per-section map');
  }
  const { channels } = first.spec.input;
  const { classes } = first.spec;
  for (const m of models) {
    if (m.spec.input.channels !== channels || m.spec.classes !== classes) {
      throw new EmsegError('unsupported-export', m.spec.name, `has ${m.spec.input.channels} input channels and ${m.spec.classes} classes, `
        + `but ${first.spec.name} has ${channels} and ${classes}: an ensemble's members must agree`);
    }
  }
  const g = new GraphBuilder();
  const input = g.reserve(INPUT_NAME);
  const output = g.reserve(OUTPUT_NAME);
  const imageSize = g.op('Shape', [input], { start: attr.int(HEIGHT_AXIS), end: attr.int(WIDTH_AXIS + 1) }, 'image_size');
  const geometries: ExportGeometry[] = [];
  const results = models.map((m, k) => {
    const geometry = exportGeometry(m.spec);
    geometries.push(geometry);
    const prefix = models.length > 1 ? `m${k}/` : '';
    // Every padded size gives the same layer parameters; this one is only for planning.
    const plan = planModel(m.spec, paddedSize(geometry, 1), paddedSize(geometry, 1), { mode: geometry.mode });
    let x = mirrorAxis(g, input, HEIGHT_AXIS, geometry, `${prefix}mirror_h`);
    x = mirrorAxis(g, x, WIDTH_AXIS, geometry, `${prefix}mirror_w`);
    const probs = emitNetwork(g, m.spec, plan, m.params, x, prefix);
    const starts = g.int64s(`${prefix}out_starts`, [geometry.sliceStart, geometry.sliceStart]);
    const ends = g.op('Add', [starts, imageSize], {}, `${prefix}out_ends`);
    return g.op('Slice', [probs, starts, ends, g.int64s(`${prefix}out_axes`, [HEIGHT_AXIS, WIDTH_AXIS])], {},
      `${prefix}out`);
  });
  if (results.length === 1) g.op('Identity', results, {}, 'identity', output);
  else g.op('Mean', results, {}, 'mean', output);
  const graph = g.graph(info.name, [{ name: input, dims: [BATCH_DIM, channels, HEIGHT_DIM, WIDTH_DIM] }],
    [{ name: output, dims: [BATCH_DIM, classes, HEIGHT_DIM, WIDTH_DIM] }], info.description);
  const bytes = encodeModelProto({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET_VERSION }],
    producer_name: 'emseg',
    producer_version: info.producerVersion,
    doc_string: info.description,
    graph,
    // Which sections the input channels are, for tools that feed the graph a stack (see SECTIONS_METADATA).
    metadata_props: Object.entries({ ...info.metadata, [SECTIONS_METADATA]: String(channels) }).map(([key, value]) => ({ key, value })),
  });
  return { bytes, geometries, channels, classes };
}

/**
 * Mirrors one axis of x (edge not repeated, for any distance, like image/mirror.ts's reflect):
 * index i of [-before, n + after) reads (n-1) - |((i mod p) - (n-1))| with period p = max(2n - 2, 1).
 * `after` = afterBase + ((residue - (n + before + afterBase)) mod step) makes the padded size one emseg plans at.
 */
function mirrorAxis(g: GraphBuilder, x: string, axis: number, geo: ExportGeometry, name: string): string {
  const i64 = (label: string, v: number) => g.int64s(`${name}_${label}`, [v]);
  const n = g.op('Shape', [x], { start: attr.int(axis), end: attr.int(axis + 1) }, `${name}_n`);
  const one = i64('one', 1);
  const last = g.op('Sub', [n, one], {}, `${name}_last`);
  const twice = g.op('Add', [last, last], {}, `${name}_twice`);
  const period = g.op('Max', [twice, one], {}, `${name}_period`);
  let limit = g.op('Add', [n, i64('after_base', geo.afterBase)], {}, `${name}_limit0`);
  if (geo.step > 1) {
    // ONNX Mod on integers (fmod = 0) takes the divisor's sign, so the extra rows are in [0, step).
    const base = g.op('Add', [n, i64('pad_base', geo.before + geo.afterBase)], {}, `${name}_base`);
    const gap = g.op('Sub', [i64('residue', geo.residue), base], {}, `${name}_gap`);
    const extra = g.op('Mod', [gap, i64('step', geo.step)], { fmod: attr.int(0) }, `${name}_extra`);
    limit = g.op('Add', [limit, extra], {}, `${name}_limit`);
  }
  const limitScalar = g.op('Squeeze', [limit, g.int64s(`${name}_axis0`, [0])], {}, `${name}_limit_scalar`);
  const index = g.op('Range', [g.int64s(`${name}_start`, [-geo.before], true), limitScalar,
    g.int64s(`${name}_delta`, [1], true)], {}, `${name}_index`);
  const folded = g.op('Mod', [index, period], { fmod: attr.int(0) }, `${name}_folded`);
  const distance = g.op('Abs', [g.op('Sub', [folded, last], {}, `${name}_offset`)], {}, `${name}_distance`);
  const source = g.op('Sub', [last, distance], {}, `${name}_source`);
  return g.op('Gather', [x, source], { axis: attr.int(axis) }, name);
}
