/**
 * NATS with tls=1 against private nats-servers that require TLS and a client certificate signed by a CA
 * this test makes (verify: true), one per way to log in: user and password (passwordEnv=), a token
 * (tokenEnv=), and decentralised JWT auth (an operator, an account and a user made offline, the user's
 * creds=FILE). A pair over each loses nothing, and each common mistake gets the hint that names its fix.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../support/brokers.js';
import { natsOperatorAuth } from '../support/nats-jwt.js';
import { NATS_SERVER, startNatsServer, type PrivateNatsServer } from '../support/nats-server.js';
import { haveCommand } from '../support/require.js';
import { makeTestPki, type TestPki } from '../support/tls-ca.js';
import { connectError, expectCleanPair, expectHint } from '../support/tls-pair.js';

const haveNats =
  haveCommand(NATS_SERVER, 'apt-get install nats-server') &&
  haveCommand('openssl', 'apt-get install openssl');

const ENV = { COALMINE_TEST_NATS_PASSWORD: 'nats-pass', COALMINE_TEST_NATS_TOKEN: 'nats-token-1' };
const UNTRUSTED =
  "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)";
const REFUSED_LOGIN = 'the server refused the login: check the user and password, token or creds file';

describe.skipIf(!haveNats)('nats tls=1 against private TLS nats-servers', () => {
  let dir: TempDir;
  let pki: TestPki;
  let users: PrivateNatsServer;
  let tokens: PrivateNatsServer;
  let operator: PrivateNatsServer;
  let plain: PrivateNatsServer;
  let credsFile: string;
  let strangerCredsFile: string;

  beforeAll(async () => {
    dir = await tempDir('coalmine-nats-tls-');
    pki = makeTestPki(dir.path);
    const tls = `tls {\n  cert_file: "${pki.serverCert}"\n  key_file: "${pki.serverKey}"\n  ca_file: "${pki.caFile}"\n  verify: true\n  timeout: 2\n}`;
    const auth = natsOperatorAuth();
    credsFile = join(dir.path, 'user.creds');
    strangerCredsFile = join(dir.path, 'stranger.creds');
    await writeFile(credsFile, auth.creds);
    await writeFile(strangerCredsFile, auth.strangerCreds);
    [users, tokens, operator, plain] = await Promise.all([
      startNatsServer(
        dir.path,
        'users',
        `${tls}\njetstream { store_dir: "${join(dir.path, 'js')}" }\nauthorization { users: [ { user: app, password: "${ENV.COALMINE_TEST_NATS_PASSWORD}" } ] }`,
      ),
      startNatsServer(
        dir.path,
        'tokens',
        `${tls}\nauthorization { token: "${ENV.COALMINE_TEST_NATS_TOKEN}" }`,
      ),
      startNatsServer(
        dir.path,
        'operator',
        `${tls}\noperator: ${auth.operatorJwt}\nresolver: MEMORY\nresolver_preload: { ${auth.accountPublicKey}: ${auth.accountJwt} }`,
      ),
      startNatsServer(dir.path, 'plain', ''),
    ]);
  });
  afterAll(async () => {
    await Promise.all([users, tokens, operator, plain].map((s) => s?.stop()));
    await dir?.remove();
  });

  const tlsOpts = () => `tls=1&ca=${pki.caFile}&cert=${pki.clientCert}&key=${pki.clientKey}`;

  it('a pair with user and passwordEnv= loses nothing', async () => {
    await expectCleanPair(
      `nats://app@127.0.0.1:${users.port}?${tlsOpts()}&passwordEnv=COALMINE_TEST_NATS_PASSWORD`,
      ENV,
    );
  });

  it('a JetStream pair by the name localhost loses nothing', async () => {
    await expectCleanPair(
      `nats+jetstream://app@localhost:${users.port}?${tlsOpts()}&passwordEnv=COALMINE_TEST_NATS_PASSWORD`,
      ENV,
    );
  });

  it('a pair with tokenEnv= loses nothing', async () => {
    await expectCleanPair(
      `nats://127.0.0.1:${tokens.port}?${tlsOpts()}&tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
  });

  it('a pair with creds= (operator, account and user JWTs) loses nothing', async () => {
    await expectCleanPair(`nats://127.0.0.1:${operator.port}?${tlsOpts()}&creds=${credsFile}`);
  });

  it('creds= of an account the server does not know is refused, and the hint names the creds file', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${operator.port}?${tlsOpts()}&creds=${strangerCredsFile}`,
    );
    expectHint(message, REFUSED_LOGIN);
  });

  it('creds= naming a file that is not a creds file is refused before connecting', async () => {
    await expect(
      connectError(`nats://127.0.0.1:${operator.port}?${tlsOpts()}&creds=${pki.caFile}`),
    ).rejects.toThrow(
      `creds=${pki.caFile} is not a NATS credentials file (it needs a user JWT and its nkey seed, as nsc writes)`,
    );
  });

  it('a wrong password from passwordEnv= is refused, and the hint says to check it', async () => {
    const message = await connectError(
      `nats://app@127.0.0.1:${users.port}?${tlsOpts()}&passwordEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(message, REFUSED_LOGIN);
  });

  it('without ca= the certificate is untrusted, and the hint names ca=', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${tokens.port}?tls=1&cert=${pki.clientCert}&key=${pki.clientKey}&tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(message, UNTRUSTED);
  });

  // nats.js starts TLS whenever the server requires it, so leaving out tls=1 is the same mistake.
  it('without tls=1 on a TLS-only server the certificate is checked all the same', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${tokens.port}?tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(message, UNTRUSTED);
  });

  it('a name the certificate does not carry gets the servername= hint', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${tokens.port}?${tlsOpts()}&servername=wrong.example&tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(
      message,
      "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=",
    );
  });

  // TLS 1.3: the server refuses the certificate after our side of the handshake is done, and nats.js
  // then only times out (5 s), so these two wait.
  it('without a client certificate the server goes quiet, and the hint names cert= and key=', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${tokens.port}?tls=1&ca=${pki.caFile}&tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(
      message,
      'the connection went quiet after the TLS handshake: if the server verifies client certificates, give one with cert= and key=',
    );
  });

  it('a client certificate from a CA the server does not trust gets the hint to use a trusted one', async () => {
    const message = await connectError(
      `nats://127.0.0.1:${tokens.port}?tls=1&ca=${pki.caFile}&cert=${pki.strangerCert}&key=${pki.strangerKey}&tokenEnv=COALMINE_TEST_NATS_TOKEN`,
      ENV,
    );
    expectHint(
      message,
      'the connection went quiet after the TLS handshake: if the server verifies client certificates, give one signed by a CA it trusts with cert= and key=',
    );
  });

  it('tls=1 against a server without TLS says to leave out tls=1', async () => {
    const message = await connectError(`nats://127.0.0.1:${plain.port}?${tlsOpts()}`);
    expectHint(
      message,
      "the server does not speak TLS on that port: leave out tls=1, or the server's TLS port",
    );
  });
});
