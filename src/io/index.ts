/** Public API of emseg's image-stack input/output. */
export { EmsegIoError } from './errors.js';
export type { EmsegIoErrorCode } from './errors.js';
export { MAX_SLICE_PIXELS, MAX_STACK_ELEMENTS, availableMemoryBytes, formatBytes } from './limits.js';
export type { ColourPolicy } from './png.js';
export { IMAGE_EXTENSIONS, naturalSort, resolveSources } from './sources.js';
export { descriptionAttributes, iterateSlices, openStack, readStack } from './stack.js';
export type { LoadedStack, ReadOptions, Slice, StackReader } from './stack.js';
// The array types live in image/ (below io); re-exported here so the public API stays as it was.
export { allocate, fullScale, sampleTypeOf, sliceOf, stackToFloat32, toFloat32 } from '../image/stack.js';
export type { ImageStack, SampleType, SliceLike, StackData } from '../image/stack.js';
export { checkOutputPath, hasTiffExtension, isFolderPath, outputFormatFor, writeIsbiSubmission, writeStack } from './write.js';
export { FolderOutput, MANIFEST_FILE, outputGuard } from './output-guard.js';
export type { OutputGuard } from './output-guard.js';
export type { AnySlice, BandedSlice, OutputFormat, ProbabilityMeaning, SliceSource, WriteOptions } from './write.js';
export { DEFAULT_POLARITY, LABEL_POLARITIES, iterateDataset, labelsToMask, loadDataset } from './dataset.js';
export type { Dataset, DatasetOptions, DatasetSlice, LabelPolarity } from './dataset.js';
export { encodeTiff } from './tiff-write.js';
export { encodePng } from './png.js';
