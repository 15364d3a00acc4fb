import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ExampleServiceOptions {
  host: string;
  port: number;
  /** File that /notes appends to. */
  notesFile: string;
  /** The notes file never grows past this; the oldest lines go first. */
  maxNotesBytes?: number;
  /** Longest note accepted, in bytes. */
  maxNoteBytes?: number;
}

export interface ExampleService {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Seed 001's example-service: GET /health, and GET|POST /notes?content=... which appends one line to a
 * bounded local file. A target for the probes that behaves like a small real service.
 */
export async function startExampleService(opts: ExampleServiceOptions): Promise<ExampleService> {
  const maxFile = opts.maxNotesBytes ?? 1 << 20;
  const maxNote = opts.maxNoteBytes ?? 4096;
  // Appends are serialised so trimming never races another write.
  let writes: Promise<unknown> = Promise.resolve();

  const appendNote = async (line: string) => {
    await appendFile(opts.notesFile, line);
    const size = (await stat(opts.notesFile)).size;
    if (size > maxFile) {
      const text = await readFile(opts.notesFile, 'utf8');
      let cut = text.length - Math.floor(maxFile / 2);
      cut = text.indexOf('\n', cut) + 1 || text.length;
      await writeFile(opts.notesFile, text.slice(cut));
    }
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://target.invalid');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    req.resume();
    if (url.pathname === '/health') return json(200, { status: 'ok' });
    if (url.pathname === '/notes') {
      if (req.method !== 'GET' && req.method !== 'POST') return json(405, { error: 'use GET or POST' });
      const content = url.searchParams.get('content');
      if (content === null || content === '') return json(400, { error: 'missing ?content=' });
      if (Buffer.byteLength(content) > maxNote)
        return json(413, { error: `a note is at most ${maxNote} bytes` });
      const line = `${new Date().toISOString()} ${content.replace(/[\r\n]+/g, ' ')}\n`;
      const p = writes.then(() => appendNote(line));
      writes = p.catch(() => {});
      p.then(
        () => json(201, { status: 'saved' }),
        (err: Error) => json(500, { error: `could not save the note: ${err.message}` }),
      );
      return;
    }
    json(404, { error: `no such endpoint ${url.pathname}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
