/**
 * emseg's library API: the same modules the CLI (src/cli) and the tests use.
 */
export { createBackend, type Backend, type BackendKind, type BackendOptions, type Precision } from './backend/index.js';
export { createReferenceBackend } from './backend/reference/index.js';
export { nativeInfo, nativeStats, trimNativePool, NativeCapabilityError, NativeUnavailableError } from './backend/onednn/index.js';
export { Tensor, type FloatArray, type Shape } from './tensor/tensor.js';
export { parseModelSpec, SpecError, type ModelSpec, type ModelSpecInput, type LayerSpec } from './nn/spec.js';
export { planModel, smallestInput3d, type Plan, type PlanNode, type PlanMode } from './nn/plan.js';
export { Network } from './nn/network.js';
export { initParams, zeroGrads, type Param, type ParamSet } from './nn/params.js';
export { Adam, Sgd, createOptimizer, type Optimizer, type OptimizerConfig } from './nn/optim.js';
export { learningRate, type ScheduleConfig } from './nn/schedule.js';
export { resolveSpec, unet3dSpec, unetSpec, zoo3dNames, zooNames } from './models/zoo.js';
export { loadModel, saveModel, type LoadedModel } from './models/model-dir.js';
export * from './io/index.js';
export * from './metrics/index.js';
export { evaluateFiles, type EvaluateFilesOptions } from './pipeline/evaluate.js';
export type { EvaluateFilesResult } from './report/index.js';
export { Predictor, MEMBRANE_CLASS, DEFAULT_TILE, type MapBand, type ModelWeights, type PredictOptions } from './infer/predict.js';
export { sectionFrom, type SectionSource } from './infer/section.js';
export { checkPredictionMemory, predictionWorkingSet, type WorkingSet } from './infer/memory.js';
export { MIN_TILE, tileGeometry, type TileGeometry } from './infer/tiling.js';
export { train, validate, type TrainConfig, type TrainData, type TrainHooks, type TrainOutcome } from './train/trainer.js';
export { benchModel, type BenchOptions, type BenchResult } from './bench/bench.js';
export { runStudy } from './study/study.js';
export { parseStudy, readStudyFile } from './study/schema.js';
export * from './segment/index.js';
export * from './segment/affinity/index.js';
export { cleanupTempFiles, onStaleTemp } from './util/temp-files.js';
export { configureS3 } from './io/stores/index.js';
export { openVolume, VOLUME_FORMATS, type OpenVolumeOptions, type ScaleLevel, type Vec3, type VolumeReader } from './io/registry.js';
export type { Region as VolumeRegion } from './io/registry.js';
export { openLabels, type LabelData, type LabelReader, type LabelType } from './io/registry.js';
export { decideReading, describeReading, LABEL_KINDS, type LabelFlags, type LabelKind, type LabelReading } from './io/training-labels.js';
export { summariseLabels, type LabelSummary } from './io/labels-summary.js';
export { labelsOutput, mapsOutput, type OutputKind, type OutputTarget, type StackFormat } from './io/outputs.js';
export { createLabelsImage, createOmeZarr, type LabelsImageOptions, type MembranePolarity, type OmeZarrOptions, type OmeZarrWriter } from './io/formats/ome-zarr-write.js';
export {
  CHANNEL_AXIS, ISBI_POLARITY, MAP_POLARITIES, MEMBRANE_POLARITY, MULTI_CHANNEL_KIND, convertInPlace, convertValue, decideMapPolarity, flagPolarity, fromMembrane,
  fromMembraneCopy, fromMembraneInPlace, meaningRecord, multiChannelRecord, parseMapRecord, toMembrane, toMembraneCopy, toMembraneInPlace,
  type ChannelMeaning, type MapMeaningChoice, type MapPolarity, type MapRecord, type MeaningRecord, type MultiChannelRecord,
} from './image/map-meaning.js';
export {
  BACKGROUND_ID, BOUNDARY_NEIGHBOURS, NEAREST_OFFSETS, affinityTargets, boundaryTargets, channelClassWeights, classBalanceWeights, labelTargets,
  targetMeanings, targetsRecord, type BoundaryChannel, type BoundaryNeighbours, type ClassWeights, type NeuronIds, type Offset3, type Shape3,
  type TargetChannel, type TargetOptions, type Targets,
} from './image/affinities.js';
export { convertToOmeZarr, type ConvertOptions } from './pipeline/convert.js';
export { chooseVoxelSize, formatVoxelSize, normalizeUnit, type VoxelSize, type VoxelSizeFlags } from './io/voxel-size.js';
export { chooseBlock, inShard, parseShard, planBlocks, shardBlocks, type Block, type BlockPlan, type Shard } from './pipeline/blocks.js';
export { digestFiles, openMarkers, readRunStatus, volumeFingerprint, type MarkerStore, type RunStatus } from './pipeline/markers.js';
export { runNeuronSegment, type NeuronSegmentJob, type NeuronSegmentResult } from './pipeline/neurons.js';
export { readSegmentStatus, runVolumeSegment, type SegmentRunStatus, type VolumeSegmentJob, type VolumeSegmentResult } from './pipeline/volume-segment.js';
