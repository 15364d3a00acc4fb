import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../../test/support/certs.js';
import { EmailNotifier, type EmailOptions } from './email.js';
import { DeliveryError, SmtpError } from './errors.js';
import { sampleAlert, startSmtpServer } from './receivers.testkit.js';

/** Polls `ok` every 10 ms for up to 5 s: the server's side of a close arrives a little after ours. */
async function until(ok: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5000; !ok();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('EmailNotifier', () => {
  let server: Awaited<ReturnType<typeof startSmtpServer>> | undefined;
  afterEach(() => server?.close());

  it('delivers a message with the right envelope, headers and body, dot-stuffed', async () => {
    server = await startSmtpServer();
    const notifier = new EmailNotifier({
      host: '127.0.0.1',
      port: server.port,
      from: 'coalmine@example.com',
      to: ['oncall@example.com', 'team@example.com'],
      auth: { user: 'bot', pass: 's3cret' },
      // This server offers no STARTTLS: sending the password in plain text must be asked for.
      tls: { mode: 'none' },
      helo: 'agent-1',
      now: () => Date.UTC(2026, 10, 23, 12, 1),
    });
    // A summary line starting with '.' would end DATA early if it were not dot-stuffed.
    const n = sampleAlert({ summary: '.5 of probes failing\n.' });
    await notifier.send(n, new AbortController().signal);

    const s = server.sessions[0]!;
    expect(s.commands[0]).toBe('EHLO agent-1');
    expect(s.commands[1]).toBe(`AUTH PLAIN ${Buffer.from('\0bot\0s3cret').toString('base64')}`);
    expect(s.commands.slice(2)).toEqual([
      'MAIL FROM:<coalmine@example.com>',
      'RCPT TO:<oncall@example.com>',
      'RCPT TO:<team@example.com>',
      'DATA',
      'QUIT',
    ]);
    expect(s.raw).toContain('\r\n..5 of probes failing\r\n..\r\n');
    const [head, body] = s.message.split('\r\n\r\n');
    expect(head).toContain('From: coalmine@example.com');
    expect(head).toContain('To: oncall@example.com, team@example.com');
    expect(head).toContain('Subject: [FIRING] p95-latency-high: .5 of probes failing .');
    expect(head).toContain('Date: Mon, 23 Nov 2026 12:01:00 +0000');
    expect(head).toContain('Content-Type: text/plain; charset=utf-8');
    expect(body).toContain('\r\n.5 of probes failing\r\n.\r\n');
    expect(body).toContain('value: 123.5');
    expect(body).toMatch(/dashboard: http:\/\/coalmine\.example\/#\/targets\/eu-west$/);
  });

  it('logs in with AUTH LOGIN when that is all the server offers', async () => {
    server = await startSmtpServer({}, { auth: ['LOGIN'], users: { bot: 's3cret' } });
    const login = (pass: string) =>
      new EmailNotifier({
        host: '127.0.0.1',
        port: server!.port,
        from: 'a@x',
        to: ['b@x'],
        auth: { user: 'bot', pass },
        tls: { mode: 'none' },
      });
    await login('s3cret').send(sampleAlert(), new AbortController().signal);
    const s = server.sessions[0]!;
    expect(s.auth).toEqual({ mechanism: 'LOGIN', user: 'bot' });
    expect(s.commands.some((c) => c.startsWith('AUTH PLAIN'))).toBe(false);
    expect(s.headers.subject).toMatch(/^\[FIRING\] p95-latency-high/);

    const err = await login('wrong')
      .send(sampleAlert(), new AbortController().signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err).toMatchObject({ code: 535, command: 'AUTH LOGIN' });
    expect(server.sessions[1]!.commands.some((c) => c.startsWith('MAIL'))).toBe(false);
  });

  it('logs in with CRAM-MD5 when the server offers only that', async () => {
    server = await startSmtpServer({}, { auth: ['CRAM-MD5'], users: { bot: 's3cret' } });
    const notifier = new EmailNotifier({
      host: '127.0.0.1',
      port: server.port,
      from: 'a@x',
      to: ['b@x'],
      auth: { user: 'bot', pass: 's3cret' },
      tls: { mode: 'none' },
    });
    await notifier.send(sampleAlert(), new AbortController().signal);
    expect(server.sessions[0]!.auth).toEqual({ mechanism: 'CRAM-MD5', user: 'bot' });
    // The password itself never crossed the wire, in any encoding.
    const wire = server.sessions[0]!.commands.join('\n');
    for (const form of ['s3cret', Buffer.from('s3cret').toString('base64')]) expect(wire).not.toContain(form);
  });

  it('sends non-ASCII text 7-bit safe to a server without 8BITMIME', async () => {
    server = await startSmtpServer({}, { eightBitMime: false });
    const notifier = new EmailNotifier({ host: '127.0.0.1', port: server.port, from: 'a@x', to: ['b@x'] });
    const summary = 'Latenz nach Zürich über 100 ms — 東京 ok';
    await notifier.send(sampleAlert({ summary, labels: { target: 'zürich' } }), new AbortController().signal);
    const s = server.sessions[0]!;
    expect(s.raw).not.toMatch(/[^\t\r\n\x20-\x7e]/);
    expect(s.commands.find((c) => c.startsWith('MAIL'))).toBe('MAIL FROM:<a@x>');
    expect(s.headers['content-transfer-encoding']).toMatch(/^(quoted-printable|base64)$/);
    expect(s.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(s.headers.subject).toBe(`[FIRING] p95-latency-high: ${summary}`);
    expect(s.text).toContain(`\r\n${summary}\r\n`);
    expect(s.text).toContain('labels: {target="zürich"}');
  });

  it('gives up with an error naming the server and the step when the attempt times out', async () => {
    // Takes the connection and never greets.
    server = await startSmtpServer({}, { greet: false });
    const notifier = new EmailNotifier({ host: '127.0.0.1', port: server.port, from: 'a@x', to: ['b@x'] });
    const ac = new AbortController();
    const sent = notifier.send(sampleAlert(), ac.signal).catch((e: unknown) => e);
    await until(() => server!.sessions.length === 1, 'the connection');
    ac.abort(new Error('attempt timed out after 200 ms'));
    const err = await sent;
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as Error).message).toMatch(
      /^SMTP server 127\.0\.0\.1:\d+: attempt timed out after 200 ms while setting up the session$/,
    );
    expect((err as Error).cause).toBe(ac.signal.reason);
    await until(() => server!.sessions[0]!.closed, 'the client to close the connection');
  });

  it('says the server cannot be reached when nothing listens', async () => {
    server = await startSmtpServer();
    const { port } = server;
    await server.close();
    const notifier = new EmailNotifier({ host: '127.0.0.1', port, from: 'a@x', to: ['b@x'] });
    const err = await notifier.send(sampleAlert(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as Error).message).toMatch(
      /^SMTP server 127\.0\.0\.1:\d+: .*ECONNREFUSED.* while connecting$/,
    );
  });

  it('sends no AUTH when none is configured', async () => {
    server = await startSmtpServer();
    const notifier = new EmailNotifier({ host: '127.0.0.1', port: server.port, from: 'a@x', to: ['b@x'] });
    await notifier.send(sampleAlert(), new AbortController().signal);
    expect(server.sessions[0]!.commands.some((c) => c.startsWith('AUTH'))).toBe(false);
  });

  it('names the command and code when the server refuses', async () => {
    server = await startSmtpServer({ RCPT: '550 5.1.1 no such user' });
    const notifier = new EmailNotifier({
      host: '127.0.0.1',
      port: server.port,
      from: 'a@x',
      to: ['nobody@x'],
    });
    const err = await notifier.send(sampleAlert(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err).toMatchObject({ code: 550, command: 'RCPT TO' });
  });

  it('delivers to the recipients the server takes when it refuses one of them', async () => {
    server = await startSmtpServer({}, { refuseRecipients: { 'nobody@x': '550 5.1.1 no such user' } });
    const notifier = new EmailNotifier({
      host: '127.0.0.1',
      port: server.port,
      from: 'a@x',
      to: ['nobody@x', 'oncall@x'],
    });
    await notifier.send(sampleAlert(), new AbortController().signal);
    const s = server.sessions[0]!;
    expect(s.commands.filter((c) => c.startsWith('RCPT'))).toEqual([
      'RCPT TO:<nobody@x>',
      'RCPT TO:<oncall@x>',
    ]);
    expect(s.headers.subject).toMatch(/^\[FIRING\] p95-latency-high/);
  });

  it('reports a 4xx as an SmtpError too', async () => {
    server = await startSmtpServer({ MAIL: '451 4.3.0 try later' });
    const notifier = new EmailNotifier({ host: '127.0.0.1', port: server.port, from: 'a@x', to: ['b@x'] });
    const err = await notifier.send(sampleAlert(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'SmtpError', code: 451, command: 'MAIL FROM' });
  });
});

describe('EmailNotifier over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-smtp-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cert = selfSignedCert(dir, 'smtp');
  const tls = { cert: cert.cert, key: cert.key };
  let server: Awaited<ReturnType<typeof startSmtpServer>> | undefined;
  afterEach(() => server?.close());
  const notifier = (port: number, o: Partial<EmailOptions> = {}) =>
    new EmailNotifier({
      host: '127.0.0.1',
      port,
      from: 'a@x',
      to: ['b@x'],
      auth: { user: 'bot', pass: 's3cret' },
      helo: 'agent-1',
      ...o,
    });
  const send = (n: EmailNotifier) => n.send(sampleAlert(), new AbortController().signal);

  it('upgrades with STARTTLS when offered, says EHLO again, and authenticates only over TLS', async () => {
    server = await startSmtpServer({}, { tls });
    await send(notifier(server.port, { tls: { mode: 'auto', ca: cert.cert } }));
    const s = server.sessions[0]!;
    expect(s.commands.slice(0, 3)).toEqual(['EHLO agent-1', 'STARTTLS', 'EHLO agent-1']);
    expect(s.secureCommands[0]).toBe('EHLO agent-1');
    expect(s.secureCommands.filter((c) => c.startsWith('AUTH'))).toHaveLength(1);
    expect(s.commands.filter((c) => c.startsWith('AUTH'))).toHaveLength(1);
    expect(s.secureCommands).toContain('DATA');
    expect(s.message).toContain('Subject: [FIRING]');
  });

  it('speaks TLS from the first byte with tls: implicit', async () => {
    server = await startSmtpServer({}, { tls, implicit: true });
    await send(notifier(server.port, { tls: { mode: 'implicit', ca: cert.cert } }));
    const s = server.sessions[0]!;
    expect(s.secureCommands).toEqual(s.commands);
    expect(s.commands[0]).toBe('EHLO agent-1');
    expect(s.message).toContain('Subject: [FIRING]');
  });

  it('refuses a certificate it does not trust, unless told to skip the check', async () => {
    server = await startSmtpServer({}, { tls });
    await expect(send(notifier(server.port))).rejects.toThrow(
      /TLS with SMTP server 127\.0\.0\.1:\d+ failed: self.signed/,
    );
    expect(server.sessions[0]!.commands.some((c) => c.startsWith('AUTH'))).toBe(false);
    await send(notifier(server.port, { tls: { mode: 'starttls', insecureSkipVerify: true } }));
    expect(server.sessions[1]!.secureCommands).toContain('DATA');
  });

  it('never sends a password in plain text unless tls: none, and fails tls: starttls without STARTTLS', async () => {
    server = await startSmtpServer();
    await expect(send(notifier(server.port))).rejects.toThrow(
      /does not offer STARTTLS: not sending the password in plain text \(set tls: none/,
    );
    await expect(send(notifier(server.port, { auth: undefined, tls: { mode: 'starttls' } }))).rejects.toThrow(
      /does not offer STARTTLS \(tls: starttls\)/,
    );
    await expect(send(notifier(server.port, { tls: { mode: 'starttls' } }))).rejects.toThrow(
      /^SMTP server 127\.0\.0\.1:\d+ does not offer STARTTLS \(tls: starttls\)$/,
    );
    expect(server.sessions).toHaveLength(3);
    for (const s of server.sessions) expect(s.commands.some((c) => /^(AUTH|MAIL)/.test(c))).toBe(false);
    // Without a password, auto sends in plain text to a server that offers nothing better.
    await send(notifier(server.port, { auth: undefined }));
    expect(server.sessions[3]!.message).toContain('Subject: [FIRING]');
  });
});
