import { describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';

describe('the demo that npm start runs', () => {
  it('probes the example service with all four kinds and prints a live summary', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
    const code = await main(
      ['node', 'coalmine', 'demo', '--listen', '127.0.0.1:0', '--interval', '500ms', '--duration', '3s'],
      io,
      {},
    );
    expect(err.join('\n')).not.toMatch(/unhandled/);
    expect(code).toBe(0);
    const text = out.join('\n');
    expect(text).toContain('coalmine demo');
    // The dashboard URL carries a generated token, as Jupyter's does.
    expect(text).toMatch(/dashboard {8}http:\/\/127\.0\.0\.1:\d+\/\?token=\S{20,}/);
    const final = out.at(-1)!;
    // Two coalminers in two regions receive the canary's pings with nothing lost.
    expect(final).toMatch(/demo-canary -> eu-west\s+eu-west-1\s+[1-9]\d*\s+0\s/);
    expect(final).toMatch(/demo-canary -> ap-southeast\s+ap-southeast-1\s+[1-9]\d*\s+0\s/);
    for (const name of ['example-http', 'example-tcp', 'example-dns']) {
      expect(final).toMatch(new RegExp(`${name}\\s+\\w+\\s+up\\s+(\\d+)/\\1`));
    }
    // ICMP is up where the host allows it; otherwise the row says why.
    expect(final).toMatch(/loopback-icmp\s+icmp\s+(up|DOWN\s.*(permission|unsupported))/);
    // Events go to stderr as JSON lines; the generated token only to stdout, for the person running it.
    const logs = err.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const coalminer of ['eu-west', 'ap-southeast'])
      expect(logs).toContainEqual(
        expect.objectContaining({ msg: 'coalminer registered', canary: 'demo-canary', coalminer }),
      );
    expect(logs.find((l) => l.msg === 'demo started')?.dashboard).toMatch(/\?token=\*\*\*$/);
    const token = /token=(\S+)/.exec(text)![1]!;
    expect(err.join('\n')).not.toContain(token);
  });
});
