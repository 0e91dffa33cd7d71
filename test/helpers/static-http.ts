/**
 * A static HTTP server for tests of the http store: serves a folder on a free loopback port, with HEAD, Range
 * (`bytes=a-b`, `bytes=a-`, `bytes=-n`) and 404s, and answers injected faults (a status, or a dropped connection)
 * for chosen paths before serving them normally. Records each request's path, Range and Authorization.
 */
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

/** A fault answered once: an HTTP status, or 'reset' (the socket is destroyed before any answer). */
export type Fault = number | 'reset';

export interface StaticServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  /** Faults by request path ('/raw.zarr/0/0/0/0'), answered in order before the file is served. */
  faults: Map<string, Fault[]>;
  /** Paths served or refused so far, in order, with their Range and Authorization headers. */
  requests: { method: string; path: string; range?: string; authorization?: string; status: number | 'reset' }[];
  close(): Promise<void>;
}

const PARTIAL = 206;
const NOT_SATISFIABLE = 416;

/** [start, end) of a Range header over `size` bytes, or undefined when unsatisfiable. */
function parseRange(header: string, size: number): [number, number] | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return [Math.max(0, size - Number(m[2])), size];
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  return start < end ? [start, end] : undefined;
}

export async function startStaticServer(root: string): Promise<StaticServer> {
  const faults = new Map<string, Fault[]>();
  const requests: StaticServer['requests'] = [];
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry = { method: req.method ?? 'GET', path, range: req.headers.range, authorization: req.headers.authorization };
    const fault = faults.get(path)?.shift();
    if (fault === 'reset') {
      requests.push({ ...entry, status: 'reset' });
      req.socket.destroy();
      return;
    }
    const send = (status: number, body?: Uint8Array, headers: Record<string, string | number> = {}) => {
      requests.push({ ...entry, status });
      res.writeHead(status, { 'Content-Length': body?.length ?? 0, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (fault !== undefined) return send(fault);
    const file = join(root, normalize(path));
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return send(404);
    const bytes = new Uint8Array(await readFile(file));
    if (!req.headers.range) return send(200, bytes);
    const range = parseRange(req.headers.range, bytes.length);
    if (!range) return send(NOT_SATISFIABLE, undefined, { 'Content-Range': `bytes */${bytes.length}` });
    send(PARTIAL, bytes.subarray(range[0], range[1]), { 'Content-Range': `bytes ${range[0]}-${range[1] - 1}/${bytes.length}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    faults,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
