import { EmsegError } from '../errors.js';
import type { Backend, CrossEntropyResult, CrossEntropyTarget, Int8Input, SigmoidTarget } from '../backend/backend.js';
import { formatShape, shapeEquals, type Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { fusedProducers, liveNodes } from './fusion.js';
import { int8Inputs, type Int8Calibration } from './int8.js';
import { layerDef } from './layers/index.js';
import type { ParamSet } from './params.js';
import type { Plan, PlanNode } from './plan.js';

/**
 * The loss target, or a function that makes it from the logits (losses weighted by the prediction: MALIS). Class
 * labels for a softmax head; per-element binary targets (and weights: a mask) for a sigmoid head.
 */
export type TrainTarget = CrossEntropyTarget | SigmoidTarget | ((logits: Tensor) => CrossEntropyTarget | SigmoidTarget);

/**
 * Runs a plan on a backend: inference, and training steps by reverse-mode autograd over the layer DAG.
 * Gradients of nodes that feed several consumers are summed; the image never gets a gradient, so the first
 * convolution skips its backward-data pass.
 */
export class Network {
  /** conv nodes whose only consumer is a relu: run as one fused primitive. */
  private readonly fused: Set<number>;
  private readonly consumers: number[][];
  /**
   * Nodes the output depends on. A spec may leave a node unused (the shipped U-Nets feed the up-convolution and
   * the skip connection from a convolution by name, so the ReLU written after it has no consumer): inference skips
   * those. Training steps still run them, so that they stay exactly as they were.
   */
  private readonly live: Set<number>;
  /**
   * Each node's consumers that run in inference: a tensor is released after its last one (a skipped consumer would
   * keep it alive until garbage collection, and the next tile's would then be fresh memory, page-faulted in).
   */
  private readonly liveUses: number[];
  /**
   * ReLUs whose only consumer is a max pooling: inference pools first and applies the ReLU to the pooled tensor,
   * which is exact (max of ReLUs = ReLU of the max) and touches a quarter of the values under 2x2 pooling.
   */
  private readonly pooledFirst: Set<number>;
  /** Dropout masks draw from this; its state is checkpointed so a resumed run continues exactly. */
  readonly rng: Rng;
  /** How each convolution that predicts in int8 quantizes its input (nn/int8.ts), by node; null: float everywhere. */
  private readonly int8: Map<number, Int8Input> | null;

  /** `int8`: predict with int8 convolutions as this calibration says (the backend must be created with int8). */
  constructor(readonly plan: Plan, readonly params: ParamSet, readonly backend: Backend, seed = 1, int8?: Int8Calibration) {
    this.rng = new Rng(seed);
    if (int8 && !backend.int8) {
      throw new EmsegError('invalid-option', '--int8', `the ${backend.name} backend was not created for int8 (createBackend({ int8: true }), oneDNN only)`);
    }
    this.int8 = int8 ? int8Inputs(plan, int8, 'int8 calibration') : null;
    this.consumers = plan.nodes.map(() => []);
    for (const node of plan.nodes) for (const i of node.inputs) if (i >= 0) this.consumers[i]!.push(node.index);
    this.fused = fusedProducers(plan);
    this.live = liveNodes(plan);
    this.liveUses = this.consumers.map((cs) => cs.filter((c) => this.live.has(c)).length);
    this.pooledFirst = new Set(plan.nodes.filter((n) => n.type === 'relu' && !this.isFused(n)
      && this.consumers[n.index]!.length === 1 && plan.nodes[this.consumers[n.index]![0]!]!.type === 'pool').map((n) => n.index));
  }

  private isFused(node: PlanNode): boolean {
    // A fused producer's only consumer is the relu it runs.
    return this.fused.has(node.index) || this.fused.has(node.inputs[0]!);
  }

  private checkInput(x: Tensor): void {
    const [c, h, w] = this.plan.input;
    const d = this.plan.inputDepth;
    const want = d === undefined ? [c, h, w] : [c, d, h, w];
    if (x.shape.length !== want.length + 1 || !shapeEquals(x.shape.slice(1), want)) {
      throw new EmsegError('invalid-option', 'network input', `must be Nx${want.join('x')}, got ${formatShape(x.shape)}`);
    }
  }

  /** The output layer's loss: softmax cross-entropy on class labels, or sigmoid cross-entropy per element. */
  private loss(logits: Tensor, target: CrossEntropyTarget | SigmoidTarget): CrossEntropyResult {
    const head = this.plan.nodes[this.plan.nodes.length - 1]!.type;
    const sigmoidTarget = 'targets' in target;
    if ((head === 'sigmoid') !== sigmoidTarget) {
      throw new EmsegError('invalid-option', 'training target', head === 'sigmoid'
        ? 'a sigmoid output layer trains on per-element targets ({ targets, weights }), not class labels'
        : 'a softmax output layer trains on class labels ({ labels, weights }), not per-element targets');
    }
    return sigmoidTarget ? this.backend.sigmoidCrossEntropy(logits, target) : this.backend.softmaxCrossEntropy(logits, target);
  }

  /**
   * Class probabilities (N x classes x H' x W'); intermediates are released as soon as they are consumed.
   * `observe` sees every node that runs with its first input before it runs (int8 calibration: nn/int8.ts).
   */
  predict(x: Tensor, observe?: (node: PlanNode, input: Tensor) => void): Tensor {
    this.checkInput(x);
    const nodes = this.plan.nodes;
    const values: (Tensor | null)[] = nodes.map(() => null);
    const uses = new Map<Tensor, number>(); // aliases (fused relu) share a tensor: count uses per object
    const hold = (t: Tensor, n: number) => uses.set(t, (uses.get(t) ?? 0) + n);
    const drop = (t: Tensor) => {
      const left = (uses.get(t) ?? 1) - 1;
      uses.set(t, left);
      if (left === 0) t.dispose();
    };
    try {
      for (const node of nodes) {
        if (!this.live.has(node.index)) continue;
        const inputs = node.inputs.map((i) => (i < 0 ? x : values[i]!));
        observe?.(node, inputs[0]!);
        const out = this.pooledFirst.has(node.index) ? inputs[0]! : this.forwardInference(node, inputs);
        values[node.index] = out;
        hold(out, this.liveUses[node.index]! || 1);
        for (const i of node.inputs) if (i >= 0) drop(values[i]!);
      }
      return values[nodes.length - 1]!;
    } catch (err) {
      for (const t of uses.keys()) t.dispose();
      throw err;
    }
  }

  /** One node's output outside training; a pooling after a deferred ReLU (pooledFirst) applies it. */
  private forwardInference(node: PlanNode, inputs: Tensor[]): Tensor {
    const { out } = layerDef(node.type).forward(node, inputs, this.forwardContext(node, false));
    if (!this.pooledFirst.has(node.inputs[0]!)) return out;
    try {
      return this.backend.relu(out);
    } finally {
      out.dispose();
    }
  }

  /**
   * One forward + backward pass with softmax (or, for a sigmoid head, per-element sigmoid) cross-entropy on the
   * output; parameter gradients are
   * accumulated into params[*].grad (the caller zeroes them and steps the optimiser).
   */
  trainStep(x: Tensor, target: TrainTarget): { loss: number; weightSum: number } {
    if (this.int8) throw new EmsegError('invalid-option', '--int8', 'int8 is for prediction only: a network trains in float32 or bf16');
    this.checkInput(x);
    const nodes = this.plan.nodes;
    const owned = new Set<Tensor>();
    const values: Tensor[] = [];
    const saved: Tensor[][] = [];
    try {
      // Forward up to the logits (the softmax or sigmoid node is folded into the loss).
      for (const node of nodes.slice(0, -1)) {
        const inputs = node.inputs.map((i) => (i < 0 ? x : values[i]!));
        const r = layerDef(node.type).forward(node, inputs, this.forwardContext(node, true));
        values[node.index] = r.out;
        saved[node.index] = r.saved ?? [];
        owned.add(r.out);
        for (const t of r.saved ?? []) owned.add(t);
      }
      const logitsIndex = nodes[nodes.length - 1]!.inputs[0]!;
      const logits = values[logitsIndex]!;
      const t = typeof target === 'function' ? target(logits) : target;
      const { loss, weightSum, dlogits } = this.loss(logits, t);
      this.backward(x, values, saved, logitsIndex, dlogits);
      return { loss, weightSum };
    } finally {
      for (const t of owned) t.dispose();
    }
  }

  private backward(x: Tensor, values: Tensor[], saved: Tensor[][], from: number, seed: Tensor): void {
    // Gradient slots may share one tensor (pass-through layers, add): count references per tensor object.
    const refs = new Map<Tensor, number>();
    const retain = (t: Tensor) => refs.set(t, (refs.get(t) ?? 0) + 1);
    const release = (t: Tensor) => {
      const n = refs.get(t)! - 1;
      refs.set(t, n);
      if (n === 0) t.dispose();
    };
    const grads: (Tensor | null)[] = this.plan.nodes.map(() => null);
    grads[from] = seed;
    retain(seed);
    try {
      for (let k = from; k >= 0; k--) {
        const node = this.plan.nodes[k]!;
        const dy = grads[k];
        if (!dy) continue;
        const inputs = node.inputs.map((i) => (i < 0 ? x : values[i]!));
        const dxs = layerDef(node.type).backward(node, dy, {
          backend: this.backend, params: this.params, inputs, out: values[k]!, saved: saved[k]!,
          fuseRelu: this.isFused(node), needInputGrad: node.inputs.map((i) => i >= 0),
        });
        node.inputs.forEach((i, j) => {
          const dx = dxs[j];
          if (i < 0 || !dx) return;
          retain(dx);
          const prev = grads[i];
          if (!prev) {
            grads[i] = dx;
            return;
          }
          const sum = this.backend.add(prev, dx);
          retain(sum);
          release(prev);
          release(dx);
          grads[i] = sum;
        });
        grads[k] = null;
        release(dy);
      }
    } finally {
      for (const [t, n] of refs) if (n > 0) t.dispose();
    }
  }

  private forwardContext(node: PlanNode, training: boolean) {
    const int8 = training ? undefined : this.int8?.get(node.index);
    return { backend: this.backend, params: this.params, training, fuseRelu: this.isFused(node),
      nextSeed: () => this.rng.seed(), ...(int8 ? { int8 } : {}) };
  }
}

