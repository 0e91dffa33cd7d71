/**
 * A private, real `redis-server` for the queue tests and the queue benchmark: started on a free loopback port in
 * a temp folder, answered PING before it is handed out, and stopped (SIGTERM, so an append-only file is flushed)
 * by stop() or when the test process exits. Never a mock: the tests exercise BullMQ's Lua scripts for real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { EmsegError } from '../../src/errors.js';

export const REDIS_SERVER = '/usr/bin/redis-server';
const START_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

export interface RedisServerOptions {
  /** Append-only persistence (survives a restart). */
  appendonly?: boolean;
  password?: string;
  /** Reuse this folder and port (a restart of the same server). */
  dir?: string;
  port?: number;
}

export interface RedisServer {
  port: number;
  dir: string;
  url: string;
  stop(): Promise<void>;
  /** Stops the server (flushing its append-only file) and starts it again on the same port and folder. */
  restart(downMs?: number): Promise<void>;
}

/** A free loopback port (bound then released; the window for a race is tiny on a test machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => live.forEach((p) => p.kill('SIGKILL')));

async function waitForPing(port: number, password: string | undefined, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new EmsegError('redis-unreachable', REDIS_SERVER, `exited with ${proc.exitCode} (log: the --dir folder's redis.log)`);
    const client = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    await sleep(POLL_MS);
  }
  throw new EmsegError('redis-unreachable', REDIS_SERVER, `on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms`);
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'emseg-redis-'));
  const port = options.port ?? await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', options.appendonly ? 'yes' : 'no', '--logfile', join(dir, 'redis.log')];
  if (options.password) args.push('--requirepass', options.password);
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    live.add(proc);
    await waitForPing(port, options.password, proc);
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((res) => p.once('exit', res));
    p.kill('SIGTERM');
    await exited;
    live.delete(p);
  };
  await launch();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    port,
    dir,
    url: `redis://${auth}127.0.0.1:${port}`,
    stop,
    async restart(downMs = 0) {
      await stop();
      await sleep(downMs);
      await launch();
    },
  };
}
