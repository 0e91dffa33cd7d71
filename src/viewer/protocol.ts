/**
 * What the viewer's server and page say to each other: the JSON shapes of /api/*, shared by both sides so that a
 * change on one side is a type error on the other. Types only; nothing here runs.
 */
import type { EmsegErrorCode } from '../errors.js';

/** Overlay kinds, drawn in this order above the image. */
export type LayerKind = 'image' | 'map' | 'compare' | 'cells' | 'labels' | 'errors';

export interface LayerInfo {
  kind: LayerKind;
  /** What the user gave (a path as typed), shown as text. */
  name: string;
}

export interface SectionInfo {
  index: number;
  /** Base names of the files each layer's section came from, keyed by layer kind. */
  files: Partial<Record<LayerKind, string>>;
  /** From an `emseg eval --json --per-slice` result, when given. */
  evaluation?: { v_rand?: number; v_info?: number; warping_splits?: number; warping_mergers?: number };
}

export interface Manifest {
  width: number;
  height: number;
  depth: number;
  tileSize: number;
  /** Number of pyramid levels; level 0 is full resolution, level k is 2^k times smaller. */
  levels: number;
  layers: LayerInfo[];
  sections: SectionInfo[];
  hasTraining: boolean;
  hasStudy: boolean;
}

/** The readout under the cursor; a field is absent when its layer was not given. */
export interface PointReadout {
  x: number;
  y: number;
  z: number;
  intensity?: number;
  pMembrane?: number;
  pMembraneCompare?: number;
  cell?: number;
  label?: 'membrane' | 'interior';
}

/** One neuron (cell id) of the cells layer, counted over the whole volume. */
export interface NeuronInfo {
  id: number;
  /** Voxels holding the id, in every section. */
  voxels: number;
  /** First and last section (0-based) holding it; -1 when no voxel does. */
  zMin: number;
  zMax: number;
}

export interface ErrorMarks {
  z: number;
  threshold: number;
  splits: number;
  mergers: number;
  /** Up to MAX_MARKS_LISTED positions of each, [x, y]. */
  splitAt: [number, number][];
  mergerAt: [number, number][];
}

export interface TrainingCurves {
  name: string;
  steps: { step: number; loss: number; lr: number }[];
  validation: { step: number; pixel_error?: number; v_rand?: number; best: boolean }[];
}

export interface StudyChart {
  study: string;
  metrics: string[];
  variants: { name: string; metrics: Record<string, { mean: number; sd: number | null; n: number } | undefined> }[];
}

export interface ApiError {
  /** The EmsegError code of the refusal ('internal' for a bug). */
  error: EmsegErrorCode;
  message: string;
}
