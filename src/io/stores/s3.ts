/**
 * Volumes in object storage at `s3://bucket/prefix`, through the AWS SDK v3 S3 client: AWS S3 and S3-compatible
 * stores (MinIO, Ceph, Google Cloud Storage's interoperability API, ...). Credentials come from the SDK's standard
 * chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance roles); the region from
 * AWS_REGION (or the profile); the endpoint from `--s3-endpoint` (configureS3), else AWS_ENDPOINT_URL_S3, else
 * AWS_ENDPOINT_URL, else AWS's own. A custom endpoint is addressed path-style (`http://host/bucket/key`), which every
 * S3-compatible store serves.
 *
 * The store's rules: an object is written whole by one PUT (a reader sees the old object or the new one, never part
 * of one), so no temporary name is needed; there are no folders, only keys, so "a folder" is a prefix some key
 * starts with. Every request is retried with backoff on throttling (503 SlowDown, 429), server errors and dropped
 * connections (S3_RETRY), and at most S3_MAX_IN_FLIGHT requests are in flight per process.
 */
import {
  DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { EmsegIoError, describe } from '../errors.js';
import { MAX_CHUNK_BYTES } from '../limits.js';
import type { ByteRange } from './http.js';
import { joinS3, parseS3Url, s3Url } from './s3-url.js';

/** Attempts of one request, and the backoff between them, for answers a later try may not get (as HTTP_RETRY). */
export const S3_RETRY = Object.freeze({ attempts: 5, firstDelayMs: 200, maxDelayMs: 5000 });
/** One attempt (headers and body) gives up after this long: a store that stops answering must not hang a run. */
export const S3_TIMEOUT_MS = 60_000;
/** Requests in flight at once from one process: enough to keep a store busy, few enough not to be throttled. */
export const S3_MAX_IN_FLIGHT = 32;
/** Keys one DeleteObjects request removes (the S3 API's limit). */
const DELETE_BATCH = 1000;
/** Region for a custom endpoint when none is configured: S3-compatible stores accept any, the signature needs one. */
const DEFAULT_REGION = 'us-east-1';

const HTTP_NOT_FOUND = 404;
const AUTH_STATUSES: ReadonlySet<number> = new Set([401, 403]);
/** Statuses that say "try again later": throttled, server errors, a gateway that lost its upstream. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);
/** S3 error names of throttling and transient server trouble (some stores send them with other statuses). */
const RETRY_NAMES: ReadonlySet<string> = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout',
  'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'TimeoutError', 'RequestTimeoutException']);
/** S3 error names of credentials the store does not accept. */
const AUTH_NAMES: ReadonlySet<string> = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'CredentialsProviderError',
  'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);

export { isS3Url, joinS3, parentS3, parseS3Url, s3Name, s3Url, type S3Location } from './s3-url.js';

// ---- the client ----

let endpointFlag: string | undefined;
let client: S3Client | undefined;

/** The endpoint `--s3-endpoint` gave (it wins over the environment); undefined goes back to the environment. */
export function configureS3(options: { endpoint?: string }): void {
  if (options.endpoint !== undefined) {
    try {
      new URL(options.endpoint);
    } catch (err) {
      throw new EmsegIoError('invalid-option', '--s3-endpoint', `"${options.endpoint}" is not a URL (e.g. http://127.0.0.1:9000)`, { cause: err });
    }
  }
  endpointFlag = options.endpoint;
  client?.destroy();
  client = undefined;
}

function clientConfig(): S3ClientConfig {
  const endpoint = endpointFlag ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (endpoint ? DEFAULT_REGION : undefined);
  return {
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
    maxAttempts: 1, // retries are this module's (withRetry): they also cover a body cut off mid-read
    requestHandler: { maxSockets: S3_MAX_IN_FLIGHT, requestTimeout: S3_TIMEOUT_MS, connectionTimeout: S3_TIMEOUT_MS },
    // Checksums only where the API requires them: S3-compatible stores differ in the newer checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/** The SDK's own switch for its Node version notice (@aws-sdk/core, emitWarningIfUnsupportedVersion). */
const SDK_NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Builds the client without the SDK's Node version notice. On Node < 22 the SDK's first client prints a process
 * warning on stderr ("NodeVersionSupportWarning: ... versions published after the first week of January 2027 will
 * require node >=22"). emseg supports Node >= 20 (package.json engines) with the SDK version its lockfile installs,
 * so that notice would only alarm users on Node 20 at every s3:// command. The SDK checks its switch in the client's
 * constructor and then marks the check done for the process (nested clients included), so the switch is set only
 * while the client is built: no other warning is hidden, and the environment of processes emseg starts is unchanged.
 */
function withoutNodeVersionNotice<T>(make: () => T): T {
  const before = process.env[SDK_NODE_WARNING_SWITCH];
  process.env[SDK_NODE_WARNING_SWITCH] = 'true';
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env[SDK_NODE_WARNING_SWITCH];
    else process.env[SDK_NODE_WARNING_SWITCH] = before;
  }
}

function s3Client(): S3Client {
  client ??= withoutNodeVersionNotice(() => new S3Client(clientConfig()));
  return client;
}

// ---- requests: bounded, retried, errors mapped ----

let inFlight = 0;
const waiting: (() => void)[] = [];

/** Runs `op` once fewer than S3_MAX_IN_FLIGHT requests are in flight (a request that ends hands its slot to the next). */
async function limited<T>(op: () => Promise<T>): Promise<T> {
  if (inFlight < S3_MAX_IN_FLIGHT) inFlight++;
  else await new Promise<void>((r) => waiting.push(r));
  try {
    return await op();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  }
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const statusOf = (err: unknown): number | undefined => (err as SdkError)?.$metadata?.httpStatusCode;

/** Is this the store's "no such key" (GET: NoSuchKey; HEAD: a bare 404)? */
function isNotFound(err: unknown): boolean {
  const e = err as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (statusOf(err) === HTTP_NOT_FOUND && e?.name !== 'NoSuchBucket');
}

function isRetryable(err: unknown): boolean {
  const e = err as SdkError;
  const status = statusOf(err);
  if (status !== undefined) return RETRY_STATUSES.has(status) || RETRY_NAMES.has(e.name ?? '');
  // No answer at all: a reset, a refused or timed-out connection, a body cut off mid-read.
  return !AUTH_NAMES.has(e?.name ?? '') && !(err instanceof EmsegIoError);
}

/** The error a request ends with once it is not retried (again): auth, a missing bucket, or what the store said. */
function finalError(err: unknown, url: string, bucket: string, attempts: number): EmsegIoError {
  if (err instanceof EmsegIoError) return err;
  const e = err as SdkError;
  const status = statusOf(err);
  const said = `${e?.name ?? 'error'}${status !== undefined ? ` (HTTP ${status})` : ''}: ${describe(err)}`;
  if (e?.name === 'NoSuchBucket') return new EmsegIoError('no-bucket', `s3://${bucket}`, `the store has no bucket "${bucket}" (${url}); create it, or check the bucket name and the endpoint`, { cause: err });
  if (AUTH_NAMES.has(e?.name ?? '') || (status !== undefined && AUTH_STATUSES.has(status))) {
    return new EmsegIoError('s3-auth', url, `the store refused the credentials or their permissions (${said}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE, the endpoint and the bucket's policy`, { cause: err });
  }
  const tried = attempts > 1 ? ` after ${attempts} attempts` : '';
  return new EmsegIoError('s3-failed', url, `the S3 request failed${tried}: ${said}`, { cause: err });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt: number) => Math.min(S3_RETRY.maxDelayMs, S3_RETRY.firstDelayMs * 2 ** (attempt - 1));

/**
 * Runs request `op` (bounded in flight), retrying what a later try may fix (S3_RETRY); a missing key is `undefined`
 * when `missing` allows it; every other failure is an EmsegIoError naming `url`.
 */
async function request<T>(url: string, bucket: string, op: (c: S3Client) => Promise<T>, missing: boolean): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await limited(() => op(s3Client()));
    } catch (err) {
      if (missing && isNotFound(err)) return undefined;
      if (!isRetryable(err) || attempt >= S3_RETRY.attempts) throw finalError(err, url, bucket, attempt);
      await sleep(backoff(attempt));
    }
  }
}

/** The whole body, refused beyond MAX_CHUNK_BYTES (the largest chunk or metadata file emseg reads). */
async function body(response: { Body?: { transformToByteArray(): Promise<Uint8Array> }; ContentLength?: number }, url: string): Promise<Uint8Array> {
  if ((response.ContentLength ?? 0) > MAX_CHUNK_BYTES) {
    throw new EmsegIoError('too-large', url, `the object is ${response.ContentLength} bytes, more than ${MAX_CHUNK_BYTES}; not a Zarr chunk or metadata file emseg reads`);
  }
  return response.Body ? response.Body.transformToByteArray() : new Uint8Array(0);
}

function rangeHeader(range: ByteRange | undefined): string | undefined {
  if (!range) return undefined;
  return 'suffixLength' in range ? `bytes=-${range.suffixLength}` : `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

// ---- the operations the store offers ----

/** The object's bytes (or part of them), or undefined when there is none. The body is read inside the retries. */
export function s3Get(url: string, range?: ByteRange): Promise<Uint8Array | undefined> {
  const { bucket, key } = parseS3Url(url);
  return request(url, bucket, async (c) => body(await c.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: rangeHeader(range) })), url), true);
}

/** Buckets known to exist (a HEAD of a missing key cannot tell a missing bucket from a missing key). */
const bucketsSeen = new Set<string>();

async function checkBucket(url: string, bucket: string): Promise<void> {
  if (bucketsSeen.has(bucket)) return;
  const found = await request(url, bucket, (c) => c.send(new HeadBucketCommand({ Bucket: bucket })), true);
  if (found === undefined) throw new EmsegIoError('no-bucket', `s3://${bucket}`, `the store has no bucket "${bucket}" (${url}); create it, or check the bucket name and the endpoint`);
  bucketsSeen.add(bucket);
}

/** Is there an object at `url`? A missing bucket is refused ('no-bucket'), not answered false. */
export async function s3Exists(url: string): Promise<boolean> {
  const { bucket, key } = parseS3Url(url);
  const found = await request(url, bucket, (c) => c.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), true);
  if (found !== undefined) return true;
  await checkBucket(url, bucket);
  return false;
}

/** Size of the object at `url`, or undefined when there is none. */
export async function s3Size(url: string): Promise<number | undefined> {
  const { bucket, key } = parseS3Url(url);
  const head = await request(url, bucket, (c) => c.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), true);
  return head?.ContentLength;
}

/** Writes the object whole (one PUT: readers see the old object or this one, never a part). */
export async function s3Put(url: string, bytes: Uint8Array): Promise<void> {
  const { bucket, key } = parseS3Url(url);
  await request(url, bucket, (c) => c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length })), false);
}

/**
 * Keys under the prefix `url` (as '/'-relative names: 'a/b/c'), page by page; with `delimiter`, only the level
 * just below (keys and the next "folders", which end in '/').
 */
export async function s3List(url: string, delimiter = false, limit = Infinity): Promise<string[]> {
  const { bucket, key } = parseS3Url(url);
  const prefix = key ? `${key}/` : '';
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await request(url, bucket, (c) => c.send(new ListObjectsV2Command({
      Bucket: bucket, Prefix: prefix, ContinuationToken: token, ...(delimiter ? { Delimiter: '/' } : {}),
    })), false);
    for (const o of page?.Contents ?? []) if (o.Key) names.push(o.Key.slice(prefix.length));
    for (const p of page?.CommonPrefixes ?? []) if (p.Prefix) names.push(p.Prefix.slice(prefix.length));
    token = page?.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined && names.length < limit);
  return names;
}

/** Deletes the objects at `urls` (all in one bucket), DELETE_BATCH per request. */
export async function s3Delete(urls: readonly string[]): Promise<void> {
  for (let i = 0; i < urls.length; i += DELETE_BATCH) {
    const batch = urls.slice(i, i + DELETE_BATCH).map(parseS3Url);
    const bucket = batch[0]!.bucket;
    const out = await request(urls[i]!, bucket, (c) => c.send(new DeleteObjectsCommand({
      Bucket: bucket, Delete: { Objects: batch.map((l) => ({ Key: l.key })), Quiet: true },
    })), false);
    const failed = out?.Errors?.[0];
    if (failed) throw finalError({ name: failed.Code, message: failed.Message }, s3Url({ bucket, key: failed.Key ?? '' }), bucket, 1);
  }
}

/** A zarrita readable store rooted at `root` (keys like '/0/.zarray'). */
export class S3ZarrStore {
  set(key: `/${string}`, value: Uint8Array): Promise<void> {
    return s3Put(joinS3(this.root, key), value);
  }

  constructor(readonly root: string) {}

  get(key: `/${string}`): Promise<Uint8Array | undefined> {
    return s3Get(joinS3(this.root, key));
  }

  getRange(key: `/${string}`, range: ByteRange): Promise<Uint8Array | undefined> {
    return s3Get(joinS3(this.root, key), range);
  }
}
