import { connect, type Socket } from 'node:net';
import { SmtpError } from './errors.js';

export interface SmtpTransaction {
  host: string;
  port: number;
  /** The name we give in EHLO. */
  helo: string;
  from: string;
  to: readonly string[];
  /** Only when set do we send AUTH PLAIN. Plain text over plain TCP: for a relay on a trusted network. */
  auth?: { user: string; pass: string };
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

  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err) => this.#push(err));
    socket.on('close', () => this.#push(new Error('SMTP server closed the connection')));
  }

  #onData(chunk: string): void {
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

/**
 * Sends one message: EHLO, optional AUTH PLAIN, MAIL FROM, RCPT TO, DATA, QUIT. A 4xx or 5xx reply
 * throws SmtpError naming the command. No STARTTLS: point it at a local relay for anything remote.
 */
export async function sendMail(tx: SmtpTransaction, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const socket = connect({ host: tx.host, port: tx.port });
  const onAbort = (): void => {
    socket.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const reader = new ReplyReader(socket);

  const expect = async (command: string, ok: (code: number) => boolean): Promise<Reply> => {
    const reply = await reader.next();
    if (!ok(reply.code)) throw new SmtpError(command, reply.code, reply.text);
    return reply;
  };
  const command = async (line: string, name: string, ok: (c: number) => boolean): Promise<Reply> => {
    socket.write(`${line}\r\n`);
    return expect(name, ok);
  };
  const is = (want: number) => (code: number) => code === want;

  try {
    await expect('greeting', is(220));
    await command(`EHLO ${tx.helo}`, 'EHLO', is(250));
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
    socket.destroy();
  }
}
