/**
 * NATS decentralised auth made offline for tests: an operator, an account and a user, each an nkey,
 * with the JWTs nsc would write (ed25519-nkey signed, claims version 2), and the user's `.creds` file.
 * The server is given the operator JWT and the account JWT (resolver: MEMORY); the client only the creds.
 */
import { randomBytes } from 'node:crypto';
import { createAccount, createOperator, createUser, type KeyPair } from 'nkeys.js';

const b64url = (data: Uint8Array | string) => Buffer.from(data).toString('base64url');

function jwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims = b64url(
    JSON.stringify({
      jti: randomBytes(16).toString('hex').toUpperCase(),
      iat: Math.floor(Date.now() / 1000),
      iss: issuer.getPublicKey(),
      name,
      sub: subject,
      nats: { ...nats, version: 2 },
    }),
  );
  const signature = issuer.sign(new TextEncoder().encode(`${header}.${claims}`));
  return `${header}.${claims}.${b64url(signature)}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };

export interface NatsOperatorAuth {
  /** For the server's `operator:` (a JWT may be given inline). */
  operatorJwt: string;
  accountPublicKey: string;
  /** For the server's `resolver_preload`. */
  accountJwt: string;
  /** The user's credentials file, as nsc writes it. */
  creds: string;
  /** A second user's creds signed by an account the server does not know: it must be refused. */
  strangerCreds: string;
}

function credsFile(userJwt: string, user: KeyPair): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    userJwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

export function natsOperatorAuth(): NatsOperatorAuth {
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = jwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const accountJwt = jwt(operator, account.getPublicKey(), 'test-account', {
    type: 'account',
    limits: { ...UNLIMITED, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
  });
  const userJwt = jwt(account, user.getPublicKey(), 'test-user', {
    type: 'user',
    pub: {},
    sub: {},
    ...UNLIMITED,
  });
  const stranger = createUser();
  const strangerJwt = jwt(createAccount(), stranger.getPublicKey(), 'stranger', {
    type: 'user',
    pub: {},
    sub: {},
    ...UNLIMITED,
  });
  return {
    operatorJwt,
    accountPublicKey: account.getPublicKey(),
    accountJwt,
    creds: credsFile(userJwt, user),
    strangerCreds: credsFile(strangerJwt, stranger),
  };
}
