/**
 * 2-D cells of an anisotropic stack linked into 3-D neurons (the classic pipeline, and the baseline the 3-D methods
 * must beat): a cell of section z and a cell of section z + 1 are one neuron when their overlap (pixels at the same
 * y, x) is at least `minOverlap` of each cell's area. A fraction above 0.5 of both links each cell to at most one
 * cell per neighbouring section, so a neuron never merges with another through a chain of partial overlaps.
 * Optional map evidence: the mean P(membrane) over the overlap in both sections must stay below `maxMembrane`.
 */
import { EmsegError } from '../../errors.js';
import type { Shape3 } from '../../image/affinities.js';
import type { Labelling } from './fragments.js';

/** Default smallest overlap, as a fraction of each cell's area, that links two cells of neighbouring sections. */
export const DEFAULT_MIN_OVERLAP = 0.5;

export interface LinkOptions {
  /** Smallest overlap as a fraction of each of the two cells' areas (default DEFAULT_MIN_OVERLAP). */
  minOverlap?: number;
  /** P(membrane) per voxel (same shape): overlaps whose mean over both sections reaches `maxMembrane` do not link. */
  membrane?: Float32Array;
  /** Default 1: the map never vetoes. */
  maxMembrane?: number;
}

/** Areas and overlaps of the cells of two neighbouring sections (ids are section-local, 0 = no cell). */
interface SectionPair { areaA: Map<number, number>; areaB: Map<number, number>; overlap: Map<string, { a: number; b: number; n: number; membrane: number }> }

function pairOf(cells: Uint32Array, z: number, area: number, membrane: Float32Array | undefined): SectionPair {
  const pair: SectionPair = { areaA: new Map(), areaB: new Map(), overlap: new Map() };
  for (let i = 0; i < area; i++) {
    const [a, b] = [cells[z * area + i]!, cells[(z + 1) * area + i]!];
    if (a !== 0) pair.areaA.set(a, (pair.areaA.get(a) ?? 0) + 1);
    if (b !== 0) pair.areaB.set(b, (pair.areaB.get(b) ?? 0) + 1);
    if (a === 0 || b === 0) continue;
    const key = `${a},${b}`;
    let o = pair.overlap.get(key);
    if (o === undefined) pair.overlap.set(key, o = { a, b, n: 0, membrane: 0 });
    o.n++;
    if (membrane) o.membrane += (membrane[z * area + i]! + membrane[(z + 1) * area + i]!) / 2;
  }
  return pair;
}

function checkLink(cells: Uint32Array, shape: Shape3, o: LinkOptions): void {
  const n = shape[0] * shape[1] * shape[2];
  if (cells.length !== n) throw new EmsegError('mismatch', 'cells', `${cells.length} ids for ${shape.join(' x ')} voxels`);
  if (o.membrane && o.membrane.length !== n) throw new EmsegError('mismatch', 'membrane', `${o.membrane.length} values for ${shape.join(' x ')} voxels`);
  const f = o.minOverlap ?? DEFAULT_MIN_OVERLAP;
  if (!(f > 0 && f <= 1)) throw new EmsegError('invalid-option', 'minOverlap', `${f} is not a fraction in (0, 1]`);
  const m = o.maxMembrane ?? 1;
  if (!(m >= 0 && m <= 1)) throw new EmsegError('invalid-option', 'maxMembrane', `${m} is not a probability in [0, 1]`);
}

/**
 * 3-D neuron ids from per-section cell ids (`cells`, z, y, x; ids local to each section, 0 = no cell and stays 0).
 * Neurons are numbered 1..count in raster order of their first voxel.
 */
export function linkSections(cells: Uint32Array, shape: Shape3, o: LinkOptions = {}): Labelling {
  checkLink(cells, shape, o);
  const [Z, Y, X] = shape;
  const area = Y * X;
  const f = o.minOverlap ?? DEFAULT_MIN_OVERLAP;
  const maxMembrane = o.maxMembrane ?? 1;
  // Union-find over (section, cell) keys "z:id".
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    parent.set(k, r);
    return r;
  };
  for (let z = 0; z + 1 < Z; z++) {
    const pair = pairOf(cells, z, area, o.membrane);
    for (const ov of pair.overlap.values()) {
      if (ov.n < f * pair.areaA.get(ov.a)! || ov.n < f * pair.areaB.get(ov.b)!) continue;
      if (o.membrane && ov.membrane / ov.n >= maxMembrane) continue;
      const [ra, rb] = [find(`${z}:${ov.a}`), find(`${z + 1}:${ov.b}`)];
      if (ra !== rb) parent.set(rb, ra);
    }
  }
  return numberLinked(cells, area, find);
}

function numberLinked(cells: Uint32Array, area: number, find: (k: string) => string): Labelling {
  const ids = new Map<string, number>();
  const labels = new Uint32Array(cells.length);
  let section = new Map<number, number>(); // this section's cell -> neuron id, so each cell is looked up once
  for (let i = 0; i < cells.length; i++) {
    if (i % area === 0) section = new Map();
    const c = cells[i]!;
    if (c === 0) continue;
    let id = section.get(c);
    if (id === undefined) {
      const root = find(`${Math.floor(i / area)}:${c}`);
      id = ids.get(root);
      if (id === undefined) ids.set(root, id = ids.size + 1);
      section.set(c, id);
    }
    labels[i] = id;
  }
  return { labels, count: ids.size };
}
