/**
 * mqtts:// against a private Mosquitto whose TLS listener requires a client certificate signed by a CA
 * this test makes (require_certificate true), beside a plain listener: a pair over it loses nothing, and
 * each common mistake gets the hint that names its fix.
 */
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, tempDir, type TempDir } from '../support/brokers.js';
import { freePort } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { tcpAnswers } from '../support/services.js';
import { makeTestPki, type TestPki } from '../support/tls-ca.js';
import { connectError, expectCleanPair, expectHint } from '../support/tls-pair.js';

const haveMosquitto =
  haveCommand('mosquitto', 'apt-get install mosquitto') && haveCommand('openssl', 'apt-get install openssl');

describe.skipIf(!haveMosquitto)('mqtts:// against a private TLS Mosquitto', () => {
  let dir: TempDir;
  let pki: TestPki;
  let port: number;
  let plainPort: number;
  let server: BrokerProcess;

  beforeAll(async () => {
    dir = await tempDir('coalmine-mqtt-tls-');
    pki = makeTestPki(dir.path);
    [port, plainPort] = [await freePort(), await freePort()];
    const conf = join(dir.path, 'mosquitto.conf');
    // The TLS settings belong to the listener above them. Run as root, mosquitto would switch to the
    // user mosquitto, who cannot read the keys in our temp dir: it stays who we are.
    await writeFile(
      conf,
      [
        `user ${userInfo().username}`,
        'per_listener_settings false',
        'allow_anonymous true',
        'persistence false',
        `listener ${plainPort} 127.0.0.1`,
        `listener ${port} 127.0.0.1`,
        `cafile ${pki.caFile}`,
        `certfile ${pki.serverCert}`,
        `keyfile ${pki.serverKey}`,
        'require_certificate true',
        '',
      ].join('\n'),
    );
    server = new BrokerProcess({
      name: `mosquitto (TLS) on port ${port}`,
      command: 'mosquitto',
      args: ['-c', conf],
      ready: async () => (await tcpAnswers('127.0.0.1', port)) && tcpAnswers('127.0.0.1', plainPort),
      readyTimeoutMs: 10_000,
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.kill();
    await dir?.remove();
  });

  const client = () => `cert=${pki.clientCert}&key=${pki.clientKey}`;

  it('a pair over mqtts:// (CA and client certificate) loses nothing', async () => {
    await expectCleanPair(`mqtts://127.0.0.1:${port}?ca=${pki.caFile}&${client()}`);
  });

  it('a pair by the name localhost, checked against the certificate, loses nothing', async () => {
    await expectCleanPair(`mqtts://localhost:${port}?ca=${pki.caFile}&${client()}&qos=2`);
  });

  it('without ca= the certificate is untrusted, and the hint names ca=', async () => {
    const message = await connectError(`mqtts://127.0.0.1:${port}?${client()}`);
    expectHint(
      message,
      "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)",
    );
  });

  it('a name the certificate does not carry gets the servername= hint', async () => {
    const message = await connectError(
      `mqtts://127.0.0.1:${port}?ca=${pki.caFile}&${client()}&servername=wrong.example`,
    );
    expectHint(
      message,
      "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=",
    );
  });

  it('without a client certificate the handshake is refused, and the hint names cert= and key=', async () => {
    const message = await connectError(`mqtts://127.0.0.1:${port}?ca=${pki.caFile}`);
    expect(message).toMatch(
      / — the server (refused|closed the connection during) the TLS handshake.* cert= and key=$/,
    );
  });

  it('a client certificate from a CA the broker does not trust is refused, and the hint names cert=', async () => {
    const message = await connectError(
      `mqtts://127.0.0.1:${port}?ca=${pki.caFile}&cert=${pki.strangerCert}&key=${pki.strangerKey}`,
    );
    expect(message).toMatch(
      / — the server (refused|closed the connection during) the TLS handshake.* cert= and key=$/,
    );
  });

  it('mqtt:// on the TLS port says the port takes TLS only', async () => {
    const message = await connectError(`mqtt://127.0.0.1:${port}`);
    expectHint(
      message,
      'the server closed the connection at once: if that port takes TLS only, use mqtts://',
    );
  });

  // Mosquitto hangs up on a ClientHello (not an MQTT packet) rather than answering in plain MQTT.
  it('mqtts:// on the plain port says it may speak plain mqtt', async () => {
    const message = await connectError(`mqtts://127.0.0.1:${plainPort}?ca=${pki.caFile}&${client()}`);
    expectHint(
      message,
      'the server closed the connection during the TLS handshake: if that port speaks plain mqtt, not TLS, use mqtt://; if it wants a client certificate, give cert= and key=',
    );
  });
});
