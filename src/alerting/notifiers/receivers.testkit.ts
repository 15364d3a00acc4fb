// Receivers the notifier tests start on 127.0.0.1:0. Not a test file itself (no .test.ts suffix).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import type { AlertNotification } from './types.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** An HTTP server that records each request and answers with what `answer` returns (status, or hang). */
export async function startHttpReceiver(
  answer: (req: ReceivedRequest, index: number) => number | 'hang' = () => 200,
): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(r);
      const status = answer(r, requests.length - 1);
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}

export function sampleAlert(overrides: Partial<AlertNotification> = {}): AlertNotification {
  return {
    rule: 'p95-latency-high',
    state: 'firing',
    value: 123.456,
    summary: 'P95 latency to eu-west above 100 ms in 2 of the last 3 datapoints',
    startsAt: Date.UTC(2026, 10, 23, 12, 0, 0),
    labels: { target: 'eu-west', kind: 'http' },
    annotations: { threshold: '100 ms' },
    dashboardUrl: 'http://coalmine.example/#/targets/eu-west',
    ...overrides,
  };
}

export interface SmtpSession {
  commands: string[];
  /** The DATA as it came over the wire, before the end marker. */
  raw: string;
  /** The message after undoing dot-stuffing. */
  message: string;
  /** The commands sent over TLS (after STARTTLS, or all of them on an implicit-TLS server). */
  secureCommands: string[];
}

export interface SmtpServerOptions {
  /** A certificate and key: STARTTLS is offered (or, with implicit, TLS from the first byte). */
  tls?: { cert: Buffer; key: Buffer };
  implicit?: boolean;
}

/**
 * A tiny SMTP server: enough of RFC 5321 (and RFC 3207's STARTTLS) to take one message; `refuse`
 * answers a command with an error.
 */
export async function startSmtpServer(
  refuse: Record<string, string> = {},
  opts: SmtpServerOptions = {},
): Promise<{
  port: number;
  sessions: SmtpSession[];
  close(): Promise<void>;
}> {
  const sessions: SmtpSession[] = [];
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  /** Speaks SMTP on `socket` until QUIT, or until STARTTLS hands it to TLS. */
  const speak = (session: SmtpSession, socket: Duplex, secure: boolean): void => {
    let buffer = '';
    let inData = false;
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          session.raw = buffer.slice(0, end);
          session.message = session.raw
            .split('\r\n')
            .map((l) => (l.startsWith('..') ? l.slice(1) : l))
            .join('\r\n');
          buffer = buffer.slice(end + 5);
          inData = false;
          socket.write('250 2.0.0 queued\r\n');
          continue;
        }
        const i = buffer.indexOf('\r\n');
        if (i < 0) return;
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        session.commands.push(line);
        if (secure) session.secureCommands.push(line);
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        const refusal = refuse[verb];
        if (refusal) socket.write(`${refusal}\r\n`);
        else if (verb === 'EHLO') {
          const starttls = opts.tls && !secure ? '250-STARTTLS\r\n' : '';
          socket.write(`250-test.local\r\n250-8BITMIME\r\n${starttls}250 AUTH PLAIN\r\n`);
        } else if (verb === 'STARTTLS' && opts.tls && !secure) {
          socket.off('data', onData);
          socket.write('220 2.0.0 ready to start TLS\r\n');
          const upgraded = new TLSSocket(socket as Socket, { isServer: true, ...opts.tls });
          track(upgraded);
          speak(session, upgraded, true);
          return;
        } else if (verb === 'AUTH') socket.write('235 2.7.0 ok\r\n');
        else if (verb === 'MAIL' || verb === 'RCPT') socket.write('250 ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 end with .\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('502 unknown\r\n');
      }
    };
    socket.on('data', onData);
  };

  const accept = (socket: Socket, secure: boolean): void => {
    track(socket);
    const session: SmtpSession = { commands: [], raw: '', message: '', secureCommands: [] };
    sessions.push(session);
    socket.write('220 test.local ESMTP\r\n');
    speak(session, socket, secure);
  };
  const server: Server =
    opts.implicit && opts.tls
      ? createTlsServer(opts.tls, (socket) => accept(socket, true))
      : createTcpServer((socket) => accept(socket, false));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
