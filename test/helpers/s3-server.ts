/**
 * A real S3-compatible server for the s3 store's tests: s3rver (a devDependency, S3's REST API in Node, objects in a
 * temp folder) on a free loopback port, with one bucket created, the access key checked (`S3RVER`; s3rver 3.7.1 checks
 * the key of a V4-signed request but not its signature, so a wrong secret passes there: the tests inject the 403
 * SignatureDoesNotMatch a real store answers), and faults injected before chosen requests reach it: an S3 error status (503 SlowDown, ...) or a dropped
 * connection. Records each request's method and path. stop() closes it and removes its folder.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

/** s3rver's fixed credentials: it checks the access key id of every request (not a V4 signature, see above). */
export const S3RVER_KEY = 'S3RVER';
export const S3RVER_SECRET = 'S3RVER';

/**
 * A fault answered once: an HTTP status (with S3's XML error body, its code by ERROR_NAMES), a status with the S3
 * error code to send (`{ status: 403, code: 'SignatureDoesNotMatch' }`: what a store that checks signatures answers a
 * wrong secret, which s3rver does not), or 'reset' (the socket is destroyed).
 */
export type S3Fault = number | { status: number; code: string } | 'reset';

interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
  type: string;
  req: { socket: { destroy(): void } };
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInstance {
  middleware: Middleware[];
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

export interface S3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  bucket: string;
  /** Faults for requests whose "METHOD /bucket/key" matches, answered in order, each once, before the server's answer. */
  faults: { match: RegExp; fault: S3Fault }[];
  /** "METHOD /bucket/key" of every request, with what it got ('reset' for a dropped connection, else the status). */
  requests: { line: string; status: number | 'reset' }[];
  stop(): Promise<void>;
}

const ERROR_NAMES: Record<number, string> = { 500: 'InternalError', 503: 'SlowDown' };

/** Starts s3rver with `bucket` on 127.0.0.1 and a free port, in its own temp folder. */
export async function startS3Server(bucket = 'emseg-test'): Promise<S3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const dir = mkdtempSync(join(tmpdir(), 'emseg-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const faults: S3Server['faults'] = [];
  const requests: S3Server['requests'] = [];
  // First in the chain (Koa composes it when the server starts listening): faults answer before s3rver looks.
  server.middleware.unshift(async (ctx, next) => {
    const line = `${ctx.method} ${ctx.path}`;
    const i = faults.findIndex((f) => f.match.test(line));
    const fault = i >= 0 ? faults.splice(i, 1)[0]!.fault : undefined;
    if (fault === 'reset') {
      requests.push({ line, status: 'reset' });
      ctx.req.socket.destroy();
      return;
    }
    if (fault !== undefined) {
      const { status, code } = typeof fault === 'number' ? { status: fault, code: ERROR_NAMES[fault] ?? 'InternalError' } : fault;
      ctx.status = status;
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected</Message></Error>`;
    } else {
      await next();
    }
    requests.push({ line, status: ctx.status });
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    faults,
    requests,
    async stop() {
      await server.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An SDK client of the server (the tests' own way in, not the store under test). */
export function sdkClient(server: S3Server): S3Client {
  return new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_SECRET } });
}

/** Copies a local folder into the bucket under `prefix`, object by object. */
export async function uploadFolder(server: S3Server, dir: string, prefix: string): Promise<void> {
  const client = sdkClient(server);
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const file of walk(dir)) {
    await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}/${relative(dir, file).split('\\').join('/')}`, Body: readFileSync(file) }));
  }
  client.destroy();
}

/** Every object under `prefix` in the bucket, by key relative to it. */
export async function bucketObjects(server: S3Server, prefix: string): Promise<Map<string, Buffer>> {
  const client = sdkClient(server);
  const out = new Map<string, Buffer>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const got = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: o.Key! }));
      out.set(o.Key!.slice(prefix.length + 1), Buffer.from(await got.Body!.transformToByteArray()));
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  return out;
}
