/**
 * amqps:// against a private RabbitMQ node whose TLS listener requires a client certificate signed by a
 * CA this test makes (verify_peer, fail_if_no_peer_cert), beside a plain listener, with a user whose
 * password the URL takes from the environment: a pair over it loses nothing, and each common mistake
 * gets the hint that names its fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../support/brokers.js';
import { haveRabbitmqServer, startRabbitmq, type PrivateRabbitmq } from '../support/rabbitmq-server.js';
import { haveCommand } from '../support/require.js';
import { makeTestPki, type TestPki } from '../support/tls-ca.js';
import { connectError, expectCleanPair, expectHint } from '../support/tls-pair.js';

const haveRabbit = haveRabbitmqServer() && haveCommand('openssl', 'apt-get install openssl');
const ENV = { COALMINE_TEST_AMQP_PASSWORD: 'amqp-tls-pass' };

describe.skipIf(!haveRabbit)('amqps:// against a private TLS RabbitMQ', () => {
  let dir: TempDir;
  let pki: TestPki;
  let rabbit: PrivateRabbitmq;

  beforeAll(async () => {
    dir = await tempDir('coalmine-amqp-tls-');
    pki = makeTestPki(dir.path);
    rabbit = await startRabbitmq(
      dir.path,
      [
        `ssl_options.cacertfile = ${pki.caFile}`,
        `ssl_options.certfile = ${pki.serverCert}`,
        `ssl_options.keyfile = ${pki.serverKey}`,
        'ssl_options.verify = verify_peer',
        'ssl_options.fail_if_no_peer_cert = true',
        'default_user = coalmine',
        `default_pass = ${ENV.COALMINE_TEST_AMQP_PASSWORD}`,
      ].join('\n'),
    );
  }, 60_000);
  afterAll(async () => {
    await rabbit?.stop();
    await dir?.remove();
  });

  const client = () => `cert=${pki.clientCert}&key=${pki.clientKey}&passwordEnv=COALMINE_TEST_AMQP_PASSWORD`;

  it('a pair over amqps:// (CA, client certificate, password from the environment) loses nothing', async () => {
    await expectCleanPair(`amqps://coalmine@127.0.0.1:${rabbit.tlsPort}/?ca=${pki.caFile}&${client()}`, ENV);
  });

  it('a pair by the name localhost, checked against the certificate, loses nothing', async () => {
    await expectCleanPair(`amqps://coalmine@localhost:${rabbit.tlsPort}/?ca=${pki.caFile}&${client()}`, ENV);
  });

  it('without ca= the certificate is untrusted, and the hint names ca=', async () => {
    const message = await connectError(`amqps://coalmine@127.0.0.1:${rabbit.tlsPort}/?${client()}`, ENV);
    expectHint(
      message,
      "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)",
    );
  });

  it('a name the certificate does not carry gets the servername= hint', async () => {
    const message = await connectError(
      `amqps://coalmine@127.0.0.1:${rabbit.tlsPort}/?ca=${pki.caFile}&${client()}&servername=wrong.example`,
      ENV,
    );
    expectHint(
      message,
      "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=",
    );
  });

  it('without a client certificate the handshake is refused, and the hint names cert= and key=', async () => {
    const message = await connectError(
      `amqps://coalmine@127.0.0.1:${rabbit.tlsPort}/?ca=${pki.caFile}&passwordEnv=COALMINE_TEST_AMQP_PASSWORD`,
      ENV,
    );
    expect(message).toMatch(
      / — the server (refused|closed the connection during) the TLS handshake.* cert= and key=$/,
    );
  });

  it('a client certificate from a CA the broker does not trust is refused, and the hint names cert=', async () => {
    const message = await connectError(
      `amqps://coalmine@127.0.0.1:${rabbit.tlsPort}/?ca=${pki.caFile}&cert=${pki.strangerCert}&key=${pki.strangerKey}&passwordEnv=COALMINE_TEST_AMQP_PASSWORD`,
      ENV,
    );
    expect(message).toMatch(
      / — the server (refused|closed the connection during) the TLS handshake.* cert= and key=$/,
    );
  });

  it('a wrong password is refused as a login', async () => {
    const message = await connectError(
      `amqps://coalmine:wrong@127.0.0.1:${rabbit.tlsPort}/?ca=${pki.caFile}&cert=${pki.clientCert}&key=${pki.clientKey}`,
    );
    expectHint(message, 'the server refused the login: check the user, password and vhost');
  });

  it('amqp:// on the TLS port says the port takes TLS only', async () => {
    const message = await connectError(
      `amqp://coalmine@127.0.0.1:${rabbit.tlsPort}/?passwordEnv=COALMINE_TEST_AMQP_PASSWORD`,
      ENV,
    );
    expectHint(
      message,
      'the server closed the connection at once: if that port takes TLS only, use amqps://',
    );
  });

  it('amqps:// on the plain port says it does not speak TLS', async () => {
    const message = await connectError(
      `amqps://coalmine@127.0.0.1:${rabbit.port}/?ca=${pki.caFile}&${client()}`,
      ENV,
    );
    expectHint(message, "the server does not speak TLS on that port: use amqp://, or the server's TLS port");
  });
});
