/**
 * Child process for one study run: receives a RunTask over IPC, trains and evaluates it with its share of the
 * cores (task.threads), reports the result and exits. Started by `child_process.fork` from ./study.ts.
 *
 * No SIGINT handler on purpose: training is synchronous, so a handler would only run after the whole run; with
 * the default action Ctrl-C ends the child at once and the run resumes from its last checkpoint next time.
 */
import { executeRun, type RunResult, type RunTask } from './run.js';

export type ToWorker = { type: 'run'; task: RunTask };
export type FromWorker = { type: 'done'; result: RunResult } | { type: 'failed'; error: string };

function send(m: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(m, undefined, {}, () => resolve());
  });
}

process.once('message', (m: ToWorker) => {
  if (m.type !== 'run') return;
  executeRun(m.task).then(
    (result) => send({ type: 'done', result }),
    (err: unknown) => send({ type: 'failed', error: err instanceof Error ? err.message : String(err) }),
  ).finally(() => {
    process.disconnect?.();
    // Nothing should keep the process alive now; make sure of it (the parent waits for the exit).
    setTimeout(() => process.exit(0), 2000).unref();
  });
});
