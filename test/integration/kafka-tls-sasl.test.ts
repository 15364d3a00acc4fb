/**
 * Kafka with tls=1 and sasl= against a private single-node KRaft broker this test configures: a SASL_SSL
 * listener with a certificate signed by a CA the test makes, PLAIN (users in its JAAS config) and
 * SCRAM-SHA-256 and SCRAM-SHA-512 (credentials added when its storage is formatted). A pair over each
 * mechanism loses nothing, and each common mistake gets the hint that names its fix.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { tempDir, type TempDir } from '../support/brokers.js';
import { haveKafkaJars, startPrivateKafka, type PrivateKafka } from '../support/kafka-private.js';
import { haveCommand } from '../support/require.js';
import { makeTestPki, type TestPki } from '../support/tls-ca.js';
import { connectError, expectCleanPair, expectHint } from '../support/tls-pair.js';

const haveKafka =
  haveCommand('java', 'apt-get install openjdk-17-jre-headless (Kafka 4 needs Java 17+)') &&
  haveCommand('openssl', 'apt-get install openssl') &&
  haveKafkaJars();

const USER = 'alice';
const PASSWORD = 'alice-secret-7';
const ENV = { COALMINE_TEST_KAFKA_PASSWORD: PASSWORD, COALMINE_TEST_KAFKA_WRONG: 'not-her-password' };
const UNTRUSTED =
  "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)";
const REFUSED_LOGIN = 'the server refused the login: check the SASL user and password';

describe.skipIf(!haveKafka)('kafka tls=1 and sasl= against a private SASL_SSL broker', () => {
  let dir: TempDir;
  let pki: TestPki;
  let kafka: PrivateKafka;

  beforeAll(async () => {
    dir = await tempDir('coalmine-kafka-tls-');
    pki = makeTestPki(dir.path);
    kafka = await startPrivateKafka({ dir: dir.path, pki, user: USER, password: PASSWORD });
  }, 120_000);
  afterAll(async () => {
    await kafka?.stop();
    await dir?.remove();
  });

  const at = (userinfo: string, options: string) => `kafka://${userinfo}@127.0.0.1:${kafka.port}?${options}`;
  const tls = () => `tls=1&ca=${pki.caFile}`;

  for (const sasl of ['plain', 'scram-sha-256', 'scram-sha-512'])
    it(`a pair with sasl=${sasl} loses nothing`, async () => {
      await expectCleanPair(at(`${USER}:${PASSWORD}`, `${tls()}&sasl=${sasl}`));
    });

  it('a pair bootstrapped by the name localhost, password from passwordEnv=, loses nothing', async () => {
    await expectCleanPair(
      `kafka://${USER}@localhost:${kafka.port}?${tls()}&sasl=scram-sha-256&passwordEnv=COALMINE_TEST_KAFKA_PASSWORD`,
      ENV,
    );
  });

  for (const sasl of ['plain', 'scram-sha-256', 'scram-sha-512'])
    it(`a wrong password with sasl=${sasl} is refused, and the hint says to check the credentials`, async () => {
      const message = await connectError(
        at(USER, `${tls()}&sasl=${sasl}&passwordEnv=COALMINE_TEST_KAFKA_WRONG`),
        ENV,
      );
      expectHint(message, REFUSED_LOGIN);
    });

  it('a user the broker does not know is refused like a wrong password', async () => {
    const message = await connectError(at(`mallory:${PASSWORD}`, `${tls()}&sasl=scram-sha-512`));
    expectHint(message, REFUSED_LOGIN);
  });

  // The broker answers nothing but ApiVersions before a SASL login, and closes the connection.
  it('tls=1 without sasl= is turned away, and the hint asks about the SASL credentials', async () => {
    const message = await connectError(`kafka://127.0.0.1:${kafka.port}?${tls()}`);
    expectHint(message, 'is Kafka running there, and are the SASL user and password right?');
  });

  it('without ca= the certificate is untrusted, and the hint names ca=', async () => {
    const message = await connectError(at(`${USER}:${PASSWORD}`, 'tls=1&sasl=plain'));
    expectHint(message, UNTRUSTED);
  });

  it('a name the certificate does not carry gets the servername= hint', async () => {
    const message = await connectError(
      at(`${USER}:${PASSWORD}`, `${tls()}&servername=wrong.example&sasl=plain`),
    );
    expectHint(
      message,
      "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=",
    );
  });

  it('without tls=1 on the SASL_SSL port the hint says to add tls=1', async () => {
    const message = await connectError(at(`${USER}:${PASSWORD}`, 'sasl=plain'));
    expectHint(message, 'the server closed the connection at once: if that port takes TLS only, add tls=1');
  });

  it('without tls=1 and sasl= on the SASL_SSL port the hint says to add tls=1', async () => {
    const message = await connectError(`kafka://127.0.0.1:${kafka.port}`);
    expectHint(message, 'the server closed the connection at once: if that port takes TLS only, add tls=1');
  });

  // A plaintext Kafka listener reads the ClientHello as an oversized request and resets the connection.
  it('tls=1 against a plaintext listener says to leave out tls=1', async () => {
    const message = await connectError(`kafka://127.0.0.1:${kafka.plaintextPort}?${tls()}`);
    expectHint(
      message,
      'the server closed the connection during the TLS handshake: if that port speaks plain kafka, not TLS, leave out tls=1; if it wants a client certificate, give cert= and key=',
    );
  });
});
