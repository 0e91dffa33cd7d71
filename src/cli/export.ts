import { InvalidArgumentError, type Command } from 'commander';
import { EXPORT_FORMATS, runExport, type ExportFormat } from '../export/run.js';
import { COMMON_DEFAULTS as C } from '../pipeline/defaults.js';
import { SAMPLE_IMAGES } from '../pipeline/assets.js';
import { backendKind, JSON_FLAG, printResult } from './options.js';
import { typedCommand } from '../util/paths.js';

/** The bundled ISBI 2012 section that bioimage.io test tensors and the cover are cut from. */
const DEFAULT_SAMPLE = `${SAMPLE_IMAGES}/23.png`;

function exportFormat(value: string): ExportFormat {
  if ((EXPORT_FORMATS as readonly string[]).includes(value)) return value as ExportFormat;
  throw new InvalidArgumentError(`unknown format "${value}" (use ${EXPORT_FORMATS.join(', ')})`);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a model or ensemble as ONNX, or as a bioimage.io model package (for ilastik, bioimageio.core, deepImageJ)')
    .argument('<model>', 'model or ensemble directory (e.g. models/emseg-isbi)')
    .requiredOption('--format <f>', `${EXPORT_FORMATS.join(' or ')}`, exportFormat)
    .requiredOption('--out <file>', 'file to write (model.onnx, or model.zip for bioimageio)')
    .option('--name <text>', 'model name (default: "emseg" and the directory name)')
    .option('--author <name>', 'author of the package (repeatable; default "emseg contributors")', collect)
    .option('--license <spdx>', 'licence of the weights, an SPDX identifier', 'MIT')
    .option('--sample <image>', 'grey section for the bioimage.io test tensors and cover (default: the bundled samples/isbi2012/images/23.png)')
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--overwrite', 'replace an existing output')
    .option(...JSON_FLAG)
    .action(async (model: string, o) => {
      const result = await runExport({ model, format: o.format, out: o.out, overwrite: o.overwrite ?? false, name: o.name,
        authors: o.author, license: o.license, sample: o.sample ?? DEFAULT_SAMPLE, backend: o.backend, emsegVersion: program.version() ?? '',
        command: typedCommand(['emseg', ...process.argv.slice(2)]) });
      printResult(o.json, 'export', `wrote ${result.out} (${(result.bytes / 2 ** 20).toFixed(1)} MiB; ${result.members.join(' + ')})\n`,
        { out: result.out, format: o.format, bytes: result.bytes, members: result.members });
    });
}
