import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { EmsegError, describeError } from '../errors.js';
import { registerBench } from './bench.js';
import { registerConvert } from './convert.js';
import { registerCurves } from './curves.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerInfo, registerStatus } from './info.js';
import { registerLabels } from './labels.js';
import { registerModels } from './models.js';
import { registerPack } from './pack.js';
import { registerPredict } from './predict.js';
import { registerSegment } from './segment.js';
import { registerStudy } from './study.js';
import { registerTrain } from './train.js';
import { registerTuneSegment } from './tune-segment.js';
import { onStaleTemp } from '../util/temp-files.js';
import { registerView } from './view.js';
import { registerCancel, registerSubmit, registerWorker } from './queue.js';
import { configureS3 } from '../io/stores/index.js';

/** Compiled to dist/src/cli/, so the package's own package.json is three levels up. */
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

/** The version in package.json, read at run time so that it is stated in one place only. */
export function packageVersion(): string {
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown }).version;
  } catch (err) {
    throw new EmsegError('not-found', PACKAGE_JSON, `cannot read the package version (${describeError(err)})`);
  }
  if (typeof version !== 'string') throw new EmsegError('invalid-package', PACKAGE_JSON, 'has no "version" string');
  return version;
}

export function buildProgram(): Command {
  const program = new Command('emseg')
    .description('Deep CNN membrane segmentation of EM images (Fakhry, Peng & Ji 2016), on oneDNN')
    .version(packageVersion(), '-V, --version', 'print the emseg version')
    // Every command that takes a volume reads and writes s3:// paths; the endpoint is one setting for all of them.
    .option('--s3-endpoint <url>', 's3:// volumes: the S3-compatible store\'s endpoint (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)')
    .hook('preAction', (root) => {
      const endpoint = (root.opts() as { s3Endpoint?: string }).s3Endpoint;
      if (endpoint === undefined) return;
      configureS3({ endpoint });
      // The processes this one starts (a worker's block children) reach the same store.
      process.env.AWS_ENDPOINT_URL_S3 = endpoint;
    });
  registerDemo(program);
  registerModels(program);
  registerBench(program);
  registerTrain(program);
  registerPredict(program);
  registerPack(program);
  registerSegment(program);
  registerTuneSegment(program);
  registerStudy(program);
  registerCurves(program);
  registerEval(program);
  registerExport(program);
  registerInfo(program);
  registerLabels(program);
  registerConvert(program);
  registerStatus(program);
  registerSubmit(program);
  registerWorker(program);
  registerCancel(program);
  registerView(program);
  hintAfterErrors(program, ['emseg']);
  return program;
}

/**
 * After a usage error (missing or bad option, unknown command): the one error line, the command's usage with its
 * required options, and where the whole help is; not the whole help, which hides the error line.
 */
function hintAfterErrors(command: Command, path: string[]): void {
  command.showHelpAfterError(`${usageLine(command, path)}\n(see ${[...path, '--help'].join(' ')})`);
  for (const sub of command.commands) hintAfterErrors(sub, [...path, sub.name()]);
}

/** `usage: emseg predict --model <dirs...> --input <path> --out <path> [options]`: the required options first. */
export function usageLine(command: Command, path: readonly string[]): string {
  const required = command.options.filter((o) => o.mandatory).map((o) => o.flags.replace(/^-\w,\s*/, '')); // "-o, --out <p>": the long form
  return `usage: ${[...path, ...required, command.usage()].join(' ')}`;
}

export async function main(argv: string[]): Promise<void> {
  // Temporaries of the current run are removed on SIGINT/SIGTERM/SIGHUP by util/temp-files; those of a killed run are
  // swept by the next write to the same folder, and said so here.
  onStaleTemp((path, pid) => process.stderr.write(`emseg: removed ${path}, left by an interrupted run (pid ${pid})\n`));
  await buildProgram().parseAsync(argv);
}
