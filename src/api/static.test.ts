import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from './static.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request: fetch() would normalise `..` away before it reached the server. */
function raw(
  port: number,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveStatic', () => {
  let dir: string;
  let root: string;
  let server: Server;
  let port: number;
  const fellThrough: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-static-'));
    root = join(dir, 'web');
    await mkdir(join(root, 'assets'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<!doctype html><title>dash</title>');
    await writeFile(join(root, 'assets', 'index-AbC123_x.js'), 'console.log("app")');
    await writeFile(join(root, 'assets', 'index-Zz9Yy8Xx.css'), 'body{}');
    await writeFile(join(root, 'favicon.svg'), '<svg/>');
    await writeFile(join(root, 'notes.weird'), 'x');
    await writeFile(join(dir, 'secret.txt'), 'top secret');
    await symlink(join(dir, 'secret.txt'), join(root, 'escape.txt'));
    await symlink(dir, join(root, 'parent'));
    const handle = serveStatic(root);
    server = createServer((req, res) => {
      void handle(req, res).then((handled) => {
        if (!handled) {
          fellThrough.push(`${req.method} ${req.url}`);
          res.writeHead(418).end('not static');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html at / with no-cache and headers that keep the token in the address private', async () => {
    const r = await raw(port, '/?token=abc');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body).toContain('<title>dash</title>');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves hashed assets with their content type and a year-long immutable cache', async () => {
    const js = await raw(port, '/assets/index-AbC123_x.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log("app")');
    const css = await raw(port, '/assets/index-Zz9Yy8Xx.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers['content-length']).toBe('6');
  });

  it('gives unhashed files a short cache and unknown extensions a neutral type', async () => {
    const svg = await raw(port, '/favicon.svg');
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['cache-control']).toBe('public, max-age=300');
    const other = await raw(port, '/notes.weird');
    expect(other.headers['content-type']).toBe('application/octet-stream');
  });

  it('answers unknown non-API paths with the page (SPA) but a missing asset with 404', async () => {
    const deep = await raw(port, '/target/web?x=1');
    expect(deep.status).toBe(200);
    expect(deep.body).toContain('<title>dash</title>');
    const dirPath = await raw(port, '/assets/');
    expect(dirPath.status).toBe(404);
    const missing = await raw(port, '/assets/index-OLDHASH1.js');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('leaves /api and non-GET requests to the caller', async () => {
    fellThrough.length = 0;
    expect((await raw(port, '/api/v1/targets')).status).toBe(418);
    expect((await raw(port, '/api')).status).toBe(418);
    expect((await raw(port, '/index.html', 'POST')).status).toBe(418);
    expect(fellThrough).toEqual(['GET /api/v1/targets', 'GET /api', 'POST /index.html']);
  });

  it('answers HEAD without a body and 304 for a matching ETag', async () => {
    const head = await raw(port, '/assets/index-AbC123_x.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String('console.log("app")'.length));
    const etag = head.headers.etag as string;
    expect(etag).toMatch(/^".+"$/);
    const again = await raw(port, '/assets/index-AbC123_x.js', 'GET', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it.each([
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/assets/..%2f..%2fsecret.txt',
    '/assets/%2e%2e/%2e%2e/secret.txt',
    '/..%5csecret.txt',
    '//../secret.txt',
  ])('never serves a file outside the root: %s', async (path) => {
    const r = await raw(port, path);
    expect(r.body).not.toContain('top secret');
    expect([400, 404]).toContain(r.status);
  });

  it('does not follow symlinks out of the root, and falls back to the page instead', async () => {
    for (const path of ['/escape.txt', '/parent/secret.txt']) {
      const r = await raw(port, path);
      expect(r.body).not.toContain('top secret');
      expect(r.body).toContain('<title>dash</title>');
    }
  });

  it('rejects NUL bytes and broken percent-encoding with 400', async () => {
    expect((await raw(port, '/index.html%00.js')).status).toBe(400);
    const bad = await raw(port, '/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('percent-encoding');
  });

  it('says the dashboard is not built when the root has no index.html', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'coalmine-static-empty-'));
    const handle = serveStatic(join(empty, 'missing'));
    const s = createServer((req, res) => void handle(req, res));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const r = await raw((s.address() as AddressInfo).port, '/');
      expect(r.status).toBe(404);
      expect(r.body).toContain('npm run build:web');
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
      await rm(empty, { recursive: true, force: true });
    }
  });
});
