import type { Backend } from '../backend/backend.js';
import { EmsegError } from '../errors.js';
import { extractMirrored } from '../image/mirror.js';
import { Network } from '../nn/network.js';
import { planModel } from '../nn/plan.js';
import { exportGeometry, paddedSize } from './geometry.js';
import type { ExportableModel } from './onnx/export.js';

/**
 * emseg's own prediction that an export must reproduce: for each model, ONE forward pass of its network over the
 * whole image mirrored as ./geometry.ts says (what emseg's seam-free tiling equals), cut back to the image and
 * averaged over the models. `image` holds the models' input channels (one plane per section they read, in order),
 * [channels, height, width] row-major; returns all classes, [classes, height, width] row-major.
 */
export function referencePrediction(models: readonly ExportableModel[], backend: Backend, image: Float32Array,
  height: number, width: number): Float32Array {
  const channels = models[0]?.spec.input.channels ?? 1;
  if (image.length !== channels * height * width) {
    throw new EmsegError('invalid-option', 'reference prediction', `image has ${image.length} values, expected ${channels}x${height}x${width}`);
  }
  const classes = models[0]?.spec.classes ?? 0;
  const sum = new Float32Array(classes * height * width);
  const area = height * width;
  for (const m of models) {
    if (m.spec.input.channels !== channels) {
      throw new EmsegError('mismatch', m.spec.name, `reads ${m.spec.input.channels} channels, not ${channels}`);
    }
    const g = exportGeometry(m.spec);
    const ph = paddedSize(g, height);
    const pw = paddedSize(g, width);
    const padded = new Float32Array(channels * ph * pw);
    for (let c = 0; c < channels; c++) {
      extractMirrored(image.subarray(c * area, (c + 1) * area), height, width, -g.before, -g.before, ph, pw,
        padded.subarray(c * ph * pw, (c + 1) * ph * pw));
    }
    const net = new Network(planModel(m.spec, ph, pw, { mode: g.mode }), m.params, backend);
    const x = backend.fromArray(padded, [1, channels, ph, pw]);
    let out: Float32Array;
    let oh: number;
    let ow: number;
    try {
      const probs = net.predict(x);
      [, , oh, ow] = probs.shape as [number, number, number, number];
      out = Float32Array.from(probs.toArray());
      probs.dispose();
    } finally {
      x.dispose();
    }
    for (let c = 0; c < classes; c++) {
      for (let y = 0; y < height; y++) {
        for (let xx = 0; xx < width; xx++) {
          sum[(c * height + y) * width + xx] += out[(c * oh + y + g.sliceStart) * ow + xx + g.sliceStart]!;
        }
      }
    }
  }
  for (let i = 0; i < sum.length; i++) sum[i] /= models.length;
  return sum;
}
