import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { kernelConnectNs } from '../kernel-tcp.js';
import type { TlsOptions } from './options.js';

interface Destroyable {
  destroy(): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

const ignore = (): void => {};

/**
 * Every socket, session, request and stream one probe run opens. A run destroys them all when it
 * ends, however it ends, so a hung or slow server never keeps a socket open past its deadline.
 */
export class OwnedResources {
  readonly #items = new Set<Destroyable>();

  add<T extends Destroyable>(item: T): T {
    // Errors arriving after the run stopped listening (a late RST, a TLS alert) must not crash the process.
    item.on('error', ignore);
    this.#items.add(item);
    return item;
  }

  destroyAll(): void {
    for (const item of this.#items) item.destroy();
    this.#items.clear();
  }
}

/**
 * A TCP connection to an address we resolved ourselves. Rejects with the socket error or on abort.
 * `kernelNs` is the kernel's handshake RTT (see kernel-tcp.ts) when it can be had.
 */
export async function connectTcp(
  address: string,
  family: 4 | 6,
  port: number,
  owned: OwnedResources,
  signal: AbortSignal,
): Promise<{ socket: Socket; kernelNs: bigint | undefined }> {
  const socket = owned.add(netConnect({ host: address, port, family, noDelay: true }));
  await once(socket, 'connect', { signal });
  return { socket, kernelNs: kernelConnectNs(socket) };
}

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the CA, certificate and key files on every run, so rotated files are picked up. */
export async function loadTlsMaterial(tls: TlsOptions): Promise<TlsMaterial> {
  const read = async (field: 'caFile' | 'certFile' | 'keyFile'): Promise<Buffer | undefined> => {
    const file = tls[field];
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new TlsFileError(`cannot read tls.${field} ${file}: ${code ?? String(err)}`, code);
    }
  };
  const [ca, cert, key] = await Promise.all([read('caFile'), read('certFile'), read('keyFile')]);
  return { ca, cert, key };
}

export class TlsFileError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'TlsFileError';
  }
}

/**
 * Runs the TLS handshake over a connected socket. The name for SNI and certificate checks is
 * `serverName`, else the URL host; an IP literal is checked against the certificate's IP SANs and not
 * sent as SNI (RFC 6066 forbids it).
 */
export async function startTls(
  socket: Socket,
  urlHost: string,
  opts: TlsOptions,
  material: TlsMaterial,
  alpn: string[],
  owned: OwnedResources,
  signal: AbortSignal,
): Promise<TLSSocket> {
  const name = opts.serverName ?? urlHost;
  const tlsSocket = owned.add(
    tlsConnect({
      socket,
      host: name,
      servername: isIP(name) === 0 ? name : undefined,
      rejectUnauthorized: !opts.insecureSkipVerify,
      ALPNProtocols: alpn,
      ...material,
    }),
  );
  await once(tlsSocket, 'secureConnect', { signal });
  return tlsSocket;
}

export interface PeerChainSummary {
  /** Unix seconds of the earliest notAfter in the chain. */
  earliestExpiry: number;
  leaf: { subject: string; issuer: string; notAfter: string; fingerprint256: string };
  chainLength: number;
}

/**
 * Summarises the peer's chain as OpenSSL assembled it: the certificates the server sent, plus the
 * trust anchor from our store when it verified. blackbox_exporter uses the sent certificates only; the
 * two differ only when a root expires before everything below it, which is rare and worth knowing.
 */
export function summarizePeerChain(socket: TLSSocket): PeerChainSummary | undefined {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || leaf.raw === undefined) return undefined;
  const chain: DetailedPeerCertificate[] = [];
  const seen = new Set<string>();
  // A self-signed certificate is its own issuer, so stop at the first one seen twice.
  for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw !== undefined; c = c.issuerCertificate) {
    if (seen.has(c.fingerprint256)) break;
    seen.add(c.fingerprint256);
    chain.push(c);
  }
  const expiries = chain.map((c) => Date.parse(c.valid_to) / 1000).filter(Number.isFinite);
  if (expiries.length === 0) return undefined;
  return {
    earliestExpiry: Math.min(...expiries),
    leaf: {
      subject: formatName(leaf.subject),
      issuer: formatName(leaf.issuer),
      notAfter: new Date(Date.parse(leaf.valid_to)).toISOString(),
      fingerprint256: leaf.fingerprint256,
    },
    chainLength: chain.length,
  };
}

function formatName(name: object | undefined): string {
  if (!name) return '';
  return Object.entries(name as Record<string, string | string[]>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
}
