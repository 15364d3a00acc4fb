import { promises as dnsPromises } from 'node:dns';
import type { Answer } from 'dns-packet';
import type { ProbeError } from '../../core/types.js';
import { toProbeError } from '../net-errors.js';
import { raceAbort } from '../resolve.js';
import type { RecordType } from './records.js';

/** What the system resolver told us, shaped like the parts of a DNS response it exposes. */
export type SystemOutcome =
  | { kind: 'answer'; rcode: number; answers: Answer[]; cause?: string }
  | { kind: 'failed'; error: ProbeError };

/** c-ares and getaddrinfo report a response code as an error code; these are the ones that are answers. */
const RCODE_BY_ERROR: Record<string, number> = {
  ENODATA: 0,
  EFORMERR: 1,
  ESERVFAIL: 2,
  ENOTFOUND: 3,
  ENOTIMP: 4,
  EREFUSED: 5,
};

/**
 * Asks the system resolver. A and AAAA go through getaddrinfo (so /etc/hosts and nsswitch apply, as for
 * every other program on the host); other types through c-ares with the servers in /etc/resolv.conf.
 * Neither exposes the raw response, so TTLs read 0 and authority/additional sections are unknown.
 */
export async function querySystem(
  name: string,
  type: RecordType,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<SystemOutcome> {
  const rr = <T extends Answer['type'], D>(t: T, data: D) =>
    ({ type: t, name, ttl: 0, class: 'IN', data }) as Answer;
  const resolver = new dnsPromises.Resolver({ timeout: Math.max(1, Math.round(timeoutMs)), tries: 1 });
  const onAbort = () => resolver.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    let answers: Answer[];
    switch (type) {
      case 'A':
      case 'AAAA': {
        const found = await raceAbort(
          dnsPromises.lookup(name, { family: type === 'A' ? 4 : 6, all: true, verbatim: true }),
          signal,
        );
        answers = found.map((a) => rr(type, a.address));
        break;
      }
      case 'CNAME':
        answers = (await resolver.resolveCname(name)).map((c) => rr('CNAME', c));
        break;
      case 'NS':
        answers = (await resolver.resolveNs(name)).map((n) => rr('NS', n));
        break;
      case 'PTR':
        answers = (await resolver.resolvePtr(name)).map((p) => rr('PTR', p));
        break;
      case 'MX':
        answers = (await resolver.resolveMx(name)).map((m) =>
          rr('MX', { preference: m.priority, exchange: m.exchange }),
        );
        break;
      case 'TXT':
        answers = (await resolver.resolveTxt(name)).map((chunks) =>
          rr(
            'TXT',
            chunks.map((c) => Buffer.from(c)),
          ),
        );
        break;
      case 'SRV':
        answers = (await resolver.resolveSrv(name)).map((s) =>
          rr('SRV', { priority: s.priority, weight: s.weight, port: s.port, target: s.name }),
        );
        break;
      case 'SOA': {
        const s = await resolver.resolveSoa(name);
        answers = [
          rr('SOA', {
            mname: s.nsname,
            rname: s.hostmaster,
            serial: s.serial,
            refresh: s.refresh,
            retry: s.retry,
            expire: s.expire,
            minimum: s.minttl,
          }),
        ];
        break;
      }
      case 'CAA':
        answers = (await resolver.resolveCaa(name)).flatMap((c) => {
          const flags = c.critical;
          const pairs: [string, string | undefined][] = [
            ['issue', c.issue],
            ['issuewild', c.issuewild],
            ['iodef', c.iodef],
          ];
          return pairs
            .filter(([, v]) => v !== undefined)
            .map(([tag, value]) => rr('CAA', { flags, tag, value }));
        });
        break;
    }
    return { kind: 'answer', rcode: 0, answers };
  } catch (err) {
    if (signal.aborted) return { kind: 'failed', error: toProbeError(err, { aborted: true, timeoutMs }) };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code in RCODE_BY_ERROR) {
      return { kind: 'answer', rcode: RCODE_BY_ERROR[code]!, answers: [], cause: code };
    }
    if (code === 'ETIMEOUT')
      return {
        kind: 'failed',
        error: { code: 'timeout', message: `system resolver timed out`, cause: code },
      };
    return { kind: 'failed', error: toProbeError(err) };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
