import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import { startBlackboxExporter, type BlackboxExporter } from '../../test/support/blackbox.js';
import { haveCommand } from '../../test/support/require.js';
import { probes, type ProbeKind } from './registry.js';
import { runProbe } from './run.js';

/**
 * One case: a blackbox_exporter module (its YAML under `tcp:` or `http:`) and the same check in our
 * options. Both probe the same local server in the same run, and must agree on success.
 */
interface Case {
  name: string;
  kind: 'tcp' | 'http';
  blackbox: string;
  ours: Record<string, unknown>;
  ok: boolean;
}

const BANNER = '220 hello\r\nSSH-2.0-OpenSSH_9\r\n';

const cases: Case[] = [
  {
    name: 'tcp ^ anchors at a later line',
    kind: 'tcp',
    blackbox: 'query_response: [{ expect: "^SSH-2.0-" }]',
    ours: { exchange: [{ expect: '^SSH-2.0-' }] },
    ok: true,
  },
  {
    name: 'tcp $ anchors at the end of a line',
    kind: 'tcp',
    blackbox: 'query_response: [{ expect: "hello$" }]',
    ours: { exchange: [{ expect: 'hello$' }] },
    ok: true,
  },
  {
    name: 'tcp expects in order, each after the line the last matched',
    kind: 'tcp',
    blackbox: 'query_response: [{ expect: "^220" }, { expect: "^SSH" }]',
    ours: { exchange: [{ expect: '^220' }, { expect: '^SSH' }] },
    ok: true,
  },
  {
    name: 'tcp a consumed line does not match again',
    kind: 'tcp',
    blackbox: 'query_response: [{ expect: "SSH" }, { expect: "^220" }]',
    ours: { exchange: [{ expect: 'SSH' }, { expect: '^220' }] },
    ok: false,
  },
  {
    name: 'tcp no line matches before the close',
    kind: 'tcp',
    blackbox: 'query_response: [{ expect: "^SMTP" }]',
    ours: { exchange: [{ expect: '^SMTP' }] },
    ok: false,
  },
  {
    name: 'http header matches: one of two values',
    kind: 'http',
    blackbox: 'fail_if_header_matches: [{ header: x-cache, regexp: "^MISS$" }]',
    ours: { failIfHeaderMatchesRegexp: [{ header: 'x-cache', regexp: '^MISS$' }] },
    ok: false,
  },
  {
    name: 'http header matches: no value',
    kind: 'http',
    blackbox: 'fail_if_header_matches: [{ header: X-Cache, regexp: "^STALE$" }]',
    ours: { failIfHeaderMatchesRegexp: [{ header: 'X-Cache', regexp: '^STALE$' }] },
    ok: true,
  },
  {
    name: 'http header not matches: one of two values matches',
    kind: 'http',
    blackbox: 'fail_if_header_not_matches: [{ header: X-Cache, regexp: "^MISS$" }]',
    ours: { failIfHeaderNotMatchesRegexp: [{ header: 'X-Cache', regexp: '^MISS$' }] },
    ok: true,
  },
  {
    name: 'http header not matches: none does',
    kind: 'http',
    blackbox: 'fail_if_header_not_matches: [{ header: X-Cache, regexp: "^STALE$" }]',
    ours: { failIfHeaderNotMatchesRegexp: [{ header: 'X-Cache', regexp: '^STALE$' }] },
    ok: false,
  },
  ...(['matches', 'not_matches'] as const).flatMap((which): Case[] => {
    const key = which === 'matches' ? 'failIfHeaderMatchesRegexp' : 'failIfHeaderNotMatchesRegexp';
    return [
      {
        name: `http header ${which}: missing`,
        kind: 'http',
        blackbox: `fail_if_header_${which}: [{ header: X-Debug, regexp: "on" }]`,
        ours: { [key]: [{ header: 'X-Debug', regexp: 'on' }] },
        ok: false,
      },
      {
        name: `http header ${which}: missing, allowMissing`,
        kind: 'http',
        blackbox: `fail_if_header_${which}: [{ header: X-Debug, regexp: "on", allow_missing: true }]`,
        ours: { [key]: [{ header: 'X-Debug', regexp: 'on', allowMissing: true }] },
        ok: true,
      },
    ];
  }),
];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

describe('against blackbox_exporter in the same run: TCP expect and HTTP header checks', () => {
  const have = haveCommand('prometheus-blackbox-exporter', 'apt-get install prometheus-blackbox-exporter');
  let exporter: BlackboxExporter | undefined;
  const sockets = new Set<Socket>();
  const banner = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.end(BANNER);
  });
  const web = createHttpServer((_req, res) => {
    res.setHeader('X-Cache', ['HIT', 'MISS']);
    res.setHeader('Server', 'nginx/1.25');
    res.end('ok');
  });
  const targets: Record<Case['kind'], string> = { tcp: '', http: '' };

  beforeAll(async () => {
    targets.tcp = `127.0.0.1:${await listen(banner)}`;
    targets.http = `http://127.0.0.1:${await listen(web)}/`;
    if (!have) return;
    const modules = cases.map(
      (c, i) => `  m${i}:\n    prober: ${c.kind}\n    timeout: 2s\n    ${c.kind}:\n      ${c.blackbox}\n`,
    );
    exporter = await startBlackboxExporter(`modules:\n${modules.join('')}`);
  });
  afterAll(() => {
    exporter?.close();
    for (const s of sockets) s.destroy();
    banner.close();
    web.close();
  });

  cases.forEach((c, i) => {
    it.skipIf(!have)(`${c.name}: both ${c.ok ? 'succeed' : 'fail'}`, async () => {
      const text = await exporter!.probe(`m${i}`, targets[c.kind]);
      expect(text, 'blackbox_exporter').toMatch(new RegExp(`^probe_success ${c.ok ? 1 : 0}$`, 'm'));
      const kind: ProbeKind = c.kind;
      const ours = await runProbe(kind, targets[c.kind], probes[kind].options.parse(c.ours), {
        clock: systemClock,
        timeoutMs: 2000,
      });
      expect(ours.ok, `coalmine: ${ours.ok ? 'succeeded' : ours.error.message}`).toBe(c.ok);
    });
  });
});
