// Its own module so that dataset.ts and plausibility.ts (which dataset.ts imports) can both use it without a cycle.

/**
 * How label files encode membrane. The ISBI 2012 labels are 'membrane-0-interior-255' (the default);
 * 'membrane-255-interior-0' is the inverted form; the 0/1 forms are masks; the 'max' forms use the label
 * file's full scale (255 for 8-bit and 1-bit files, 65535 for 16-bit, 4294967295 for 32-bit). Labels are binary
 * masks, not maps: what a map's values mean is image/map-meaning.ts's MapPolarity.
 */
export type LabelPolarity =
  | 'membrane-0-interior-255'
  | 'membrane-255-interior-0'
  | 'membrane-1-interior-0'
  | 'membrane-0-interior-1'
  | 'membrane-0-interior-max'
  | 'membrane-max-interior-0';
