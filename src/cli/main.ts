import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerModels } from './models.js';
import { registerPack } from './pack.js';
import { registerPredict } from './predict.js';
import { registerSegment } from './segment.js';
import { registerStudy } from './study.js';
import { registerTrain } from './train.js';
import { registerTuneSegment } from './tune-segment.js';
import { onStaleTemp } from '../util/temp-files.js';

export function buildProgram(): Command {
  const program = new Command('emseg')
    .description('Deep CNN membrane segmentation of EM images (Fakhry, Peng & Ji 2016), on oneDNN')
    .showHelpAfterError();
  registerDemo(program);
  registerModels(program);
  registerBench(program);
  registerTrain(program);
  registerPredict(program);
  registerPack(program);
  registerSegment(program);
  registerTuneSegment(program);
  registerStudy(program);
  registerEval(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // Temporaries of the current run are removed on SIGINT/SIGTERM/SIGHUP by util/temp-files; those of a killed run are
  // swept by the next write to the same folder, and said so here.
  onStaleTemp((path, pid) => process.stderr.write(`emseg: removed ${path}, left by an interrupted run (pid ${pid})\n`));
  await buildProgram().parseAsync(argv);
}
