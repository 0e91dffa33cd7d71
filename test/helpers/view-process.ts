/**
 * `emseg view ARGS` as a user starts it: a child process on a free loopback port (--port 0), its URL read from the
 * line it prints, stopped with Ctrl-C (SIGINT) as a user stops it. GETs answer the body and status.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT } from './data.js';

/** Time the viewer may take to open its inputs and listen (a slow shared machine, reads from a store). */
const START_TIMEOUT_MS = 120_000;

export interface ViewProcess {
  url: string;
  stderr(): string;
  get(path: string): Promise<{ status: number; body: Buffer }>;
  stop(): Promise<void>;
}

/** GET `path` of the server at `url`. */
export function httpGet(url: string, path: string): Promise<{ status: number; body: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    request({ host: hostname, port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    }).on('error', reject).end();
  });
}

/** Starts `emseg view ARGS --port 0`; rejects with its stderr when it exits (or stays silent) instead of serving. */
export function startView(args: string[], env: Record<string, string> = {}): Promise<ViewProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/emseg.js'), 'view', ...args, '--port', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => void stop().then(() => reject(new Error(`emseg view did not start: ${stderr}`))), START_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const url = /emseg view: (http:\/\/\S+\/)/.exec(stdout)?.[1];
      if (!url) return;
      clearTimeout(timer);
      resolve({ url, stderr: () => stderr, get: (path) => httpGet(url, path), stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emseg view exited (${code}): ${stderr}`));
    });
  });
}
