/**
 * Where the block queue lives: one BullMQ queue on a Redis server named by a URL (`redis://[:password@]host:port/db`,
 * `rediss://` for TLS). Loopback by default. Keys of emseg's own bookkeeping (job sets) sit beside BullMQ's under
 * KEY_PREFIX; the URL's password is never printed.
 */
import { Redis } from 'ioredis';
import { EmsegError, describeError } from '../errors.js';

/** The BullMQ queue every emseg worker takes block jobs from. */
export const QUEUE_NAME = 'emseg-blocks';
/** Prefix of emseg's keys (job-set records); BullMQ uses its own 'bull:' prefix. */
export const KEY_PREFIX = 'emseg';
/** How long a command-line client waits for the server before giving up with a clear error. */
const CONNECT_TIMEOUT_MS = 5000;

export const jobsetKey = (jobset: string) => `${KEY_PREFIX}:jobset:${jobset}`;
/** Block indices enqueued for a job set (across submits). */
export const jobsKey = (jobset: string) => `${jobsetKey(jobset)}:jobs`;
/** Block indices whose job completed. */
export const doneKey = (jobset: string) => `${jobsetKey(jobset)}:done`;
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

/** Options BullMQ workers need: a connection that retries forever (they must outlive a Redis restart). */
export function workerConnection(url: string): { url: string; maxRetriesPerRequest: null } {
  parseRedisUrl(url);
  return { url, maxRetriesPerRequest: null };
}

/**
 * A client for one-shot commands (submit, status, cancel): fails fast with `redis-unreachable` (or `redis-auth`
 * for a wrong password) instead of retrying forever.
 */
export async function connectOnce(url: string): Promise<Redis> {
  parseRedisUrl(url);
  const client = new Redis(url, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 1, retryStrategy: () => null });
  let last: unknown;
  client.on('error', (err) => { last = err; });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const message = describeError(last ?? err);
    const auth = /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message);
    throw new EmsegError(auth ? 'redis-auth' : 'redis-unreachable', safeUrl(url), `${auth ? 'Redis refused the credentials' : 'cannot reach Redis'} (${message})`);
  }
  return client;
}
