import { DEFAULT_SEGMENT_OPTIONS, type SegmentOptions } from '../../segment/index.js';

/** The documentation (README.md) inside a bioimage.io package: what the model is and how to read its output. */
export interface ReadmeFacts {
  name: string;
  description: string;
  members: string[];
  intensity: string;
  inputType: string;
  halo: number;
  step: number;
  minSize: number;
  scores?: Record<string, unknown>;
  /** The gap-closing options tuned for the model, when it carries them. */
  closeGaps?: SegmentOptions;
  emsegVersion: string;
  command: string;
}

export function packageReadme(f: ReadmeFacts): string {
  const scores = f.scores ? Object.entries(f.scores).filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => `| ${k} | ${(v as number).toFixed(4)} |`) : [];
  return [
    `# ${f.name}`,
    '',
    f.description,
    '',
    `Exported by emseg ${f.emsegVersion} with \`${f.command}\`.`,
    f.members.length > 1 ? `An ensemble of ${f.members.join(', ')}: the graph averages the members' probabilities.` : '',
    '',
    '## Input',
    '',
    `One grey electron-microscopy section, axes batch, channel (1), y, x, stored as ${f.inputType}. The preprocessing`,
    `in rdf.yaml reproduces the intensity rule the model was trained with (emseg \`--intensity ${f.intensity}\`),`,
    'bringing values to [0, 1]. Any section size works: the graph mirrors the borders itself (edge not repeated)',
    `and returns an output of the input's size. Block-wise runners should use blocks of at least ${f.minSize} px`,
    `(multiples of ${f.step} px above that) overlapping by the halo of ${f.halo} px.`,
    '',
    '## Output',
    '',
    'Class probabilities, axes batch, channel, y, x (float32, each pixel\'s channels sum to 1):',
    '',
    '- channel 0, `interior`: probability that the pixel is NOT membrane (cell interior);',
    '- channel 1, `membrane`: probability that the pixel is membrane. **High values (near 1) mean membrane.**',
    '',
    'This is the opposite polarity of the ISBI 2012 label images (membrane black, 0). To get an ISBI-style map,',
    'take 1 - channel 1 (which is channel 0).',
    '',
    ...(f.closeGaps ? closeGapsSection(f.closeGaps) : []),
    scores.length ? '## Validation scores (emseg, on held-back ISBI 2012 sections)\n\n| metric | value |\n| --- | --- |' : '',
    ...scores,
    '',
    '## Citation',
    '',
    'Fakhry, Peng & Ji (2016), Deep models for brain EM image segmentation: novel insights and improved performance,',
    'Bioinformatics 32(15). ISBI 2012 data: Arganda-Carreras et al. (2015), Front. Neuroanat.',
    '',
  ].filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n');
}

/** How the model's maps become cells in emseg, with the setting tuned for them (also in rdf.yaml config.emseg). */
function closeGapsSection(o: SegmentOptions): string[] {
  return [
    '## From maps to cells',
    '',
    'emseg turns these maps into cells with a seeded watershed that also closes gaps in the membranes',
    '(`emseg predict --close-gaps`, `emseg segment`). The setting tuned for this model, also in rdf.yaml under',
    '`config.emseg.close_gaps`:',
    '',
    `\`--sigma ${o.sigma} --seed-threshold ${o.seedThreshold} --min-seed-area ${o.minSeedArea} ` +
      `--merge-threshold ${o.mergeThreshold} --extra-seed-threshold ${o.extraSeedThreshold ?? DEFAULT_SEGMENT_OPTIONS.extraSeedThreshold}\``,
    '',
  ];
}
