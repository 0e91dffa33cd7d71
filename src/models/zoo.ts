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

/** 3-d U-Net heads: one boundary channel, or affinities (3 nearest neighbours, then long-range offsets). */
export type Head3d = 'boundary' | 'affinities';
type Offset = [number, number, number];

export interface Unet3dOptions {
  /** Lee et al. (2017) for anisotropic sections: in-plane 1x3x3 convolutions at the top level, 3x3x3 deeper, and
   *  in-plane 1x2x2 pooling throughout (sections are several times thicker than pixels are wide). */
  anisotropic?: boolean;
  /** Every kernel in-plane (1x3x3, 1x2x2) and every target in-plane: a 2-d network that predicts affinities for each
   *  section on its own (sections labelled one by one, as ISBI 2012's membrane masks). Its layers are the 2-d U-Net's
   *  of the same width and levels, so a trained 2-d U-Net can start it (emseg train --init). */
  planar?: boolean;
  /** Feature maps at the top level (doubled per level); small by default so that a CPU trains it. */
  width?: number;
  /** Poolings (levels below the top one). */
  levels?: number;
  head?: Head3d;
  /** Long-range affinity offsets after the three nearest-neighbour ones (affinity head). */
  longRange?: Offset[];
}

const NEAREST: Offset[] = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]];
/** Long-range offsets as auxiliary targets (Lee et al. 2017; the mutex watershed's): fewer sections in z when anisotropic. */
export const LONG_RANGE_ISO: Offset[] = [[-3, 0, 0], [0, -3, 0], [0, 0, -3], [-9, 0, 0], [0, -9, 0], [0, 0, -9]];
export const LONG_RANGE_ANISO: Offset[] = [[-2, 0, 0], [0, -3, 0], [0, 0, -3], [0, -9, 0], [0, 0, -9]];
/** In-plane nearest neighbours, and long-range offsets up to 27 pixels (after the mutex watershed's ISBI 2012 set). */
const NEAREST_PLANAR: Offset[] = [[0, -1, 0], [0, 0, -1]];
export const LONG_RANGE_PLANAR: Offset[] = [[0, -3, 0], [0, 0, -3], [0, -9, 0], [0, 0, -9], [0, -9, -9], [0, 9, -9],
  [0, -27, 0], [0, 0, -27]];

/** 3-d U-Net with valid convolutions, crop-and-concat skips and a sigmoid head (boundaries or affinities). */
export function unet3dSpec(options: Unet3dOptions = {}): ModelSpecInput {
  const { anisotropic = false, planar = false, width = 8, levels = 2, head = 'affinities' } = options;
  if (planar && head === 'boundary') throw new EmsegError('invalid-option', 'head', 'a planar network\'s boundary head is the 2-d U-Net\'s membrane map');
  const longRange = options.longRange ?? (planar ? LONG_RANGE_PLANAR : anisotropic ? LONG_RANGE_ANISO : LONG_RANGE_ISO);
  const layers: L[] = [];
  const kernelAt = (l: number): [number, number, number] => (planar || (anisotropic && l === 0) ? [1, 3, 3] : [3, 3, 3]);
  const scale: [number, number, number] = anisotropic || planar ? [1, 2, 2] : [2, 2, 2];
  const block = (prefix: string, out: number, l: number) => {
    for (const s of ['a', 'b']) layers.push({ type: 'conv3d', name: `${prefix}${s}`, out, kernel: kernelAt(l) }, { type: 'relu' });
  };
  for (let l = 0; l < levels; l++) {
    if (l > 0) layers.push({ type: 'pool3d', kernel: scale });
    block(`down${l}`, width * 2 ** l, l);
  }
  layers.push({ type: 'pool3d', kernel: scale });
  block('bottom', width * 2 ** levels, levels);
  for (let l = levels - 1; l >= 0; l--) {
    const out = width * 2 ** l;
    const prev = l === levels - 1 ? 'bottomb' : `up${l + 1}b`;
    layers.push({ type: 'upconv3d', name: `upconv${l}`, inputs: [prev], out, kernel: scale, stride: scale },
      { type: 'relu', name: `upconv${l}relu` });
    layers.push({ type: 'crop', name: `skip${l}`, inputs: [`down${l}b`], to: `upconv${l}relu` });
    layers.push({ type: 'concat', name: `cat${l}`, inputs: [`skip${l}`, `upconv${l}relu`] });
    block(`up${l}`, out, l);
  }
  const targets = head === 'boundary' ? [{ boundary: anisotropic ? 'in-plane' as const : '3d' as const }]
    : [...(planar ? NEAREST_PLANAR : NEAREST), ...longRange];
  layers.push({ type: 'conv3d', name: 'head', out: targets.length, kernel: 1 }, { type: 'sigmoid' });
  return {
    name: `${planar ? 'unet2d' : anisotropic ? 'unet3d-aniso' : 'unet3d'}-${head}${width === 8 ? '' : `-w${width}`}`,
    source: planar
      ? 'U-Net (Ronneberger et al. 2015) predicting in-plane affinities with long-range offsets (Wolf et al. 2018, the mutex watershed).'
      : anisotropic
        ? 'After Lee, Zung, Li, Jain & Seung (2017), Superhuman accuracy on the SNEMI3D connectomics challenge (in-plane pooling, 3-d convolutions deeper).'
        : 'After Cicek et al. (2016), 3D U-Net; affinity heads as in Lee et al. (2017).',
    description: `${planar ? '2-d U-Net on each section' : '3-d U-Net'}, ${unet3dKind(anisotropic, planar)}, ${levels} poolings, ${width} feature maps at the top, `
      + (head === 'boundary' ? 'boundary head (1 channel).' : `affinity head (${planar ? 2 : 3} nearest + ${longRange.length} long-range).`),
    input: { dims: 3 },
    targets,
    layers,
  };
}

function unet3dKind(anisotropic: boolean, planar: boolean): string {
  if (planar) return 'in-plane kernels and targets only (1x3x3 convolutions, 1x2x2 pooling)';
  return anisotropic ? 'anisotropic (in-plane 1x2x2 pooling, 1x3x3 convolutions at the top level)' : 'isotropic';
}

/** The 3-d zoo: isotropic and anisotropic U-Nets, each with a boundary and an affinity head. */
const ZOO_3D: Record<string, () => ModelSpecInput> = {
  'unet3d-boundary': () => unet3dSpec({ head: 'boundary' }),
  'unet3d-affinities': () => unet3dSpec({ head: 'affinities' }),
  'unet3d-aniso-boundary': () => unet3dSpec({ anisotropic: true, head: 'boundary' }),
  'unet3d-aniso-affinities': () => unet3dSpec({ anisotropic: true, head: 'affinities' }),
  // The layers of unet-w16, so that a trained unet-w16 (the shipped emseg-isbi members) can start it.
  'unet2d-affinities-w16': () => unet3dSpec({ planar: true, width: 16, levels: 4 }),
};

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

/** The 2-d zoo models (what section prediction and its tiling serve). */
export function zooNames(): string[] {
  return Object.keys(ZOO);
}

/** The 3-d zoo models (input dims 3: volumes in, a sigmoid map per channel out). */
export function zoo3dNames(): string[] {
  return Object.keys(ZOO_3D);
}

/** A zoo name, or a path to a JSON spec file. Errors name the file or list the zoo. */
export function resolveSpec(nameOrPath: string): ModelSpec {
  const make = ZOO[nameOrPath] ?? ZOO_3D[nameOrPath];
  if (make) return parseModelSpec(make(), `zoo model "${nameOrPath}"`);
  if (!existsSync(nameOrPath)) {
    throw new EmsegError('not-found', nameOrPath, `neither a zoo model (${[...zooNames(), ...zoo3dNames()].join(', ')}) nor a spec file`);
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
