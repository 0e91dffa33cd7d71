import { EmsegError } from '../../errors.js';
import type { OnnxAttrValue } from '../../nn/layers/def.js';
import { AttributeType, DataType } from './proto.js';

/** An ONNX AttributeProto as a plain object (onnx.proto field names). */
export interface Attribute extends OnnxAttrValue {
  name: string;
}

type AttrValue = Omit<Attribute, 'name'>;

/** Typed attribute values: ONNX distinguishes float 1.0 from int 1, so every value says which it is. */
export const attr = {
  int: (i: number): AttrValue => ({ type: AttributeType.INT, i }),
  float: (f: number): AttrValue => ({ type: AttributeType.FLOAT, f }),
  ints: (ints: readonly number[]): AttrValue => ({ type: AttributeType.INTS, ints: [...ints] }),
  string: (s: string): AttrValue => ({ type: AttributeType.STRING, s: Buffer.from(s, 'utf8') }),
};

interface NodeProto {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Attribute[];
}

interface TensorProto {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

/** A dimension of a graph input or output: fixed, or named (dynamic). */
export type Dim = number | string;

/**
 * Builds one ONNX graph: nodes in topological order (the order they are added), constant initialisers, and
 * unique value names. Tensors are stored little-endian in raw_data, as onnx.proto prescribes (Node runs on
 * little-endian hosts only, so typed arrays already have that layout).
 */
export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly names = new Set<string>();

  /** A fresh value name starting with `base`. */
  unique(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  /** Reserve a fixed name (graph inputs and outputs). */
  reserve(name: string): string {
    if (this.names.has(name)) throw new EmsegError('internal', 'onnx graph', `value "${name}" defined twice`);
    this.names.add(name);
    return name;
  }

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, base = opType.toLowerCase(),
    output?: string): string {
    const out = output ?? this.unique(base);
    this.nodes.push({ op_type: opType, name: out, input: [...inputs], output: [out],
      attribute: Object.entries(attrs).map(([name, v]) => ({ name, ...v })) });
    return out;
  }

  /** A float32 initialiser. */
  floats(base: string, dims: readonly number[], data: ArrayLike<number>): string {
    const values = Float32Array.from(data);
    if (values.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new EmsegError('internal', `onnx initialiser "${base}"`, `${values.length} values for dims ${dims.join('x')}`);
    }
    return this.tensor(base, dims, DataType.FLOAT, new Uint8Array(values.buffer));
  }

  /** An int64 initialiser: a 1-d list, or a scalar when `scalar` is set. */
  int64s(base: string, values: readonly number[], scalar = false): string {
    if (scalar && values.length !== 1) throw new EmsegError('internal', `onnx initialiser "${base}"`, 'a scalar needs one value');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    return this.tensor(base, scalar ? [] : [values.length], DataType.INT64, new Uint8Array(data.buffer));
  }

  private tensor(base: string, dims: readonly number[], dataType: number, raw: Uint8Array): string {
    const name = this.unique(base);
    this.initializers.push({ name, dims: [...dims], data_type: dataType, raw_data: raw });
    return name;
  }

  /** The GraphProto as a plain object. */
  graph(name: string, inputs: { name: string; dims: Dim[] }[], outputs: { name: string; dims: Dim[] }[],
    docString: string): Record<string, unknown> {
    const valueInfo = (v: { name: string; dims: Dim[] }) => ({
      name: v.name,
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: v.dims.map((d) =>
        (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
    });
    return { name, node: this.nodes, initializer: this.initializers, input: inputs.map(valueInfo),
      output: outputs.map(valueInfo), doc_string: docString };
  }
}
