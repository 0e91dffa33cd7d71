import { EmsegError } from '../../errors.js';
import { planAligned, planModel, smallestInput3d, type Plan } from '../../nn/plan.js';
import { GraphBuilder } from './graph.js';
import { emitNetwork } from './layers.js';
import { encodeModelProto, IR_VERSION, OPSET_VERSION } from './proto.js';
import type { ExportableModel, OnnxGraphInfo } from './export.js';

/** Names of the graph's input (the normalised volume) and output (one probability map per channel). */
export const INPUT_NAME_3D = 'raw';
export const OUTPUT_NAME_3D = 'probabilities';
const BATCH_DIM = 'batch';
/** Metadata keys: the input and output [depth, height, width], where the output starts in the input, its channels. */
export const INPUT_SHAPE_METADATA = 'input_shape';
export const OUTPUT_SHAPE_METADATA = 'output_shape';
export const OUTPUT_OFFSET_METADATA = 'output_offset';
export const TARGETS_METADATA = 'targets';

export interface Onnx3dExport {
  bytes: Uint8Array;
  /** [depth, height, width] of the graph's input and output, and the output's first voxel in the input. */
  input: [number, number, number];
  output: [number, number, number];
  offset: [number, number, number];
  channels: number;
}

/** The plan at `input` (it must cover the input exactly), or at the network's smallest exact input. */
function planAt(m: ExportableModel, input: readonly [number, number, number] | undefined): Plan {
  if (!input) return smallestInput3d(m.spec).plan;
  const [d, h, w] = input;
  const plan = planModel(m.spec, h, w, { depth: d });
  if (!planAligned(plan)) {
    throw new EmsegError('unsupported-export', m.spec.name, `an input of ${input.join('x')} voxels does not cover the network exactly ` +
      '(a pooling would drop voxels or a crop would be off-centre)');
  }
  return plan;
}

/**
 * One ONNX model of a 3-d network for one input size (the crops of its skips are fixed offsets): input `raw`
 * [batch, channels, D, H, W] (float32 in [0,1]), output `probabilities` [batch, C, OD, OH, OW] of the valid region
 * (no mirroring: a block-wise runner reads a halo of `output_offset` voxels); metadata records the shapes, the offset
 * and the head's targets. 5-d Conv, MaxPool, ConvTranspose, Concat, Slice, Relu and Sigmoid (or Softmax).
 */
export function buildOnnx3d(model: ExportableModel, info: OnnxGraphInfo, input?: readonly [number, number, number]): Onnx3dExport {
  if (model.spec.input.dims !== 3) throw new EmsegError('internal', model.spec.name, 'buildOnnx3d exports 3-d networks only');
  const plan = planAt(model, input);
  const inShape: [number, number, number] = [plan.inputDepth!, plan.input[1], plan.input[2]];
  const outShape: [number, number, number] = [plan.z!.size, plan.output[1], plan.output[2]];
  const offset = inShape.map((n, a) => (n - outShape[a]!) / 2) as [number, number, number];
  const g = new GraphBuilder();
  const x = g.reserve(INPUT_NAME_3D);
  const out = g.reserve(OUTPUT_NAME_3D);
  g.op('Identity', [emitNetwork(g, model.spec, plan, model.params, x, '')], {}, 'identity', out);
  const graph = g.graph(info.name, [{ name: x, dims: [BATCH_DIM, plan.input[0], ...inShape] }],
    [{ name: out, dims: [BATCH_DIM, plan.output[0], ...outShape] }], info.description);
  const metadata = { ...info.metadata, [INPUT_SHAPE_METADATA]: JSON.stringify(inShape),
    [OUTPUT_SHAPE_METADATA]: JSON.stringify(outShape), [OUTPUT_OFFSET_METADATA]: JSON.stringify(offset),
    ...(model.spec.targets ? { [TARGETS_METADATA]: JSON.stringify(model.spec.targets) } : {}) };
  const bytes = encodeModelProto({
    ir_version: IR_VERSION, opset_import: [{ domain: '', version: OPSET_VERSION }], producer_name: 'emseg',
    producer_version: info.producerVersion, doc_string: info.description, graph,
    metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return { bytes, input: inShape, output: outShape, offset, channels: plan.output[0] };
}

