import { readFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EmsegError, describeError } from '../errors.js';
import { parseModelSpec, type LayerSpec, type ModelSpec, type ModelSpecInput } from '../nn/spec.js';

/**
 * The model zoo. The paper's Table 1 is not available to us: fakhry-a..d are reconstructions taken from a
 * public re-implementation that cites Fakhry, Peng & Ji (2016), made consistent with the paper's text
 * (ReLU after every convolution and hidden fully connected layer, valid convolutions, 2x2/2 max-pooling,
 * a 2-way softmax for the window's centre pixel). Class 1 is membrane.
 */

type L = ModelSpecInput['layers'][number];
const conv = (name: string, out: number, kernel: number, padding: number | 'valid' = 'valid'): L[] =>
  [{ type: 'conv', name, out, kernel, padding }, { type: 'relu' }];
const pool = (): L => ({ type: 'pool', kernel: 2, stride: 2 });
const fc = (name: string, out: number, relu = true): L[] =>
  relu ? [{ type: 'dense', name, out }, { type: 'relu' }] : [{ type: 'dense', name, out }];
const lrnWithin = (size: number, alpha: number): L => ({ type: 'lrn', region: 'within', size, alpha, beta: 0.75, k: 1 });
const softmax: L = { type: 'softmax' };

const RECONSTRUCTION = 'Reconstruction of Fakhry, Peng & Ji (2016) Table 1 from a public re-implementation citing the paper; not the authors\' published spec.';

function fakhryCd(name: string, lrnSize: number, alpha: number, fcWidth: number): ModelSpecInput {
  return {
    name, window: 95, source: RECONSTRUCTION,
    description: `Deep patch classifier, window 95, LRN within-channel size ${lrnSize}, FC ${fcWidth}.`,
    layers: [
      ...conv('conv1', 48, 4), lrnWithin(lrnSize, alpha), pool(),
      ...conv('conv2', 128, 5), ...conv('conv3', 128, 5), lrnWithin(lrnSize, alpha), pool(),
      ...conv('conv4', 256, 6), ...conv('conv5', 256, 6), ...conv('conv6', 256, 6), pool(),
      ...fc('fc1', fcWidth), { type: 'dropout', rate: 0.5 }, ...fc('fc2', 2, false), softmax,
    ],
  };
}

/** U-Net (Ronneberger et al. 2015): valid 3x3 convs, 2x2 up-convolutions, crop-and-concat skips. */
export function unetSpec(width = 64, levels = 4): ModelSpecInput {
  const layers: L[] = [];
  const block = (prefix: string, out: number) => layers.push(...conv(`${prefix}a`, out, 3), ...conv(`${prefix}b`, out, 3));
  for (let l = 0; l < levels; l++) {
    if (l > 0) layers.push(pool());
    block(`down${l}`, width * 2 ** l);
  }
  layers.push(pool());
  block('bottom', width * 2 ** levels);
  for (let l = levels - 1; l >= 0; l--) {
    const out = width * 2 ** l;
    const prev = l === levels - 1 ? 'bottomb' : `up${l + 1}b`;
    layers.push({ type: 'upconv', name: `upconv${l}`, inputs: [prev], out, kernel: 2, stride: 2 }, { type: 'relu', name: `upconv${l}relu` });
    layers.push({ type: 'crop', name: `skip${l}`, inputs: [`down${l}b`], to: `upconv${l}relu` });
    layers.push({ type: 'concat', name: `cat${l}`, inputs: [`skip${l}`, `upconv${l}relu`] });
    block(`up${l}`, out);
  }
  layers.push({ type: 'conv', name: 'head', out: 2, kernel: 1 }, softmax);
  return {
    name: width === 64 ? 'unet' : `unet-w${width}`,
    source: 'Ronneberger, Fischer & Brox (2015), U-Net: convolutional networks for biomedical image segmentation.',
    description: `U-Net, ${levels} levels, ${width} feature maps at the top level (64 in the paper).`,
    layers,
  };
}

const ZOO: Record<string, () => ModelSpecInput> = {
  'fakhry-a': () => ({
    name: 'fakhry-a', window: 35, source: RECONSTRUCTION, description: 'Shallow patch classifier, window 35.',
    layers: [...conv('conv1', 30, 4), pool(), ...conv('conv2', 50, 3, 1), pool(), ...conv('conv3', 60, 3, 1),
      ...conv('conv4', 60, 3, 1), pool(), ...fc('fc1', 100), ...fc('fc2', 2, false), softmax],
  }),
  'fakhry-b': () => ({
    name: 'fakhry-b', window: 65, source: RECONSTRUCTION, description: 'Patch classifier with a large 10x10 first kernel, window 65.',
    layers: [...conv('conv1', 30, 10), pool(), ...conv('conv2', 50, 5), pool(), ...conv('conv3', 60, 3),
      ...conv('conv4', 60, 3), pool(), ...fc('fc1', 100), ...fc('fc2', 2, false), softmax],
  }),
  'fakhry-c': () => fakhryCd('fakhry-c', 3, 5e-5, 500),
  'fakhry-d': () => fakhryCd('fakhry-d', 5, 1e-4, 100),
  'ciresan-n4': () => ({
    name: 'ciresan-n4', window: 95,
    source: 'Ciresan et al. (2012), Deep neural networks segment neuronal membranes in EM images (N4; ISBI 2012 winner).',
    description: 'Baseline patch classifier, window 95.',
    layers: [...conv('conv1', 48, 4), pool(), ...conv('conv2', 48, 5), pool(), ...conv('conv3', 48, 4), pool(),
      ...conv('conv4', 48, 4), pool(), ...fc('fc1', 200), ...fc('fc2', 2, false), softmax],
  }),
  unet: () => unetSpec(64),
  'unet-w16': () => unetSpec(16),
  'reference-net': () => JSON.parse(readFileSync(fileURLToPath(new URL('../../../bench/reference-net.json', import.meta.url)), 'utf8')),
};

export function zooNames(): string[] {
  return Object.keys(ZOO);
}

/** A zoo name, or a path to a JSON spec file. Errors name the file or list the zoo. */
export function resolveSpec(nameOrPath: string): ModelSpec {
  const make = ZOO[nameOrPath];
  if (make) return parseModelSpec(make(), `zoo model "${nameOrPath}"`);
  if (!existsSync(nameOrPath)) {
    throw new EmsegError('not-found', nameOrPath, `neither a zoo model (${zooNames().join(', ')}) nor a spec file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(nameOrPath, 'utf8'));
  } catch (err) {
    throw new EmsegError('invalid-spec', nameOrPath, `not valid JSON (${describeError(err)})`);
  }
  return parseModelSpec(json, nameOrPath);
}

export type { LayerSpec };
