/** ISBI 2012 challenge metrics (pixel, Rand, warping, V_rand, V_info), as the reference Fiji code computes them. */
export { evaluateStacks } from './evaluate.js';
export { METRIC_NAMES } from './types.js';
export type { EvaluateOptions, EvaluationResult, MetricName, PerSlice, PerThreshold } from './types.js';
export { thinnedSegmentation, warpingErrorLocations } from './slice-analysis.js';
export type { PixelPosition, WarpingErrorLocations } from './slice-analysis.js';
export { SWEEP_THRESHOLDS, WARPING_THRESHOLDS, javaThresholds } from './thresholds.js';
export { labelComponents4 } from '../image/components.js';
export { BREAKDOWN_KINDS, DEFAULT_SMALL_CELL_AREA, warpingBreakdown } from './breakdown.js';
export type { BreakdownCounts, WarpingBreakdown } from './breakdown.js';
export { Contingency3d, labelId } from './contingency3d.js';
export type { AddOptions, ContingencyOptions, IdArray, LabelId, VoxelPosition } from './contingency3d.js';
export { DEFAULT_WORST_COUNT, neuronScores } from './neuron-scores.js';
export type { MergedSegment, NeuronScores, SplitNeuron } from './neuron-scores.js';
export { borderMask } from './border-mask.js';
export { cellBoundaryMap, type CellLabels } from './cell-map.js';
