/**
 * Reading over http(s):// — the first store that is not the local file system. Read-only: a static web server (or
 * an object store's public HTTP interface) serves a Zarr image's metadata and chunk files as plain GETs, with
 * Range requests for parts of a shard.
 *
 * Written on fetch rather than @zarrita/storage's FetchStore, which (0.2) reads the body outside its fetch hook (a
 * connection reset mid-body cannot be retried there), throws a plain Error for other statuses, and builds a Request
 * from the URL as given, which Node's fetch refuses when the URL carries user:password.
 */
import { EmsegIoError, describe } from '../errors.js';
import { MAX_CHUNK_BYTES } from '../limits.js';

/** Attempts of one request, and the backoff between them, for answers a later try may not get (429, 5xx gateways, resets). */
export const HTTP_RETRY = Object.freeze({ attempts: 5, firstDelayMs: 200, maxDelayMs: 5000 });
/** One attempt (headers and body) gives up after this long: a server that stops answering must not hang a run. */
export const HTTP_TIMEOUT_MS = 60_000;
/** Statuses that say "try again later": throttled (429), overloaded or a gateway that lost its upstream. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
const NOT_FOUND = 404;
/** Answers of a server that does not implement HEAD (Method Not Allowed, Not Implemented). */
const NO_HEAD: ReadonlySet<number> = new Set([405, 501]);
const HTTP_OK = 200;
const PARTIAL = 206;

export const isHttpUrl = (path: string): boolean => /^https?:\/\//i.test(path);

/** The URL without user:password, as messages and metadata name it (like the queue's safeUrl). */
export function safeHttpUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/** Basic credentials by origin, taken from the URLs the user gave (user:password@): fetch refuses a URL that carries them. */
const CREDENTIALS = new Map<string, string>();

/**
 * The URL emseg works with from here on: without user:password, which are kept aside (by origin) and sent as a Basic
 * Authorization header, so that no message, record or metadata can show them.
 */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  if (u.username || u.password) {
    const pair = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    CREDENTIALS.set(u.origin, `Basic ${Buffer.from(pair).toString('base64')}`);
  }
  return safeHttpUrl(url);
}

function authorization(url: string): Record<string, string> {
  const header = CREDENTIALS.get(new URL(url).origin);
  return header === undefined ? {} : { Authorization: header };
}

export type ByteRange = { offset: number; length: number } | { suffixLength: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long to wait before attempt `attempt + 1`: the server's Retry-After when it gives one in seconds, else doubling. */
function backoff(attempt: number, retryAfter: string | null): number {
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  const doubled = HTTP_RETRY.firstDelayMs * 2 ** (attempt - 1);
  return Math.min(HTTP_RETRY.maxDelayMs, Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : doubled);
}

function rangeHeader(range: ByteRange | undefined): Record<string, string> {
  if (!range) return {};
  return 'suffixLength' in range ? { Range: `bytes=-${range.suffixLength}` } : { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` };
}

/** The part of a whole body (a server that ignores Range answers 200 with everything) that `range` asked for. */
function slice(bytes: Uint8Array, range: ByteRange | undefined): Uint8Array {
  if (!range) return bytes;
  if ('suffixLength' in range) return bytes.subarray(Math.max(0, bytes.length - range.suffixLength));
  return bytes.subarray(range.offset, range.offset + range.length);
}

/**
 * The body, read up to MAX_CHUNK_BYTES (the largest chunk file emseg reads): a server that sends more, with or
 * without a Content-Length, is refused before memory follows it.
 */
async function readBody(response: Response, url: string): Promise<Uint8Array> {
  const tooLarge = () => new EmsegIoError('too-large', url, `the server sends more than ${MAX_CHUNK_BYTES} bytes for one file; not a Zarr chunk or metadata file emseg reads`);
  if (Number(response.headers.get('content-length') ?? 0) > MAX_CHUNK_BYTES) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of response.body ?? []) {
    size += (part as Uint8Array).length;
    if (size > MAX_CHUNK_BYTES) throw tooLarge();
    parts.push(part as Uint8Array);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function statusError(url: string, status: number, statusText: string, attempts: number): EmsegIoError {
  const tried = attempts > 1 ? ` after ${attempts} attempts` : '';
  const what = `the server answered HTTP ${status}${statusText ? ` ${statusText}` : ''}${tried}`;
  if (status === 401 || status === 403) return new EmsegIoError('permission', url, `${what}: not allowed to read it; check the URL's credentials or the server's permissions`);
  return new EmsegIoError('http-failed', url, what);
}

/**
 * GET (or HEAD) `url`: its bytes, or undefined when the server answers 404. Retries throttling, gateway errors,
 * timeouts and dropped connections (HTTP_RETRY); any other answer is an EmsegIoError naming the URL (without
 * credentials) and the status.
 */
export async function httpGet(url: string, range?: ByteRange, method: 'GET' | 'HEAD' = 'GET'): Promise<Uint8Array | undefined> {
  const shown = safeHttpUrl(url);
  const headers = { ...authorization(shown), ...rangeHeader(range) };
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= HTTP_RETRY.attempts;
    let response: Response;
    let body: Uint8Array;
    try {
      response = await fetch(shown, { method, headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), redirect: 'follow' });
      body = method === 'HEAD' ? new Uint8Array(0) : await readBody(response, shown);
    } catch (err) {
      if (err instanceof EmsegIoError) throw err;
      if (last) throw new EmsegIoError('http-failed', shown, `reading over HTTP failed after ${attempt} attempts: ${describe((err as { cause?: unknown }).cause ?? err)}`, { cause: err });
      await sleep(backoff(attempt, null));
      continue;
    }
    if (response.status === NOT_FOUND) return undefined;
    if (response.status === PARTIAL) return body;
    if (response.status === HTTP_OK) return slice(body, range);
    // A server without HEAD: the same question by GET (metadata files are small).
    if (method === 'HEAD' && NO_HEAD.has(response.status)) return httpGet(url, range, 'GET');
    if (!RETRY_STATUSES.has(response.status) || last) throw statusError(shown, response.status, response.statusText, attempt);
    await sleep(backoff(attempt, response.headers.get('retry-after')));
  }
}

/** Does the server have `url` (HEAD)? */
export async function httpExists(url: string): Promise<boolean> {
  return (await httpGet(url, undefined, 'HEAD')) !== undefined;
}

/**
 * `url` with `parts` appended to its path (query kept): `http://h/vol.zarr` + '0', '.zarray'. Parts are names as
 * on disk ('/'-separated), encoded here, so a file named `a%2Fb.crc32` is asked for as that name.
 */
export function joinUrl(url: string, ...parts: string[]): string {
  const u = new URL(url);
  const segments = [...u.pathname.split('/'), ...parts.flatMap((p) => p.split('/')).map((p) => (p === '..' || p === '.' ? p : encodeURIComponent(p)))];
  const out: string[] = [];
  for (const s of segments) {
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  u.pathname = `/${out.join('/')}`;
  return u.toString();
}

/** The URL of the folder that holds `url` (`http://h/vol.zarr/0` -> `http://h/vol.zarr`). */
export function parentUrl(url: string): string {
  return joinUrl(url, '..');
}

/** Last segment of the URL's path, decoded (`http://h/vol.zarr/0` -> '0'). */
export function urlName(url: string): string {
  const segments = new URL(url).pathname.split('/').filter((s) => s !== '');
  return decodeURIComponent(segments.at(-1) ?? '');
}

/** A zarrita readable store rooted at `root` (keys like '/0/.zarray'); read-only. */
export class HttpStore {
  constructor(readonly root: string) {}

  get(key: `/${string}`): Promise<Uint8Array | undefined> {
    return httpGet(joinUrl(this.root, key));
  }

  getRange(key: `/${string}`, range: ByteRange): Promise<Uint8Array | undefined> {
    return httpGet(joinUrl(this.root, key), range);
  }
}
