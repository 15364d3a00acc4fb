import { describe, expect, it } from 'vitest';
import { tlsHint } from './tls-hint.js';

describe('tlsHint on a plain connection', () => {
  const plain = { secure: false, otherScheme: 'amqps' };
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const abrupt = new Error('Socket closed abruptly during opening handshake');

  it('says the port may take TLS only when the server reset the connection', () => {
    expect(tlsHint(reset, plain)).toBe(
      'the server closed the connection at once: if that port takes TLS only, use amqps://',
    );
  });

  it('says the same when the client reports that close in its own words, as amqplib does', () => {
    // A TLS port closes the connection either way, depending on timing: both must get the same hint.
    const withWords = { ...plain, closedAtOnce: (e: unknown) => /closed abruptly/.test(String(e)) };
    expect(tlsHint(abrupt, withWords)).toBe(tlsHint(reset, plain));
    expect(tlsHint(abrupt, plain)).toBeUndefined();
    expect(tlsHint(new Error('something else'), withWords)).toBeUndefined();
  });
});
