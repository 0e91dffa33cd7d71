import type { Command } from 'commander';
import { readStudyFile } from '../study/schema.js';
import { runStudy, type StudyEvent } from '../study/study.js';
import { formatDuration } from '../study/summary.js';
import { signedPercent } from '../study/variants.js';
import { positiveInt } from './options.js';

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function clock(elapsedMs: number, etaMs: number | null): string {
  return `elapsed ${formatDuration(elapsedMs)}, ETA ${etaMs === null ? '?' : formatDuration(etaMs)}`;
}

function describe(e: StudyEvent): string {
  switch (e.type) {
    case 'variants': {
      const valid = e.plans.filter((p) => p.summary);
      const ref = valid[0]?.summary?.flopsPerPixel;
      const rows = e.plans.map((p) => (p.summary
        ? [p.name, p.summary.params.toLocaleString('en-US'), (p.summary.flopsPerPixel / 1e6).toFixed(3),
          ref ? signedPercent(p.summary.flopsPerPixel / ref - 1) : '', String(p.summary.receptiveField), String(p.summary.window ?? '-'), p.model]
        : [p.name, 'INVALID', '', '', '', '', p.error ?? '']));
      const header = ['variant', 'params', 'MFLOP/px', 'vs first', 'field', 'window', 'spec'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
        e.expectations.map((x) => `\nexpectation not met: ${x}`).join('') + e.problems.map((x) => `\nproblem: ${x}`).join('');
    }
    case 'skip':
      return `skip   ${e.run.variant} seed ${e.run.seed}: finished earlier (${e.run.dir})`;
    case 'blocked':
      return `FAILED ${e.run.variant} seed ${e.run.seed}: ${e.error}`;
    case 'start':
      return `start  ${e.run.variant} seed ${e.run.seed} (run ${e.started + 1} of ${e.total}${e.threads ? `, ${e.threads} thread${e.threads > 1 ? 's' : ''}` : ''}` +
        `${e.resumed ? ', resuming from its checkpoint' : ''}) | ${clock(e.elapsedMs, e.etaMs)}`;
    case 'finish':
      return `done   ${e.run.variant} seed ${e.run.seed} in ${formatDuration(e.wallMs)} (${e.result.steps} steps, ` +
        `training ${formatDuration(e.result.trainingMs)}): ${Object.entries(e.result.metrics).map(([k, v]) => `${k} ${v?.toFixed(4)}`).join(', ')}` +
        ` | ${e.done}/${e.total} finished, ${clock(e.elapsedMs, e.etaMs)}`;
    case 'fail':
      return `${e.interrupted ? 'interrupted' : 'FAILED'} ${e.run.variant} seed ${e.run.seed}: ${e.error} | ${e.done}/${e.total} finished, ` +
        clock(e.elapsedMs, e.etaMs);
  }
}

export function registerStudy(program: Command): void {
  program
    .command('study')
    .description('train, evaluate and compare model variants x seeds from a study file (summary table and plots)')
    .argument('<study.json>', 'study file (see examples/studies/)')
    .option('--out <dir>', 'output folder (default runs/<study name>)')
    .option('--jobs <n>', 'runs at once, each in its own process with floor(cores / jobs) threads', positiveInt, 1)
    .option('--cores <n>', 'cores to share between the jobs (default: EMSEG_THREADS, else all)', positiveInt)
    .option('--steps <n>', 'override the budget with this many steps per run (smoke tests)', positiveInt)
    .option('--check', 'only check the data (stacks, sizes, sections) and the variants\' specs and tiles; print params, FLOPs and fields')
    .option('--in-process', 'run the jobs one at a time in this process, not in child processes (Ctrl-C then waits for the current run)')
    .option('--json', 'print the summary as JSON on stdout at the end')
    .action(async (file: string, o) => {
      const study = readStudyFile(file);
      const out = o.out ?? `runs/${study.name}`;
      const abort = new AbortController();
      const onSigint = () => {
        abort.abort();
        log('\nemseg study: stopping; no new runs start. Interrupted runs resume from their checkpoints next time (Ctrl-C again to quit now)');
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      try {
        const outcome = await runStudy(study, {
          out, jobs: o.jobs, cores: o.cores, steps: o.steps, checkOnly: o.check, fork: !o.inProcess, file,
          signal: abort.signal, onEvent: (e) => log(describe(e)),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(outcome.summary, null, 2)}\n`);
        if (o.check) {
          const invalid = outcome.plans.filter((p) => p.error).length;
          if (invalid || outcome.summary.expectations.length || outcome.problems.length) process.exitCode = 1;
          return;
        }
        const invalid = outcome.plans.filter((p) => p.error);
        log(`study ${study.name}: ${outcome.trained} run(s) trained, ${outcome.reused} reused, ${outcome.failed} without a result` +
          `${invalid.length ? `, ${invalid.length} invalid variant(s) (${invalid.map((p) => p.name).join(', ')})` : ''}; summary in ${out}/study.md`);
        if (abort.signal.aborted) process.exitCode = 130;
        else if (outcome.failed || invalid.length) process.exitCode = 1;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    });
}
