/** 3-D neurons from affinities (watershed + agglomeration, mutex watershed) and from 2-D cells linked across sections. */
import { agglomerateGraph, DEFAULT_MERGE_AFFINITY, neuronsOfMerges, regionGraph, relabel } from './agglomerate.js';
import { affinityFragments, type FragmentOptions, type Labelling } from './fragments.js';
import type { AffinityVolume } from './input.js';

export { DEFAULT_MERGE_AFFINITY, MAX_FRAGMENTS, agglomerateGraph, cutHistory, mergeHistory, neuronsOfMerges, regionGraph, relabel, type Merge, type RegionGraph } from './agglomerate.js';
export { DEFAULT_SEED_BOUNDARY, FLOOD_LEVELS, affinityFragments, type FragmentOptions, type Labelling } from './fragments.js';
export { MAX_ELEMENTS, checkAffinities, isNearest, isPlanar, nearestChannels, type AffinityVolume } from './input.js';
export { DEFAULT_MIN_OVERLAP, linkSections, type LinkOptions } from './link.js';
export { mutexWatershed } from './mutex.js';
export { RegionGraphBuilder, agglomerateBlocks, blockEdges, blockFragments, blocksOf, blockwiseNeurons, cropAffinities, type BlockEdges, type BlockwiseOptions, type Box } from './blockwise.js';

export interface WatershedAgglomerateOptions extends FragmentOptions {
  /** Fragments whose boundary's mean affinity reaches this are merged (default DEFAULT_MERGE_AFFINITY). */
  mergeAffinity?: number;
}

/** Neurons of an affinity volume: fragments by seeded watershed, merged by mean boundary affinity (Lee et al. 2017). */
export function watershedAgglomerate(v: AffinityVolume, o: WatershedAgglomerateOptions = {}): Labelling {
  const fragments = affinityFragments(v, o);
  const { merges } = agglomerateGraph(regionGraph(v, fragments), o.mergeAffinity ?? DEFAULT_MERGE_AFFINITY);
  const { table, count } = neuronsOfMerges(fragments.count, merges);
  return { labels: relabel(fragments.labels, table), count };
}
