import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

/** Content types of what `vite build` writes, plus the usual static files. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Vite names built assets `name-HASH.ext` under assets/: their content never changes under a name. */
const HASHED = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$/;
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * The page carries the API token in its address on first load: no referrer may leak it, and the
 * page loads nothing but its own files.
 */
const PAGE_HEADERS: Record<string, string> = {
  'cache-control': 'no-cache',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

const MAX_FILE_BYTES = 16 * 1024 * 1024;

interface Cached {
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
}

/**
 * Serves the built dashboard (dist/web) from `root`. Resolves `true` when it answered the request,
 * `false` when the request is not its business (not GET/HEAD, or under /api/) so the caller can
 * answer it. `/` and unknown paths get index.html (the dashboard routes in the hash, but a deep link
 * must still load the page); a missing file under /assets/ is a 404, never the page, so a stale
 * script tag fails loudly instead of parsing HTML as JavaScript. Paths are decoded once, resolved
 * against the root and checked to stay inside it, symlinks included.
 */
export function serveStatic(root: string): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const absRoot = resolve(root);
  let realRoot: string | undefined;
  const cache = new Map<string, Cached>();

  async function rootReal(): Promise<string | undefined> {
    if (realRoot !== undefined) return realRoot;
    try {
      realRoot = await realpath(absRoot);
    } catch {
      return undefined; // not built yet; try again next request
    }
    return realRoot;
  }

  /** The file's bytes if `urlPath` names a regular file inside the root, else undefined. */
  async function load(urlPath: string): Promise<Cached | undefined> {
    const base = await rootReal();
    if (base === undefined) return undefined;
    const candidate = resolve(base, '.' + urlPath);
    if (candidate !== base && !candidate.startsWith(base + sep)) return undefined;
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      return undefined;
    }
    if (!real.startsWith(base + sep)) return undefined; // a symlink out of the root
    const st = await stat(real).catch(() => undefined);
    if (!st?.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    const hit = cache.get(real);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    const body = await readFile(real).catch(() => undefined);
    if (!body) return undefined;
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`;
    const entry = { mtimeMs: st.mtimeMs, size: st.size, body, etag };
    // Bounded: a build has a handful of files; drop everything if something odd piles up.
    if (cache.size >= 256) cache.clear();
    cache.set(real, entry);
    return entry;
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    file: Cached,
    type: string,
    headers: Record<string, string>,
  ): void {
    const common = { etag: file.etag, 'x-content-type-options': 'nosniff', ...headers };
    const inm = req.headers['if-none-match'];
    if (status === 200 && inm !== undefined && inm.split(',').some((t) => t.trim() === file.etag)) {
      res.writeHead(304, common);
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': type, 'content-length': String(file.body.length), ...common });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  function plain(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
    const body = text + '\n';
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return async (req, res) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    const rawPath = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
    if (rawPath === '/api' || rawPath.startsWith('/api/')) return false;

    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      plain(req, res, 400, 'bad request: the path is not valid percent-encoding');
      return true;
    }
    if (!path.startsWith('/') || path.includes('\0') || path.includes('\\')) {
      plain(req, res, 400, 'bad request: invalid path');
      return true;
    }
    // Any `..` segment is refused outright rather than resolved: no legitimate link has one.
    if (path.split('/').some((seg) => seg === '..')) {
      plain(req, res, 404, 'not found');
      return true;
    }

    const file = path.endsWith('/') ? undefined : await load(path);
    if (file) {
      const type = TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
      const headers = HASHED.test(path)
        ? { 'cache-control': IMMUTABLE }
        : path === '/index.html'
          ? PAGE_HEADERS
          : { 'cache-control': 'public, max-age=300' };
      send(req, res, 200, file, type, headers);
      return true;
    }
    if (path.startsWith('/assets/')) {
      plain(req, res, 404, `not found: ${path}`);
      return true;
    }
    const index = await load('/index.html');
    if (!index) {
      plain(req, res, 404, 'the dashboard is not built: run `npm run build:web`');
      return true;
    }
    send(req, res, 200, index, TYPES['.html']!, PAGE_HEADERS);
    return true;
  };
}
