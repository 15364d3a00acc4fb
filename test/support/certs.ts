import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** The certificate's notAfter, in Unix seconds. */
  notAfterSeconds: number;
}

/** A self-signed certificate made by the openssl CLI, for TLS servers the tests start. */
export function selfSignedCert(
  dir: string,
  name: string,
  opts: { subject?: string; san?: string; days?: number } = {},
): SelfSignedCert {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      String(opts.days ?? 2),
      '-subj',
      opts.subject ?? '/CN=localhost',
      ...(opts.san === '' ? [] : ['-addext', `subjectAltName=${opts.san ?? 'DNS:localhost,IP:127.0.0.1'}`]),
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  const end = execFileSync('openssl', ['x509', '-enddate', '-noout', '-in', certFile], { encoding: 'utf8' });
  return {
    certFile,
    keyFile,
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    notAfterSeconds: Date.parse(end.trim().replace(/^notAfter=/, '')) / 1000,
  };
}
