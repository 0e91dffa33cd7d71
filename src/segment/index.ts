/** From membrane maps to cells: seeded watershed, agglomeration, gap closing, pictures. */
export { gaussianBlur } from './gaussian.js';
export { seededWatershed } from './watershed.js';
export { addUnseededRegions, seedRegions } from './seeds.js';
export { mergeWeakBoundaries, renumber, type Segmentation } from './agglomerate.js';
export { DEFAULT_SEGMENT_OPTIONS, closeMembraneGaps, segmentBoundaries, segmentSection, type SegmentOptions } from './segment.js';
export { segmentationPicture } from './picture.js';
export { closeGapsInStack, segmentGrid, tuneSegmentation, type SegmentGridAxes, type TuneRow } from './tune.js';
