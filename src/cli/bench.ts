import { Option, type Command } from 'commander';
import { benchModel, type BenchResult } from '../bench/bench.js';
import { BENCH_3D_DEFAULTS, COMMON_DEFAULTS as C } from '../pipeline/defaults.js';
import { resolveSpec } from '../models/zoo.js';
import { backendKind, positiveInt, precisionChoice } from './options.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time forward and training step of a zoo model or spec file (median of N runs after warm-up)')
    .argument('[model]', 'zoo name or spec file', 'reference-net')
    .option('--train-size <px>', 'training tile size', positiveInt, 256)
    .option('--forward-size <px>', 'forward (inference) output size', positiveInt, 512)
    .option('--batch <n>', 'batch size', positiveInt, 1)
    .option('--iters <n>', 'timed runs', positiveInt, 15)
    .option('--warmup <n>', 'untimed warm-up runs', positiveInt, 3)
    .addOption(new Option('--precision <list>', 'fp32, bf16, a list (fp32,bf16: each required) or both (bf16 skipped with a note where '
      + 'this machine cannot run it)').argParser(precisionChoice).default(precisionChoice('both'), 'both'))
    .option('--threads <n>', 'CPU threads (default EMSEG_THREADS or all cores)', positiveInt)
    .option('--backend <kind>', C.backend.help, backendKind, C.backend.value)
    .option('--sliding-crop <px>', 'patch classifiers: time per-window classification of a crop vs dense scanning', positiveInt)
    .option('--section <px>', 'also time whole-section prediction (as emseg predict) on a section this size', positiveInt)
    .option('--section-tta', 'with --section: also time the 8-fold test-time augmentation (one run)')
    .option('--json', 'print JSON')
    .action((model: string, o, cmd: Command) => {
      const spec = resolveSpec(model);
      // 3-d models count output voxels per axis: the 2-d defaults (hundreds of pixels) would be volumes of 10^8 voxels.
      const is3d = spec.input.dims === 3;
      const sized = (key: 'trainSize' | 'forwardSize') =>
        (is3d && cmd.getOptionValueSource(key) === 'default' ? BENCH_3D_DEFAULTS[key].value : o[key]);
      const results = benchModel(spec, {
        trainSize: sized('trainSize'), forwardSize: sized('forwardSize'), batch: o.batch, iters: o.iters, warmup: o.warmup,
        precisions: o.precision.precisions, skipUnavailable: o.precision.skipUnavailable,
        notice: (m: string) => process.stderr.write(`emseg bench: ${m}\n`), threads: o.threads, backend: o.backend, slidingCrop: o.slidingCrop,
        sectionSize: o.section, sectionTta: o.sectionTta ?? false,
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        return;
      }
      for (const r of results) {
        const f = r.forward;
        const t = r.train;
        if (r.volume) {
          write3d(r);
          continue;
        }
        process.stdout.write(
          `${r.model} ${r.precision} (${r.backend})\n` +
          `  forward ${f.size}x${f.size} x${f.batch} (${r.forwardMode}): ${f.medianMs.toFixed(1)} ms, ` +
          `${f.gflop.toFixed(2)} GFLOP, ${f.gflops.toFixed(0)} GFLOP/s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n` +
          `  train step ${t.size}x${t.size} x${t.batch}: ${t.medianMs.toFixed(1)} ms, ` +
          `${t.gflop.toFixed(2)} GFLOP, ${t.gflops.toFixed(0)} GFLOP/s, ${Math.round(t.windowsPerSecond)} windows/s, ` +
          `peak RSS ${t.peakRssMb.toFixed(0)} MB\n` +
          (r.sliding ? `  dense vs sliding window on a ${r.sliding.crop}x${r.sliding.crop} crop: ${r.sliding.denseMs.toFixed(1)} ms ` +
            `vs ${r.sliding.slidingMs.toFixed(0)} ms (${r.sliding.speedup.toFixed(0)}x)\n` : '') +
          (r.section ? `  predict one ${r.section.size}x${r.section.size} section: ${(r.section.ms / 1e3).toFixed(2)} s ` +
            `(dense rate ${(r.section.size ** 2 / r.section.ms / 1e3).toFixed(3)} M voxels/s)` +
            `${r.section.ttaMs ? `, with TTA ${(r.section.ttaMs / 1e3).toFixed(2)} s` : ''}\n` : ''));
      }
    });
}

/** A 3-d model's timings: inputs and outputs as depth x height x width, rates in output voxels. */
function write3d(r: BenchResult): void {
  const { forward: f, train: t, volume: v } = r;
  process.stdout.write(
    `${r.model} ${r.precision} (${r.backend})\n` +
    `  forward ${v!.forwardInput.join('x')} -> ${v!.forwardOutput.join('x')} x${f.batch}: ${f.medianMs.toFixed(1)} ms, ` +
    `${f.gflop.toFixed(2)} GFLOP, ${f.gflops.toFixed(0)} GFLOP/s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n` +
    `  train step ${v!.trainInput.join('x')} -> ${v!.trainOutput.join('x')} x${t.batch}: ${t.medianMs.toFixed(1)} ms, ` +
    `${t.gflop.toFixed(2)} GFLOP, ${t.gflops.toFixed(0)} GFLOP/s, ${Math.round(t.windowsPerSecond)} voxels/s, ` +
    `peak RSS ${t.peakRssMb.toFixed(0)} MB\n`);
}
