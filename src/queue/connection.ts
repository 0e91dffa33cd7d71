/**
 * Where the block queue lives: one BullMQ queue on a Redis server named by a URL (`redis://[:password@]host:port/db`,
 * `rediss://` for TLS). Loopback by default. Keys of emseg's own bookkeeping (job sets) sit beside BullMQ's under
 * KEY_PREFIX; the URL's password is never printed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { EmsegError, describeError } from '../errors.js';

/** The BullMQ queue every emseg worker takes block jobs from. */
export const QUEUE_NAME = 'emseg-blocks';
/** Prefix of emseg's keys (job-set records); BullMQ uses its own 'bull:' prefix. */
export const KEY_PREFIX = 'emseg';
/** How long a command-line client waits for the server before giving up with a clear error. */
const CONNECT_TIMEOUT_MS = 5000;

export const jobsetKey = (jobset: string) => `${KEY_PREFIX}:jobset:${jobset}`;
/** Block indices of a task enqueued for a job set (across submits). */
export const jobsKey = (jobset: string, task: string) => `${jobsetKey(jobset)}:${task}:jobs`;
/** Block indices of a task whose job completed. */
export const doneKey = (jobset: string, task: string) => `${jobsetKey(jobset)}:${task}:done`;
export const JOBSETS_KEY = `${KEY_PREFIX}:jobsets`;

/** Checks the URL's form; refuses other schemes with the flag named. */
export function parseRedisUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EmsegError('invalid-option', '--redis', `is not a URL: expected redis://[:password@]host:port[/db], got "${url}"`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new EmsegError('invalid-option', '--redis', `must start with redis:// (or rediss:// for TLS), got "${u.protocol}//"`);
  }
  return u;
}

/** The URL without its password, for logs and errors. */
export function safeUrl(url: string): string {
  const u = parseRedisUrl(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/**
 * Connecting (a command-line client, a starting worker): attempts, and the backoff between them, before Redis is
 * reported unreachable: about 2 s of waiting in all, so a Redis that is just starting is waited for, a wrong port
 * is not. A wrong password is never retried.
 */
export const REDIS_CONNECT_RETRY = Object.freeze({ attempts: 4, firstDelayMs: 250, maxDelayMs: 1000 });
/** Backoff of a running worker's reconnects after it lost Redis: from the first delay, doubled, capped. */
export const REDIS_RECONNECT_BACKOFF = Object.freeze({ firstDelayMs: 250, maxDelayMs: 5000 });

/** The delay before reconnect attempt `attempt` (1-based): doubling from `firstDelayMs`, capped at `maxDelayMs`. */
export function backoffDelay(attempt: number, b: { firstDelayMs: number; maxDelayMs: number }): number {
  return Math.min(b.firstDelayMs * 2 ** (attempt - 1), b.maxDelayMs);
}

/** What a worker's connections tell it: a new outage began (the first reconnect); the outage budget is spent. */
export interface OutageHooks {
  outage?: () => void;
  giveUp: () => void;
}

/**
 * An ioredis retryStrategy that reconnects with backoff while the delays waited since the connection was lost
 * stay within `budgetMs`, then gives up: returns null (ioredis stops reconnecting) after calling `giveUp`. ioredis
 * numbers the attempts from 1 again after each successful reconnect, so the budget is per outage.
 */
export function boundedReconnect(budgetMs: number, hooks: OutageHooks): (times: number) => number | null {
  return (times) => {
    if (times === 1) hooks.outage?.();
    let waited = 0;
    for (let k = 1; k < times; k++) waited += backoffDelay(k, REDIS_RECONNECT_BACKOFF);
    if (waited >= budgetMs) {
      hooks.giveUp();
      return null;
    }
    return Math.min(backoffDelay(times, REDIS_RECONNECT_BACKOFF), budgetMs - waited);
  };
}

/** A refusal of the credentials (wrong password or user, a password missing): retrying cannot help. */
export function isAuthError(err: unknown): boolean {
  return /NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(describeError(err));
}

/**
 * Options of the connections a BullMQ worker opens (its own and the blocking one): commands wait for a lost
 * connection (maxRetriesPerRequest null, as BullMQ requires) while it reconnects within `outageMs`; then giveUp.
 */
export function workerConnection(url: string, outageMs: number, hooks: OutageHooks) {
  parseRedisUrl(url);
  return { url, maxRetriesPerRequest: null, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy: boundedReconnect(outageMs, hooks) };
}

/** The error of a Redis that could not be used: `redis-auth` for refused credentials, else `redis-unreachable`. */
export function redisError(url: string, err: unknown, what: string): EmsegError {
  const message = describeError(err).replace(/\.$/, '');
  if (isAuthError(err)) return new EmsegError('redis-auth', safeUrl(url), `Redis refused the credentials (${message}); check the password in the URL`);
  return new EmsegError('redis-unreachable', safeUrl(url), `${what} (${message})`);
}

/**
 * A client for one-shot commands (submit, status, cancel) and a worker's first contact: connects with a short
 * bounded retry (REDIS_CONNECT_RETRY) instead of retrying forever; a wrong password fails at once (`redis-auth`),
 * a Redis that never answers with `redis-unreachable`, naming the URL without its password.
 */
export async function connectOnce(url: string): Promise<Redis> {
  parseRedisUrl(url);
  const { attempts } = REDIS_CONNECT_RETRY;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const client = new Redis(url, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 1, retryStrategy: () => null });
    let last: unknown;
    client.on('error', (err) => { last = err; });
    try {
      await client.connect();
      await client.ping();
      return client;
    } catch (err) {
      client.disconnect();
      const cause = last ?? err;
      if (isAuthError(cause) || attempt >= attempts) {
        throw redisError(url, cause, `cannot reach Redis: ${attempt} attempt(s) over ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    }
    await sleep(backoffDelay(attempt, REDIS_CONNECT_RETRY));
  }
}
