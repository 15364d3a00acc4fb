import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { exportCommand } from '../../src/cli/commands/export.js';
import { csvField } from '../../src/store/csv.js';
import { UsageError } from '../../src/core/errors.js';
import { parseTimeSpec } from '../../src/store/time-spec.js';
import type { ProbeRecord } from '../../src/store/types.js';
import { engines } from './store-support.js';

/** Runs `coalmine export ...` and returns what it printed. */
async function runExport(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const program = new Command('coalmine').exitOverride();
  exportCommand(program, { out: (l) => lines.push(l), err: (l) => lines.push(`ERR ${l}`), isTty: false });
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(['node', 'coalmine', 'export', ...args]);
  return lines;
}

/** A strict RFC 4180 reader, to prove the writer's quoting round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

describe('time specs and CSV fields', () => {
  const now = Date.UTC(2024, 4, 1, 12);
  it('parses ISO, Unix ms and relative times, and nothing else', () => {
    expect(parseTimeSpec('2024-05-01T11:00:00Z', now)).toBe(now - 3_600_000);
    expect(parseTimeSpec(String(now), now)).toBe(now);
    expect(parseTimeSpec('-1h', now)).toBe(now - 3_600_000);
    expect(parseTimeSpec('-1d12h', now)).toBe(now - 36 * 3_600_000);
    expect(parseTimeSpec('now', now)).toBe(now);
    for (const bad of ['yesterday', '-5', '12', '2024-13-45', ''])
      expect(parseTimeSpec(bad, now)).toBeUndefined();
  });
  it('quotes what needs quoting', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    // Text a spreadsheet would run as a formula is kept as text; numbers stay numbers.
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('-1+2')).toBe("'-1+2");
    expect(csvField(-1.5)).toBe('-1.5');
    expect(csvField(undefined)).toBe('');
  });
});

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`coalmine export on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());
    const t0 = Date.now() - 3_600_000;
    const runs: ProbeRecord[] = Array.from({ length: 2500 }, (_, i) => ({
      time: t0 + i * 1000,
      name: 'shop, "main"',
      kind: 'http',
      target: 'https://shop.example/?a=1,b=2',
      ok: i % 10 !== 0,
      durationSeconds: 0.01 + i / 1e6,
      phases: { connect: 0.002, processing: 0.005, custom: 0.001 },
      ...(i % 10 === 0
        ? { errorCode: 'http_status', errorMessage: 'status 503, "Service Unavailable"\r\nretry later' }
        : {}),
      ...(i % 7 === 0 ? { values: { http_status_code: 503 } } : {}),
    }));

    it('CSV: every raw row in order, escaped so a CSV reader gets the fields back', async () => {
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      await store.writeProbes(runs);
      const lines = await runExport([
        '--store',
        spec,
        '--target',
        'shop, "main"',
        '--from',
        String(t0),
        '--to',
        'now',
      ]);
      const table = parseCsv(lines.join('\n') + '\n');
      const [header, ...rows] = table;
      expect(rows).toHaveLength(runs.length);
      const col = (n: string) => header!.indexOf(n);
      rows.forEach((r, i) => {
        const want = runs[i]!;
        expect(r).toHaveLength(header!.length);
        expect(Number(r[col('time_ms')])).toBe(want.time);
        expect(r[col('name')]).toBe(want.name);
        expect(r[col('target')]).toBe(want.target);
        expect(r[col('ok')]).toBe(String(want.ok));
        expect(r[col('error_message')]).toBe(want.errorMessage ?? '');
        expect(Number(r[col('duration_seconds')])).toBeCloseTo(want.durationSeconds, 9);
        expect(Number(r[col('connect_seconds')])).toBeCloseTo(0.002, 9);
        expect(JSON.parse(r[col('other_phases')]!)).toEqual({ custom: 0.001 });
        if (want.values) expect(JSON.parse(r[col('values')]!)).toEqual(want.values);
      });
    });

    it('JSON lines, a sub-range, and clear errors', async () => {
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      await store.writeProbes(runs);
      const lines = await runExport([
        '--store',
        spec,
        '--target',
        'shop, "main"',
        '--from',
        String(t0 + 100_000),
        '--to',
        String(t0 + 200_000),
        '--format',
        'jsonl',
      ]);
      const got = lines.map((l) => JSON.parse(l) as ProbeRecord);
      expect(got.map((r) => r.time)).toEqual(runs.slice(100, 200).map((r) => r.time));
      expect(got[0]).toMatchObject({
        ok: false,
        errorCode: 'http_status',
        errorMessage: runs[100]!.errorMessage,
      });
      await expect(runExport(['--store', spec, '--target', 'x', '--format', 'xml'])).rejects.toThrow(
        UsageError,
      );
      await expect(runExport(['--store', spec, '--target', 'x', '--from', 'yesterday'])).rejects.toThrow(
        /--from: expected/,
      );
      await expect(
        runExport(['--store', spec, '--target', 'x', '--from', '-1h', '--to', '-2h']),
      ).rejects.toThrow(/must be after/);
      await expect(runExport(['--store', 'mysql://h/db', '--target', 'x'])).rejects.toThrow(
        /unknown engine "mysql"/,
      );
      await expect(runExport(['--store', 'sqlite:/nonexistent/dir/x.db', '--target', 'x'])).rejects.toThrow(
        /no SQLite store/,
      );
      // An unknown target is an empty export (just the header), not an error.
      expect(await runExport(['--store', spec, '--target', 'nobody'])).toHaveLength(1);
    });
  });
}

describe('openStore errors', () => {
  it('says when PostgreSQL is unreachable', async () => {
    await expect(
      runExport(['--store', 'postgres://postgres@127.0.0.1:1/test', '--target', 'x']),
    ).rejects.toThrow(/cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(connection refused/);
  });
});
