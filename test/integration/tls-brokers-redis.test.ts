/**
 * rediss:// and rediss+stream:// against a private redis-server that speaks TLS only, requires a client
 * certificate (tls-auth-clients yes) and a password, with a CA and certificates this test makes: a pair
 * over it loses nothing, and each common mistake gets the hint that names its fix.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess, tempDir, type TempDir } from '../support/brokers.js';
import { freePort } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { tcpAnswers } from '../support/services.js';
import { makeTestPki, type TestPki } from '../support/tls-ca.js';
import { connectError, expectCleanPair, expectHint } from '../support/tls-pair.js';

const haveRedis =
  haveCommand('redis-server', 'apt-get install redis-server (built with TLS)') &&
  haveCommand('openssl', 'apt-get install openssl');
const PASSWORD = 'tls-test-secret';
const ENV = { COALMINE_TEST_REDIS_PASSWORD: PASSWORD };

describe.skipIf(!haveRedis)('rediss:// against a private TLS redis-server', () => {
  let dir: TempDir;
  let pki: TestPki;
  let port: number;
  let server: BrokerProcess;

  beforeAll(async () => {
    dir = await tempDir('coalmine-redis-tls-');
    pki = makeTestPki(dir.path);
    port = await freePort();
    const conf = join(dir.path, 'redis.conf');
    await writeFile(
      conf,
      [
        'bind 127.0.0.1',
        'port 0',
        `tls-port ${port}`,
        `tls-cert-file ${pki.serverCert}`,
        `tls-key-file ${pki.serverKey}`,
        `tls-ca-cert-file ${pki.caFile}`,
        'tls-auth-clients yes',
        `requirepass ${PASSWORD}`,
        'save ""',
        'appendonly no',
        `dir ${dir.path}`,
        '',
      ].join('\n'),
    );
    server = new BrokerProcess({
      name: `redis-server (TLS) on port ${port}`,
      command: 'redis-server',
      args: [conf],
      ready: () => tcpAnswers('127.0.0.1', port),
      readyTimeoutMs: 10_000,
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.kill();
    await dir?.remove();
  });

  const good = (scheme = 'rediss', extra = '') =>
    `${scheme}://127.0.0.1:${port}?ca=${pki.caFile}&cert=${pki.clientCert}&key=${pki.clientKey}&passwordEnv=COALMINE_TEST_REDIS_PASSWORD${extra}`;

  it('a pair over rediss:// (CA, client certificate, password from the environment) loses nothing', async () => {
    await expectCleanPair(good(), ENV);
  });

  it('a pair over rediss+stream:// loses nothing', async () => {
    await expectCleanPair(good('rediss+stream'), ENV);
  });

  it('without ca= the certificate is untrusted, and the hint names ca=', async () => {
    const message = await connectError(
      `rediss://127.0.0.1:${port}?cert=${pki.clientCert}&key=${pki.clientKey}&passwordEnv=COALMINE_TEST_REDIS_PASSWORD`,
      ENV,
    );
    expectHint(
      message,
      "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)",
    );
  });

  it('a name the certificate does not carry gets the servername= hint', async () => {
    const message = await connectError(good('rediss', '&servername=wrong.example'), ENV);
    expectHint(
      message,
      "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=",
    );
  });

  it('without a client certificate the handshake is refused, and the hint names cert= and key=', async () => {
    const message = await connectError(
      `rediss://127.0.0.1:${port}?ca=${pki.caFile}&passwordEnv=COALMINE_TEST_REDIS_PASSWORD`,
      ENV,
    );
    // TLS 1.3: the refusal comes after the client's handshake is done, so usually as a reset.
    expect(message).toMatch(
      / — the server (refused|closed the connection during) the TLS handshake.* cert= and key=$/,
    );
  });

  it('redis:// on the TLS port says the port takes TLS only', async () => {
    const message = await connectError(
      `redis://127.0.0.1:${port}?passwordEnv=COALMINE_TEST_REDIS_PASSWORD`,
      ENV,
    );
    expectHint(
      message,
      'the server closed the connection at once: if that port takes TLS only, use rediss://',
    );
  });
});
