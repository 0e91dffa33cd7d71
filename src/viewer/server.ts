/**
 * The viewer's HTTP server: read-only, GET/HEAD only, a fixed set of routes. Requests name data by layer and
 * section number, never by path, so nothing but the given stacks (and the page's own bundle) can be read.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EmsegError, describeError, isEmsegError } from '../errors.js';
import type { ApiError, LayerKind } from './protocol.js';
import type { ViewModel } from './model.js';

/** The page bundle esbuild writes (see build.ts), beside the compiled server in dist/. */
export const BUNDLE_DIR = fileURLToPath(new URL('../../viewer/', import.meta.url));
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/viewer.js': 'viewer.js',
  '/viewer.css': 'viewer.css',
};
const CONTENT_TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
/**
 * Nothing inline, nothing from elsewhere; tiles are same-origin images. The one inline style allowed, by its hash,
 * is the focus-outline rule OpenSeadragon 6 injects into <head> (its exact text; a new release may change it).
 */
const OSD_STYLE_HASH = "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='";
export const CSP = `default-src 'none'; script-src 'self'; style-src 'self' ${OSD_STYLE_HASH}; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
const MAX_URL_LENGTH = 2048;
const LAYER_KINDS: readonly LayerKind[] = ['image', 'map', 'compare', 'cells', 'labels', 'errors'];

const TILE_ROUTE = /^\/api\/tile\/([a-z]+)\/(\d{1,6})\/(\d{1,2})\/(\d{1,6})\/(\d{1,6})\.png$/;
const ERRORS_ROUTE = /^\/api\/errors\/(\d{1,6})$/;

function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const [route, file] of Object.entries(ASSETS)) {
    let body: Buffer;
    try {
      body = readFileSync(`${BUNDLE_DIR}${file}`);
    } catch (err) {
      throw new EmsegError('no-bundle', `${BUNDLE_DIR}${file}`, `the viewer page is not built (${describeError(err)}); run 'npm run build:viewer' (make setup does)`);
    }
    assets.set(route, { body, type: CONTENT_TYPES[file.split('.').pop()!]! });
  }
  return assets;
}

class BadRequest extends EmsegError {}

function send(res: ServerResponse, status: number, type: string, body: Uint8Array | string, head: boolean, cache = 'no-store'): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': cache,
  });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), head);
}

function refuse(res: ServerResponse, status: number, error: string, message: string, head: boolean): void {
  sendJson(res, status, { error, message } satisfies ApiError, head);
}

function intParam(params: URLSearchParams, name: string, below: number): number {
  const raw = params.get(name);
  if (raw === null || !/^\d{1,9}$/.test(raw)) throw new BadRequest('bad-request', name, 'must be a non-negative integer');
  const v = Number(raw);
  if (v >= below) throw new BadRequest('out-of-range', name, `must be below ${below}`);
  return v;
}

export interface ViewServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts serving `model` on host:port (port 0: any free one). */
export async function startServer(model: ViewModel, host: string, port: number): Promise<ViewServer> {
  const assets = loadAssets();
  const server = createServer((req, res) => {
    handle(model, assets, req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof BadRequest) return refuse(res, 400, err.code, err.message, req.method === 'HEAD');
      // A data error (a file changed or holds values outside the polarity) is the data's fault, said plainly.
      const code = isEmsegError(err) ? err.code : 'internal';
      refuse(res, isEmsegError(err) ? 422 : 500, code, describeError(err), req.method === 'HEAD');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EmsegError('listen-failed', `${host}:${port}`, `cannot listen there (${err.code ?? describeError(err)})`, { cause: err })));
    server.listen(port, host, resolve);
  });
  void model.warmHomeView();
  const { port: bound } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    url: `http://${shown}:${bound}/`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function handle(model: ViewModel, assets: ReturnType<typeof loadAssets>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    return refuse(res, 405, 'method-not-allowed', 'the viewer is read-only: GET and HEAD only', head);
  }
  const raw = req.url ?? '';
  if (raw.length > MAX_URL_LENGTH) return refuse(res, 414, 'uri-too-long', 'request URL too long', head);
  // Routes are matched on the raw path: no decoding, so no encoded '..' or '/' can reach a route.
  if (!raw.startsWith('/')) return refuse(res, 400, 'bad-request', 'expected a path', head);
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));

  const asset = assets.get(path);
  if (asset) return send(res, 200, asset.type, asset.body, head);
  if (path === '/api/manifest') return sendJson(res, 200, model.manifest(), head);
  const { depth, width, height } = model.shape;
  const levels = model.levels;
  const tile = TILE_ROUTE.exec(path);
  if (tile) {
    const kind = tile[1] as LayerKind;
    const [z, level, x, y] = tile.slice(2).map(Number) as [number, number, number, number];
    if (!LAYER_KINDS.includes(kind) || !model.hasLayer(kind)) return refuse(res, 404, 'no-layer', `no ${kind} layer here`, head);
    if (z >= depth || level >= levels) return refuse(res, 404, 'out-of-range', 'no such section or level', head);
    const png = await model.tile(kind, z, level, x, y);
    model.prefetch(z, kind, level, x, y);
    if (!png) return refuse(res, 404, 'out-of-range', 'no such tile', head);
    return send(res, 200, 'image/png', png, head, 'private, max-age=3600');
  }
  if (path === '/api/point') {
    const z = intParam(params, 'z', depth);
    return sendJson(res, 200, await model.point(z, intParam(params, 'x', width), intParam(params, 'y', height)), head);
  }
  const errors = ERRORS_ROUTE.exec(path);
  if (errors) {
    const z = Number(errors[1]);
    if (z >= depth) return refuse(res, 404, 'out-of-range', 'no such section', head);
    const marks = model.errorMarks(z);
    return marks ? sendJson(res, 200, await marks, head) : refuse(res, 404, 'no-layer', 'no error marks: give labels and a membrane map', head);
  }
  if (path === '/api/training' || path === '/api/study') {
    const data = path === '/api/training' ? model.training() : model.study();
    return data ? sendJson(res, 200, await data, head) : refuse(res, 404, 'not-given', `no ${path.slice(5)} data was given`, head);
  }
  return refuse(res, 404, 'not-found', 'no such page', head);
}
