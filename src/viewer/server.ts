/**
 * The viewer's HTTP server: read-only, GET/HEAD only, a fixed set of routes. Requests name data by layer and
 * section number, never by path, so nothing but the given stacks (and the page's own bundle) can be read. Only
 * requests for this server's own addresses (the Host header) are answered, so a web page of another site cannot
 * read the data through DNS rebinding.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, isIPv6, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EmsegError, describeError, isEmsegError, type EmsegErrorCode } from '../errors.js';
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
const ORTHO_ROUTE = /^\/api\/ortho\/([a-z]+)\/(xz|yz)\/(\d{1,6})\.png$/;
/** Cell ids are uint32 (emseg segment writes them so). */
const ID_LIMIT = 2 ** 32;

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

function refuse(res: ServerResponse, status: number, error: EmsegErrorCode, message: string, head: boolean): void {
  sendJson(res, status, { error, message } satisfies ApiError, head);
}

function intParam(params: URLSearchParams, name: string, below: number): number {
  const raw = params.get(name);
  if (raw === null || !/^\d{1,9}$/.test(raw)) throw new BadRequest('bad-request', name, 'must be a non-negative integer');
  const v = Number(raw);
  if (v >= below) throw new BadRequest('out-of-range', name, `must be below ${below}`);
  return v;
}

/** An optional integer parameter (a cell id): undefined when absent. */
function optionalId(params: URLSearchParams, name: string): number | undefined {
  return params.has(name) ? intParam(params, name, ID_LIMIT) : undefined;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
/** Bind addresses that listen on every interface: any of the machine's own addresses then reaches the server. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
const HTTP_DEFAULT_PORT = 80;
/** Characters of a refused Host header echoed back (and to the caller's notice). */
const MAX_SHOWN_HOST = 100;

const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;
const MAX_PORT = 65535;

/** A host name or address as it appears in a Host header: lower case, IPv6 literals in brackets. */
export function hostHeaderName(name: string): string {
  const n = name.trim().toLowerCase();
  return isIPv6(n) ? `[${n}]` : n;
}

/**
 * An allowed host: a DNS name or an IP address, optionally with `:port` (IPv6 in brackets then); the Host
 * header form of the name and the port (undefined: the server's). Throws naming `flag` for anything else.
 */
export function parseAllowedHost(entry: string, flag = 'allowHosts'): { name: string; port?: number } {
  const text = entry.trim();
  const m = isIP(text) ? null : /^(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(text);
  const name = (m ? m[1]! : text).replace(/^\[(.*)\]$/, '$1');
  const port = m ? Number(m[2]) : undefined;
  if (!(HOST_NAME.test(name) || isIP(name)) || (port !== undefined && (port < 1 || port > MAX_PORT))) {
    throw new EmsegError('invalid-option', flag, `expected a host name or address, optionally with :PORT (e.g. myhost.lab.org, 10.0.0.5, localhost:9000), got "${entry}"`);
  }
  return { name: hostHeaderName(name), port };
}

/**
 * The Host header values this server answers to: the bound address, the loopback names and the `allowed` hosts
 * (parseAllowedHost; without a port, the server's), and the machine's own addresses when bound to every
 * interface. DNS rebinding sends a hostile page's requests here under that page's own name, in none of these.
 */
export function allowedHostHeaders(host: string, port: number, allowed: readonly string[] = []): Set<string> {
  const names = [host, ...LOOPBACK_NAMES];
  if (WILDCARD_HOSTS.has(host)) {
    for (const addresses of Object.values(networkInterfaces())) names.push(...(addresses ?? []).map((a) => a.address.replace(/%.*$/, '')));
  }
  const out = new Set<string>();
  const add = (name: string, p: number) => {
    out.add(`${name}:${p}`);
    if (p === HTTP_DEFAULT_PORT) out.add(name); // a browser leaves the default port out
  };
  for (const name of names) add(hostHeaderName(name), port);
  for (const entry of allowed) {
    const a = parseAllowedHost(entry);
    add(a.name, a.port ?? port);
  }
  return out;
}

export interface ServerOptions {
  /** More names (or name:port) the server answers to (`emseg view --allow-host`). */
  allowHosts?: readonly string[];
  /** Told the Host header of each refused request (e.g. to say on stderr how to allow it). */
  onRefusedHost?: (host: string) => void;
}

/** Plain text, no data: the answer to a request for a host this server is not. */
function refuseHost(res: ServerResponse, shown: string, head: boolean): void {
  const text = `refused: this emseg viewer does not answer to the host '${shown}'; to allow it, start emseg view with --allow-host ${shown || 'NAME'}\n`;
  send(res, 403, 'text/plain; charset=utf-8', text, head);
}

export interface ViewServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts serving `model` on host:port (port 0: any free one). */
export async function startServer(model: ViewModel, host: string, port: number, options: ServerOptions = {}): Promise<ViewServer> {
  const assets = loadAssets();
  let hosts = new Set<string>(); // set once listening (the port may be chosen then); until then every request is refused
  const server = createServer((req, res) => {
    const asked = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(asked)) {
      const shown = asked.replace(/[^\x21-\x7e]/g, '?').slice(0, MAX_SHOWN_HOST);
      options.onRefusedHost?.(shown);
      return refuseHost(res, shown, req.method === 'HEAD');
    }
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
  hosts = allowedHostHeaders(host, bound, options.allowHosts);
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
    const highlight = optionalId(params, 'highlight');
    const png = await model.tile(kind, z, level, x, y, highlight);
    model.prefetch(z, kind, level, x, y, highlight);
    if (!png) return refuse(res, 404, 'out-of-range', 'no such tile', head);
    return send(res, 200, 'image/png', png, head, 'private, max-age=3600');
  }
  const ortho = ORTHO_ROUTE.exec(path);
  if (ortho) {
    const kind = ortho[1] as LayerKind;
    const axis = ortho[2] as 'xz' | 'yz';
    const at = Number(ortho[3]);
    if (!LAYER_KINDS.includes(kind) || !model.hasOrtho(kind)) return refuse(res, 404, 'no-layer', `no ${kind} layer with orthogonal views here`, head);
    if (at >= (axis === 'xz' ? height : width)) return refuse(res, 404, 'out-of-range', `no such ${axis === 'xz' ? 'row' : 'column'}`, head);
    return send(res, 200, 'image/png', await model.ortho(kind, axis, at, optionalId(params, 'highlight')), head, 'private, max-age=3600');
  }
  if (path === '/api/neuron') {
    const info = model.neuron(intParam(params, 'id', ID_LIMIT));
    return info ? sendJson(res, 200, await info, head) : refuse(res, 404, 'no-layer', 'no cells layer here', head);
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
