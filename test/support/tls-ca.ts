import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files in one directory: a CA, a server certificate it signed, and a client certificate it signed. */
export interface TestPki {
  caFile: string;
  /** For 127.0.0.1 and localhost (DNS:localhost, IP:127.0.0.1), signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** CN=coalmine-client, signed by the CA, for brokers that require a client certificate. */
  clientCert: string;
  clientKey: string;
  /** A second CA the brokers do not know, and a client certificate it signed: it must be refused. */
  strangerCert: string;
  strangerKey: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

/** A certificate `name` of `subject` signed by the CA `ca` in `dir`, with `ext` (openssl extension lines). */
function signed(dir: string, name: string, ca: string, subject: string, ext: string): void {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', key, '-out', csr]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(dir, `${ca}.crt`),
    '-CAkey',
    join(dir, `${ca}.key`),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extFile,
    '-out',
    join(dir, `${name}.crt`),
  ]);
}

function selfSignedCa(dir: string, name: string, subject: string): void {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    subject,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.crt`),
  ]);
}

/**
 * Makes a test PKI in `dir` with the openssl CLI: RSA 2048, valid 2 days. Brokers get the server pair
 * and the CA (to check client certificates); clients get ca= and, where required, the client pair.
 */
export function makeTestPki(dir: string): TestPki {
  selfSignedCa(dir, 'ca', '/CN=coalmine test CA');
  signed(
    dir,
    'server',
    'ca',
    '/CN=localhost',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  const clientExt = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n';
  signed(dir, 'client', 'ca', '/CN=coalmine-client', clientExt);
  selfSignedCa(dir, 'stranger-ca', '/CN=stranger CA');
  signed(dir, 'stranger', 'stranger-ca', '/CN=stranger', clientExt);
  return {
    caFile: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    strangerCert: join(dir, 'stranger.crt'),
    strangerKey: join(dir, 'stranger.key'),
  };
}
