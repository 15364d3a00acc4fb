// Receivers the notifier tests start on 127.0.0.1:0. Not a test file itself (no .test.ts suffix).
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
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

export type SmtpAuthMechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5';

export interface SmtpSession {
  /** Every line the client sent outside DATA, the lines of an AUTH exchange included. */
  commands: string[];
  /** The DATA as it came over the wire, before the end marker. */
  raw: string;
  /** The message after undoing dot-stuffing. */
  message: string;
  /** The commands sent over TLS (after STARTTLS, or all of them on an implicit-TLS server). */
  secureCommands: string[];
  /** The message's header fields: names lower-cased, folded lines joined, RFC 2047 encoded-words decoded. */
  headers: Record<string, string>;
  /** The body with its Content-Transfer-Encoding (quoted-printable or base64) undone, as UTF-8. */
  text: string;
  /** Who logged in, and how, once AUTH succeeded. */
  auth: { mechanism: SmtpAuthMechanism; user: string } | undefined;
  /** Whether the client's connection has closed. */
  closed: boolean;
}

export interface SmtpServerOptions {
  /** A certificate and key: STARTTLS is offered (or, with implicit, TLS from the first byte). */
  tls?: { cert: Buffer; key: Buffer };
  implicit?: boolean;
  /** The mechanisms EHLO lists after AUTH, in this order (default PLAIN); any other is refused with 504. */
  auth?: readonly SmtpAuthMechanism[];
  /** The accounts AUTH checks (535 on a wrong user or password); without them any login is taken. */
  users?: Record<string, string>;
  /** Whether EHLO lists 8BITMIME (default true). */
  eightBitMime?: boolean;
  /** false: take connections and never send the greeting, as a server that hangs does (default true). */
  greet?: boolean;
  /** The reply to RCPT TO for these addresses, e.g. { 'nobody@x': '550 5.1.1 no such user' }. */
  refuseRecipients?: Record<string, string>;
}

/** A byte string with quoted-printable's =XX escapes and soft line breaks undone, read as UTF-8. */
function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  const text = s.replace(/=\r\n/g, '');
  for (let i = 0; i < text.length; i++) {
    const hex = text[i] === '=' ? /^[0-9A-Fa-f]{2}$/.exec(text.slice(i + 1, i + 3)) : null;
    if (hex) {
      bytes.push(parseInt(hex[0], 16));
      i += 2;
    } else bytes.push(...Buffer.from(text[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded-words (=?UTF-8?B?...?= and =?UTF-8?Q?...?=) decoded; the space between two is dropped. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}

/** Splits a message into its decoded header fields and its decoded body. */
function parseMessage(message: string): { headers: Record<string, string>; text: string } {
  const split = message.indexOf('\r\n\r\n');
  const head = split < 0 ? message : message.slice(0, split);
  const body = split < 0 ? '' : message.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const field of head.replace(/\r\n(?=[ \t])/g, '').split('\r\n')) {
    const colon = field.indexOf(':');
    if (colon > 0)
      headers[field.slice(0, colon).trim().toLowerCase()] = decodeWords(field.slice(colon + 1).trim());
  }
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  const text =
    encoding === 'quoted-printable'
      ? decodeQuotedPrintable(body)
      : encoding === 'base64'
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
        : body;
  return { headers, text };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/**
 * A tiny SMTP server: enough of RFC 5321 (with RFC 3207's STARTTLS and RFC 4954's AUTH PLAIN, LOGIN and
 * CRAM-MD5) to take one message; `refuse` answers a command with an error.
 */
export async function startSmtpServer(
  refuse: Record<string, string> = {},
  opts: SmtpServerOptions = {},
): Promise<{
  port: number;
  sessions: SmtpSession[];
  close(): Promise<void>;
}> {
  const mechanisms = opts.auth ?? ['PLAIN'];
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
    // A character of the message may be split between two chunks.
    const decoder = new StringDecoder('utf8');
    /** The next line answers the server's 334 challenge of an AUTH exchange, not a command. */
    let answer: ((line: string) => void) | undefined;

    const login = (mechanism: SmtpAuthMechanism, user: string, ok: boolean): void => {
      if (!ok) {
        socket.write('535 5.7.8 authentication credentials invalid\r\n');
        return;
      }
      session.auth = { mechanism, user };
      socket.write('235 2.7.0 authentication successful\r\n');
    };
    const check = (user: string, pass: string): boolean => !opts.users || opts.users[user] === pass;
    const challenge = (text: string, then: (line: string) => void): void => {
      answer = (line) => {
        answer = undefined;
        if (line === '*') socket.write('501 5.7.0 authentication cancelled\r\n');
        else then(line);
      };
      socket.write(`334 ${text}\r\n`);
    };
    const auth = (mechanism: string, initial: string | undefined): void => {
      if (!(mechanisms as readonly string[]).includes(mechanism)) {
        socket.write('504 5.5.4 mechanism not supported\r\n');
        return;
      }
      if (mechanism === 'PLAIN') {
        const plain = (token: string): void => {
          const [, user = '', pass = ''] = unb64(token).split('\0');
          login('PLAIN', user, check(user, pass));
        };
        if (initial !== undefined) plain(initial);
        else challenge('', plain);
      } else if (mechanism === 'LOGIN') {
        const askPassword = (user: string): void =>
          challenge(b64('Password:'), (pass) => login('LOGIN', user, check(user, unb64(pass))));
        if (initial !== undefined) askPassword(unb64(initial));
        else challenge(b64('Username:'), (user) => askPassword(unb64(user)));
      } else {
        const nonce = `<${randomBytes(8).toString('hex')}@test.local>`;
        challenge(b64(nonce), (line) => {
          const [user = '', digest = ''] = unb64(line).split(' ');
          const pass = opts.users?.[user];
          const ok =
            !opts.users ||
            (pass !== undefined && createHmac('md5', pass).update(nonce).digest('hex') === digest);
          login('CRAM-MD5', user, ok);
        });
      }
    };

    const onData = (chunk: Buffer): void => {
      buffer += decoder.write(chunk);
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          session.raw = buffer.slice(0, end);
          session.message = session.raw
            .split('\r\n')
            .map((l) => (l.startsWith('..') ? l.slice(1) : l))
            .join('\r\n');
          Object.assign(session, parseMessage(session.message));
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
        if (answer) {
          answer(line);
          continue;
        }
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        const refusal = refuse[verb];
        if (refusal) socket.write(`${refusal}\r\n`);
        else if (verb === 'EHLO') {
          const lines = [
            'test.local',
            ...(opts.eightBitMime === false ? [] : ['8BITMIME']),
            ...(opts.tls && !secure ? ['STARTTLS'] : []),
            ...(mechanisms.length > 0 ? [`AUTH ${mechanisms.join(' ')}`] : []),
          ];
          socket.write(lines.map((l, k) => `250${k === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
        } else if (verb === 'STARTTLS' && opts.tls && !secure) {
          socket.off('data', onData);
          socket.write('220 2.0.0 ready to start TLS\r\n');
          const upgraded = new TLSSocket(socket as Socket, { isServer: true, ...opts.tls });
          track(upgraded);
          speak(session, upgraded, true);
          return;
        } else if (verb === 'AUTH') {
          const [, mechanism = '', initial] = line.split(' ');
          auth(mechanism.toUpperCase(), initial);
        } else if (verb === 'RCPT') {
          const address = /<([^>]*)>/.exec(line)?.[1] ?? '';
          socket.write(`${opts.refuseRecipients?.[address] ?? '250 ok'}\r\n`);
        } else if (verb === 'MAIL') socket.write('250 ok\r\n');
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
    const session: SmtpSession = {
      commands: [],
      raw: '',
      message: '',
      secureCommands: [],
      headers: {},
      text: '',
      auth: undefined,
      closed: false,
    };
    sessions.push(session);
    socket.on('close', () => (session.closed = true));
    if (opts.greet === false) return;
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
