import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { SmtpError } from './errors.js';

/**
 * How the connection is secured:
 * - `auto` (default): TLS from the first byte on port 465; elsewhere STARTTLS when the server offers it,
 *   plain text when it does not. A password is never sent in plain text this way.
 * - `starttls`: STARTTLS, and fail if the server does not offer it.
 * - `implicit`: TLS from the first byte (SMTPS, usually port 465).
 * - `none`: plain text, password included: only for a relay on a network you trust.
 */
export type SmtpTlsMode = 'auto' | 'starttls' | 'implicit' | 'none';

export interface SmtpTls {
  mode: SmtpTlsMode;
  /** PEM CA certificates to trust instead of the system store. */
  ca?: string | Buffer;
  /** Accept any certificate (chain, expiry, name). */
  insecureSkipVerify?: boolean;
}

export interface SmtpTransaction {
  host: string;
  port: number;
  /** The name we give in EHLO. */
  helo: string;
  from: string;
  to: readonly string[];
  /** Only when set do we send AUTH PLAIN; over TLS unless tls.mode is none. */
  auth?: { user: string; pass: string };
  /** Default { mode: 'auto' }. */
  tls?: SmtpTls;
  /** The whole message, headers and body; any line ending is sent as CRLF. */
  message: string;
}

interface Reply {
  code: number;
  text: string;
}

/** Lines ending in CRLF, with '.' doubled at the start of a line (RFC 5321 4.5.2), no end marker. */
export function dotStuff(message: string): string {
  // A final line ending is dropped: the caller's "\r\n." end marker supplies it.
  return message
    .replace(/(\r\n|\r|\n)$/, '')
    .split(/\r\n|\r|\n/)
    .map((line) => (line.startsWith('.') ? `.${line}` : line))
    .join('\r\n');
}

/** Reads SMTP replies off a socket: "250-more" lines continue a reply, "250 last" ends it. */
class ReplyReader {
  #buffer = '';
  #lines: string[] = [];
  #waiting: ((r: Reply | Error) => void) | undefined;
  #ready: (Reply | Error)[] = [];
  readonly #socket: Socket;
  readonly #onData = (chunk: Buffer): void => this.#data(chunk.toString('utf8'));
  readonly #onError = (err: Error): void => this.#push(err);
  readonly #onClose = (): void => this.#push(new Error('SMTP server closed the connection'));

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  /** Stops reading: the socket is handed to TLS after STARTTLS. */
  detach(): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('error', this.#onError);
    this.#socket.off('close', this.#onClose);
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let i: number;
    while ((i = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, i).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(i + 1);
      this.#lines.push(line.slice(4));
      if (line[3] !== '-') {
        const code = Number(line.slice(0, 3));
        const text = this.#lines.join('\n');
        this.#lines = [];
        this.#push(Number.isInteger(code) ? { code, text } : new Error(`bad SMTP reply: ${line}`));
      }
    }
  }

  #push(r: Reply | Error): void {
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w(r);
    } else this.#ready.push(r);
  }

  next(): Promise<Reply> {
    const r = this.#ready.shift();
    const settle = (x: Reply | Error): Reply => {
      if (x instanceof Error) throw x;
      return x;
    };
    if (r) return Promise.resolve().then(() => settle(r));
    return new Promise<Reply | Error>((resolve) => (this.#waiting = resolve)).then(settle);
  }
}

/** The extensions an EHLO reply lists (its lines after the first), upper-cased keywords. */
function extensions(ehlo: Reply): Set<string> {
  return new Set(
    ehlo.text
      .split('\n')
      .slice(1)
      .map((l) => l.split(' ')[0]!.toUpperCase()),
  );
}

/** Opens TLS over `socket` (STARTTLS) or to host:port (implicit), resolving once the handshake is done. */
function secure(tx: SmtpTransaction, tls: SmtpTls, signal: AbortSignal, socket?: Socket): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      ...(socket ? { socket } : { host: tx.host, port: tx.port }),
      ...(isIP(tx.host) === 0 && { servername: tx.host }),
      ...(tls.ca !== undefined && { ca: tls.ca }),
      rejectUnauthorized: tls.insecureSkipVerify !== true,
    });
    const fail = (err: Error): void => {
      s.destroy();
      reject(new Error(`TLS with SMTP server ${tx.host}:${tx.port} failed: ${err.message}`, { cause: err }));
    };
    const onAbort = (): void => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    s.once('error', fail);
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      s.off('error', fail);
      signal.removeEventListener('abort', onAbort);
      resolve(s);
    });
  });
}

/**
 * Sends one message: EHLO, STARTTLS and EHLO again (see SmtpTls), optional AUTH PLAIN, MAIL FROM,
 * RCPT TO, DATA, QUIT. A 4xx or 5xx reply throws SmtpError naming the command.
 */
export async function sendMail(tx: SmtpTransaction, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const tls: SmtpTls = tx.tls ?? { mode: 'auto' };
  const implicit = tls.mode === 'implicit' || (tls.mode === 'auto' && tx.port === 465);
  let socket: Socket | undefined;
  const onAbort = (): void => {
    socket?.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    socket = implicit ? await secure(tx, tls, signal) : connect({ host: tx.host, port: tx.port });
    let reader = new ReplyReader(socket);
    const expect = async (command: string, ok: (code: number) => boolean): Promise<Reply> => {
      const reply = await reader.next();
      if (!ok(reply.code)) throw new SmtpError(command, reply.code, reply.text);
      return reply;
    };
    const command = async (line: string, name: string, ok: (c: number) => boolean): Promise<Reply> => {
      socket!.write(`${line}\r\n`);
      return expect(name, ok);
    };
    const is = (want: number) => (code: number) => code === want;

    await expect('greeting', is(220));
    const ehlo = await command(`EHLO ${tx.helo}`, 'EHLO', is(250));
    if (!implicit && tls.mode !== 'none') {
      if (extensions(ehlo).has('STARTTLS')) {
        await command('STARTTLS', 'STARTTLS', is(220));
        reader.detach();
        socket = await secure(tx, tls, signal, socket);
        reader = new ReplyReader(socket);
        // RFC 3207: what the server said before TLS is forgotten; ask again.
        await command(`EHLO ${tx.helo}`, 'EHLO', is(250));
      } else if (tls.mode === 'starttls') {
        throw new Error(`SMTP server ${tx.host}:${tx.port} does not offer STARTTLS (tls: starttls)`);
      } else if (tx.auth) {
        throw new Error(
          `SMTP server ${tx.host}:${tx.port} does not offer STARTTLS: not sending the password in plain text (set tls: none to allow it, or tls: implicit for SMTPS)`,
        );
      }
    }
    if (tx.auth) {
      const token = Buffer.from(`\0${tx.auth.user}\0${tx.auth.pass}`).toString('base64');
      await command(`AUTH PLAIN ${token}`, 'AUTH', is(235));
    }
    await command(`MAIL FROM:<${tx.from}>`, 'MAIL FROM', is(250));
    for (const rcpt of tx.to) {
      await command(`RCPT TO:<${rcpt}>`, 'RCPT TO', (c) => c === 250 || c === 251);
    }
    await command('DATA', 'DATA', is(354));
    await command(`${dotStuff(tx.message)}\r\n.`, 'message', is(250));
    await command('QUIT', 'QUIT', is(221)).catch(() => undefined); // delivered already
  } finally {
    signal.removeEventListener('abort', onAbort);
    socket?.destroy();
  }
}
