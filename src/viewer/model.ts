/**
 * What one `emseg view` serves: the given stacks as layers of one volume, checked against each other, with the
 * tiles, readouts and side data the HTTP server hands out. Knows nothing of HTTP.
 */
import { basename } from 'node:path';
import { EmsegError } from '../errors.js';
import { DEFAULT_MARK_THRESHOLD } from '../pipeline/evaluate.js';
import { labelsToMask, type LabelPolarity } from '../io/index.js';
import { displayPath, isUrl } from '../io/registry.js';
import { allocate, fullScale, type StackData } from '../image/stack.js';
import { ISBI_POLARITY, decideMapPolarity, flagPolarity, fromMembrane, toMembrane, type MapPolarity } from '../image/map-meaning.js';
import { LruCache } from './lru.js';
import { readEval, readStudy, readTraining, type EvalInfo } from './data.js';
import { ErrorSource } from './errors-layer.js';
import type { ErrorMarks, LayerKind, Manifest, NeuronInfo, PointReadout, StudyChart, TrainingCurves } from './protocol.js';
import { renderTile, type Painter } from './render.js';
import { containedFiles, levelCount, StackSource, type Downsample, type OrthoAxis, type Plane, type VolumeSource } from './source.js';
import { isZarrPath, viewerPath, ZarrSource } from './zarr-source.js';

export const TILE_SIZE = 256;
/** The layers the page shows when it opens (src/viewer/page/main.ts, START). */
const SHOWN_AT_START: readonly LayerKind[] = ['image', 'map', 'compare'];
/** Coarse levels made ahead at start: a window of up to 1024x1024 pixels shows a level of at most 4x4 tiles. */
const HOME_VIEW_TILES = 16;
/** Quiet time after the last tile request before the neighbouring sections are decoded. */
const PREFETCH_AFTER_MS = 150;
/** Encoded PNG tiles kept, in bytes. */
export const TILE_CACHE_BYTES = 256 * 1024 * 1024;
/** Neurons whose sizes are remembered (each one costs a pass over the cells layer to count). */
const NEURONS_KEPT = 64;

export interface ViewInputs {
  images?: string;
  /** Membrane map (ISBI polarity, 1 = non-membrane, unless membraneProb). */
  map?: string;
  /** A second map to compare with the first (swipe). */
  compare?: string;
  membraneProb?: boolean;
  cells?: string;
  labels?: string;
  polarity?: LabelPolarity;
  eval?: string;
  train?: string;
  study?: string;
}

interface Layer {
  kind: LayerKind;
  name: string;
  source: VolumeSource;
  painter: Painter;
}

const STACK_KINDS = ['images', 'map', 'compare', 'cells', 'labels'] as const;
const KIND_OF: Record<(typeof STACK_KINDS)[number], LayerKind> = { images: 'image', map: 'map', compare: 'compare', cells: 'cells', labels: 'labels' };

/** Unit conversion of a map sample of `polarity` to P(membrane). */
function pMembraneOf(polarity: MapPolarity, max: number): (v: number) => number {
  return (v) => toMembrane(v / max, polarity);
}

/** Display range of the image: the type's range for 8 bits, the first section's own range otherwise (12-bit data). */
function greyOf(data: StackData, type: VolumeSource['dtype']): (v: number) => number {
  if (type === 'uint8') return (v) => v / fullScale(type);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  return (v) => Math.min(1, Math.max(0, (v - lo) / span));
}

export class ViewModel {
  private readonly tiles = new LruCache<Uint8Array>(TILE_CACHE_BYTES);
  /** Files left out because they are links to places outside the given folders. */
  refused: string[] = [];

  private constructor(
    readonly inputs: ViewInputs,
    private readonly layers: Layer[],
    private readonly errors: ErrorSource | undefined,
    private readonly evaluation: EvalInfo | undefined,
  ) {}

  static async open(inputs: ViewInputs): Promise<ViewModel> {
    for (const key of ['eval', 'train', 'study'] as const) refuseRemoteData(inputs[key], key);
    const layers: Layer[] = [];
    const refused: string[] = [];
    const membraneProb = inputs.membraneProb ?? false;
    for (const key of STACK_KINDS) {
      if (inputs[key] === undefined) continue;
      const path = viewerPath(inputs[key]);
      const kind = KIND_OF[key];
      const downsample = kind === 'image' || kind === 'map' || kind === 'compare' ? 'mean' : 'nearest';
      const source = await openSource(path, downsample, kind, refused);
      const painter: Painter = {};
      if (kind === 'image') painter.grey = greyOf((await source.tile(0, levelCount(source.shape, TILE_SIZE) - 1, 0, 0, TILE_SIZE)).data, source.dtype);
      if (kind === 'map' || kind === 'compare') painter.pMembrane = pMembraneOf(mapPolarity(source, path, membraneProb), fullScale(source.dtype));
      if (kind === 'cells' && source.dtype !== 'uint32' && source.dtype !== 'uint16' && source.dtype !== 'uint8') {
        throw new EmsegError('invalid-data', path, `holds ${source.dtype} samples; cells are integer ids (emseg segment writes uint32)`);
      }
      if (kind === 'labels') painter.polarity = inputs.polarity ?? 'membrane-0-interior-255';
      layers.push({ kind, name: path, source, painter });
    }
    if (layers.length === 0) throw new EmsegError('nothing-to-view', '', 'give an image stack, a membrane map, cells or labels to view');
    checkShapes(layers);
    const evaluation = inputs.eval === undefined ? undefined : await readEval(inputs.eval);
    const labels = layers.find((l) => l.kind === 'labels');
    const map = layers.find((l) => l.kind === 'map');
    let errors: ErrorSource | undefined;
    if (labels && map) {
      const toP = map.painter.pMembrane!;
      // The metrics score ISBI proposals (P(non-membrane)).
      const toProposal = (plane: Plane) => Float32Array.from(plane.data, (v) => fromMembrane(toP(v), ISBI_POLARITY));
      errors = new ErrorSource(labels.source, map.source, labels.painter.polarity!, toProposal, evaluation?.threshold ?? DEFAULT_MARK_THRESHOLD);
      layers.push({ kind: 'errors', name: `${labels.name} vs ${map.name}`, source: errors, painter: {} });
    }
    if (inputs.train !== undefined) await readTraining(inputs.train); // fail now, not when the page asks
    if (inputs.study !== undefined) await readStudy(inputs.study);
    const model = new ViewModel(inputs, layers, errors, evaluation);
    model.refused = refused;
    return model;
  }

  get shape() {
    return this.layers[0]!.source.shape;
  }

  manifest(): Manifest {
    const { width, height, depth } = this.shape;
    const sections = Array.from({ length: depth }, (_, index) => {
      const files: Manifest['sections'][number]['files'] = {};
      for (const l of this.layers) if (l.kind !== 'errors') files[l.kind] = basename(l.source.sourceName(index));
      const evaluation = this.evaluation?.perSection.get(index);
      return { index, files, ...(evaluation ? { evaluation } : {}) };
    });
    return { width, height, depth, tileSize: TILE_SIZE, levels: this.levels,
      layers: this.layers.map((l) => ({ kind: l.kind, name: l.name })), sections,
      hasTraining: this.inputs.train !== undefined, hasStudy: this.inputs.study !== undefined };
  }

  get levels(): number {
    return levelCount(this.shape, TILE_SIZE);
  }

  hasLayer(kind: LayerKind): boolean {
    return this.layers.some((l) => l.kind === kind);
  }

  /**
   * PNG bytes of one tile; undefined when the tile lies outside the level. `highlight` (cells only) is a cell id
   * drawn opaque with every other id dimmed.
   */
  async tile(kind: LayerKind, z: number, level: number, x: number, y: number, highlight?: number): Promise<Uint8Array | undefined> {
    const layer = this.layers.find((l) => l.kind === kind)!;
    const { width, height } = this.shape;
    const scale = 2 ** level;
    if (x * TILE_SIZE * scale >= width || y * TILE_SIZE * scale >= height) return undefined;
    const chosen = kind === 'cells' ? highlight : undefined;
    return this.tiles.getOrCreate(`${kind}/${z}/${level}/${x}/${y}/${chosen ?? ''}`, async () => {
      const plane = await layer.source.tile(z, level, x, y, TILE_SIZE);
      const png = renderTile(kind, plane, this.painterOf(layer, z, chosen));
      return { value: png, cost: png.byteLength };
    });
  }

  private painterOf(layer: Layer, z: number, highlight: number | undefined): Painter {
    if (layer.kind === 'labels') return { ...layer.painter, source: layer.source.sourceName(z) };
    return highlight === undefined ? layer.painter : { ...layer.painter, highlight };
  }

  /** Whether `kind` has orthogonal views (the derived marks are per section and have none). */
  hasOrtho(kind: LayerKind): boolean {
    return this.layers.some((l) => l.kind === kind && l.source.orthoPlane !== undefined);
  }

  /**
   * PNG of the orthogonal plane of a layer through row `at` (xz) or column `at` (yz), full resolution, rows = z,
   * painted as the layer's tiles are (the same colour per cell id as on the sections).
   */
  ortho(kind: LayerKind, axis: OrthoAxis, at: number, highlight?: number): Promise<Uint8Array> {
    const layer = this.layers.find((l) => l.kind === kind)!;
    const chosen = kind === 'cells' ? highlight : undefined;
    return this.tiles.getOrCreate(`${kind}/${axis}/${at}/${chosen ?? ''}`, async () => {
      const plane = await layer.source.orthoPlane!(axis, at);
      const png = renderTile(kind, plane, this.painterOf(layer, 0, chosen));
      return { value: png, cost: png.byteLength };
    });
  }

  private readonly neurons = new Map<number, Promise<NeuronInfo>>();

  /**
   * Size and z extent of one cell id of the cells layer: one pass over it, tile by tile (memory of one tile),
   * remembered for the last NEURONS_KEPT ids asked.
   */
  neuron(id: number): Promise<NeuronInfo> | undefined {
    const layer = this.layers.find((l) => l.kind === 'cells');
    if (!layer) return undefined;
    let info = this.neurons.get(id);
    if (!info) {
      if (this.neurons.size >= NEURONS_KEPT) this.neurons.delete(this.neurons.keys().next().value!);
      info = countNeuron(layer.source, id);
      info.catch(() => this.neurons.delete(id));
      this.neurons.set(id, info);
    }
    return info;
  }

  /**
   * After the page stops asking for tiles of section z, makes the same tiles of the sections either side, so that
   * the next key press finds them ready. One tile at a time, yielding between them, so requests still come first.
   */
  prefetch(z: number, kind: LayerKind, level: number, x: number, y: number, highlight?: number): void {
    if (z !== this.prefetchZ) {
      this.prefetchZ = z;
      this.wanted.clear();
    }
    this.wanted.add(JSON.stringify([kind, level, x, y, highlight]));
    clearTimeout(this.prefetchTimer);
    this.prefetchTimer = setTimeout(() => void this.prefetchNow(z), PREFETCH_AFTER_MS);
    this.prefetchTimer.unref();
  }

  /**
   * Makes section 0's tiles of the coarse levels (those of at most HOME_VIEW_TILES tiles) for the layers the page
   * shows at first, so that the first paint finds them ready. In the background, one tile at a time.
   */
  async warmHomeView(): Promise<void> {
    for (let level = this.levels - 1; level >= 0; level--) {
      const across = Math.ceil(this.shape.width / (TILE_SIZE * 2 ** level));
      const down = Math.ceil(this.shape.height / (TILE_SIZE * 2 ** level));
      if (across * down > HOME_VIEW_TILES) break;
      for (const l of this.layers) {
        if (!SHOWN_AT_START.includes(l.kind)) continue;
        for (let y = 0; y < down; y++) {
          for (let x = 0; x < across; x++) {
            await new Promise((r) => setImmediate(r));
            await this.tile(l.kind, 0, level, x, y).catch(() => undefined); // a failure shows when the page asks
          }
        }
      }
    }
  }

  private prefetchZ = -1;
  private readonly wanted = new Set<string>();
  private prefetchTimer?: NodeJS.Timeout;

  private async prefetchNow(z: number): Promise<void> {
    const tiles = [...this.wanted].map((t) => JSON.parse(t) as [LayerKind, number, number, number, number | null]);
    for (const near of [z + 1, z - 1]) {
      if (near < 0 || near >= this.shape.depth) continue;
      for (const [kind, level, x, y, highlight] of tiles) {
        if (this.prefetchZ !== z) return; // the page has moved on
        await new Promise((r) => setImmediate(r));
        await this.tile(kind, near, level, x, y, highlight ?? undefined).catch(() => undefined); // a failure shows when the page asks for it
      }
    }
  }

  async point(z: number, x: number, y: number): Promise<PointReadout> {
    const out: PointReadout = { x, y, z };
    for (const l of this.layers) {
      if (l.kind === 'errors') continue;
      // The tile under the cursor, not the whole section: a tile of a large OME-Zarr section is one small read.
      const t = await l.source.tile(z, 0, Math.floor(x / TILE_SIZE), Math.floor(y / TILE_SIZE), TILE_SIZE);
      const v = t.data[(y % TILE_SIZE) * t.width + (x % TILE_SIZE)]!;
      if (l.kind === 'image') out.intensity = v;
      else if (l.kind === 'map') out.pMembrane = l.painter.pMembrane!(v);
      else if (l.kind === 'compare') out.pMembraneCompare = l.painter.pMembrane!(v);
      else if (l.kind === 'cells') out.cell = v;
      else {
        const one = allocate(l.source.dtype, 1);
        one[0] = v;
        out.label = labelsToMask(one, l.painter.polarity!, l.source.sourceName(z))[0] ? 'membrane' : 'interior';
      }
    }
    return out;
  }

  errorMarks(z: number): Promise<ErrorMarks> | undefined {
    return this.errors?.errorMarks(z);
  }

  training(): Promise<TrainingCurves> | undefined {
    return this.inputs.train === undefined ? undefined : readTraining(this.inputs.train);
  }

  study(): Promise<StudyChart> | undefined {
    return this.inputs.study === undefined ? undefined : readStudy(this.inputs.study);
  }
}

/** Voxels and z extent of `id` in `source`, read one full-resolution tile at a time. */
async function countNeuron(source: VolumeSource, id: number): Promise<NeuronInfo> {
  const { width, height, depth } = source.shape;
  const info: NeuronInfo = { id, voxels: 0, zMin: -1, zMax: -1 };
  for (let z = 0; z < depth; z++) {
    let here = 0;
    for (let ty = 0; ty * TILE_SIZE < height; ty++) {
      for (let tx = 0; tx * TILE_SIZE < width; tx++) {
        const { data } = await source.tile(z, 0, tx, ty, TILE_SIZE);
        for (let i = 0; i < data.length; i++) if (data[i] === id) here++;
      }
    }
    if (here === 0) continue;
    info.voxels += here;
    if (info.zMin < 0) info.zMin = z;
    info.zMax = z;
  }
  return info;
}

/**
 * Refuses a URL for the side data (--eval, --train, --study): those are files emseg writes on this machine, read from
 * local (or shared) folders; volumes alone are read from stores.
 */
function refuseRemoteData(path: string | undefined, flag: string): void {
  if (path !== undefined && isUrl(path)) {
    throw new EmsegError('unsupported', displayPath(path), `--${flag} is read from a local (or shared) file or folder; only volumes (OME-Zarr) are read from URLs`);
  }
}

/** A stack of files (links outside the given folder refused into `refused`) or an OME-Zarr image (local or in a store) read by tile. */
async function openSource(path: string, downsample: Downsample, kind: LayerKind, refused: string[]): Promise<VolumeSource> {
  if (await isZarrPath(path)) return ZarrSource.open(path, downsample);
  const { files, refused: out } = await containedFiles(path);
  refused.push(...out);
  return StackSource.open(files, downsample, kind === 'image' ? { colour: 'to-grey' } : {});
}

/**
 * What a map's values mean: an OME-Zarr map says so in its metadata, which wins over the flag; the flag, shared by
 * --map and --compare, says it for maps that record nothing (stacks are read by the flag alone).
 */
function mapPolarity(source: VolumeSource, path: string, membraneProb: boolean): MapPolarity {
  const attributes = source instanceof ZarrSource ? source.base.attributes : {};
  return decideMapPolarity(attributes, path, { unrecorded: flagPolarity(membraneProb) });
}

function checkShapes(layers: Layer[]): void {
  const first = layers[0]!;
  const a = first.source.shape;
  for (const l of layers.slice(1)) {
    const b = l.source.shape;
    if (a.width !== b.width || a.height !== b.height || a.depth !== b.depth) {
      throw new EmsegError('mismatch', l.name, `is ${b.width}x${b.height}x${b.depth} but ${first.name} is ${a.width}x${a.height}x${a.depth}; every layer must match section for section`);
    }
  }
}
