import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { EmsegError, describeError } from '../../errors.js';

/**
 * ONNX messages through protobufjs and the official onnx.proto (kept beside this file in the repository and loaded
 * at run time, so the wire format is protobufjs's, never hand-encoded). Compiled code lives in dist/src/export/onnx/,
 * four levels below the package root; the .proto stays in src/.
 */
const ONNX_PROTO = fileURLToPath(new URL('../../../../src/export/onnx/onnx.proto', import.meta.url));

/** ONNX IR version of onnx.proto 1.12 (IR_VERSION = 8) and the operator set the graphs are written for. */
export const IR_VERSION = 8;
export const OPSET_VERSION = 17;

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

let root: protobuf.Root | null = null;

function onnxRoot(): protobuf.Root {
  if (!root) {
    try {
      // keepCase: field names as in onnx.proto (ir_version, raw_data), not camel-cased.
      root = new protobuf.Root().loadSync(ONNX_PROTO, { keepCase: true });
    } catch (err) {
      throw new EmsegError('not-found', ONNX_PROTO, `cannot load the ONNX protobuf definition (${describeError(err)})`);
    }
  }
  return root;
}

function modelType(): protobuf.Type {
  return onnxRoot().lookupType('onnx.ModelProto');
}

/** Serialises a ModelProto given as a plain object with onnx.proto's field names; refuses one that does not verify. */
export function encodeModelProto(model: Record<string, unknown>): Uint8Array {
  const type = modelType();
  const problem = type.verify(model);
  if (problem) throw new EmsegError('internal', 'onnx ModelProto', problem);
  return type.encode(type.fromObject(model)).finish();
}

/** Parses serialised ONNX back into a plain object (int64 as numbers, bytes as Buffers), for inspection and tests. */
export function decodeModelProto(bytes: Uint8Array, path = 'onnx model'): Record<string, unknown> {
  const type = modelType();
  try {
    return type.toObject(type.decode(bytes), { longs: Number, defaults: false }) as Record<string, unknown>;
  } catch (err) {
    throw new EmsegError('corrupt', path, `is not an ONNX model (${describeError(err)})`);
  }
}
