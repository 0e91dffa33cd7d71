import type { Command } from 'commander';
import { LABEL_POLARITIES } from '../io/index.js';
import { summariseLabels, type LabelSummary } from '../io/labels-summary.js';
import { DEFAULT_BOUNDARY_WIDTH, LABEL_KINDS } from '../io/training-labels.js';
import { givenPolarity, labelPolarity, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { ignoreLabel, labelKind } from './train.js';

const pct = (f: number) => `${(100 * f).toFixed(1)} %`;

/** Sections as a short list ("0-3, 7"). */
function ranges(zs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < zs.length; i++) {
    let j = i;
    while (j + 1 < zs.length && zs[j + 1] === zs[j]! + 1) j++;
    parts.push(j === i ? `${zs[i]}` : `${zs[i]}-${zs[j]}`);
    i = j;
  }
  return parts.join(', ');
}

function describe(s: LabelSummary): string {
  const what = s.ids !== undefined ? `ids:        ${s.ids} (0 and the ignore label not counted)`
    : `classes:    ${s.classes!.map((c) => `${c.value} = ${c.meaning} (${c.pixels} px)`).join(', ')}`;
  const unlabelled = s.unlabelledSections.length === 0 ? 'every section labelled'
    : `${s.sections.length - s.unlabelledSections.length} labelled; without labels (no loss, left out of training): ${ranges(s.unlabelledSections)}`;
  const lines = [
    `path:       ${s.path} (${s.format}, ${s.shape.join(' x ')} z,y,x, ${s.dtype})`,
    `understood: ${s.understood.replace(/^labels: /, '')}`,
    what,
    `ignored:    ${pct(s.ignored)} of the pixels give no loss`,
    `boundary:   ${pct(s.boundary)} of the labelled pixels are membrane`,
    `sections:   ${s.sections.length}: ${unlabelled}`,
    '    z  labelled  boundary',
    ...s.sections.map((x) => `${String(x.z).padStart(5)}  ${pct(x.labelled).padStart(8)}  ${pct(x.boundary).padStart(8)}`),
    ...s.warnings,
  ];
  return `${lines.join('\n')}\n`;
}

/** JSON of a summary: the ignore label (a uint64 may pass 2^53) as decimal text. */
function toJson(s: LabelSummary): string {
  const { ignoreLabel: ignore, ...reading } = s.reading;
  return `${JSON.stringify({ ...s, reading: { ...reading, ...(ignore === undefined ? {} : { ignoreLabel: ignore.toString() }) } }, null, 2)}\n`;
}

export function registerLabels(program: Command): void {
  program
    .command('labels')
    .description('what emseg understands of training labels before any training: mask or instance, classes or ids, ignored '
      + 'fraction, polarity, boundary fraction, and which sections are labelled')
    .argument('<path>', 'labels: PNG/TIFF stack, file.h5:/volumes/labels/neuron_ids, OME-Zarr (labels group)')
    .option('--label-kind <kind>', `read them as ${LABEL_KINDS.join(' or ')} (default: as train decides)`, labelKind)
    .option('--polarity <p>', `membrane masks: ${LABEL_POLARITIES.join(', ')}`, labelPolarity)
    .option('--ignore-label <n>', 'label value whose pixels give no loss', ignoreLabel)
    .option('--boundary-width <px>', `instance labels: boundary pixels on each side of an id change (default ${DEFAULT_BOUNDARY_WIDTH})`, positiveInt)
    .option('--json', 'print JSON instead of text')
    .option('--quiet', 'no progress bar')
    .action(async (path: string, o, cmd: Command) => {
      let bar: ReturnType<typeof progressBar> | undefined;
      try {
        const s = await summariseLabels(path, { ...o, polarity: givenPolarity(o, cmd) }, (done, total) => {
          bar ??= progressBar('sections', total, '', o.quiet ?? Boolean(o.json));
          bar.update(done);
        });
        bar?.stop();
        process.stdout.write(o.json ? toJson(s) : describe(s));
      } finally {
        bar?.stop();
      }
    });
}
