import { afterEach, describe, expect, it } from 'vitest';
import { toReport } from '../../core/report.js';
import type { ProbeResult } from '../../core/types.js';
import type { TargetSummary } from './contract.js';
import { MemoryContext } from '../../../test/support/memory-context.js';
import { openApiDocument } from './openapi.js';
import { closeServedApis, READ, serveApi } from '../../../test/support/serve-api.js';

afterEach(closeServedApis);

const report = (name: string, result: ProbeResult) =>
  toReport({ name, kind: 'tcp', target: `${name}:1`, startedAtMs: 1_700_000_000_000, result });

describe("the API's last run carries wall time and network time apart", () => {
  it('durationSeconds is the wall time, networkSeconds the network time of a success', async () => {
    const ctx = new MemoryContext({
      targets: ['up', 'down'].map((name) => ({
        name,
        kind: 'tcp',
        target: `${name}:1`,
        intervalSeconds: 15,
      })),
    });
    ctx.record(
      report('up', { ok: true, durationNs: 230_000n, networkNs: 11_000n, phases: { connect: 11_000n } }),
    );
    ctx.record(
      report('down', {
        ok: false,
        durationNs: 2_000_000_000n,
        phases: {},
        error: { code: 'timeout', message: 'no answer' },
      }),
    );
    const { origin } = await serveApi(ctx, { rateLimit: false });
    const res = await fetch(`${origin}/api/v1/targets`, { headers: { authorization: `Bearer ${READ}` } });
    const { targets } = (await res.json()) as { targets: TargetSummary[] };
    const byName = new Map(targets.map((t) => [t.name, t.last]));
    expect(byName.get('up')).toMatchObject({ durationSeconds: 0.00023, networkSeconds: 0.000011 });
    expect(byName.get('down')?.durationSeconds).toBe(2);
    expect(byName.get('down')).not.toHaveProperty('networkSeconds');
  });

  it('the OpenAPI document names the field wherever a last run or a report is described', () => {
    type Schema = { properties: Record<string, { properties?: Record<string, unknown> }> };
    const doc = openApiDocument('9.9.9') as unknown as { components: { schemas: Record<string, Schema> } };
    const schemas = doc.components.schemas;
    expect(schemas.ProbeReport!.properties).toHaveProperty('networkSeconds');
    expect(schemas.TargetSummary!.properties.last!.properties).toHaveProperty('networkSeconds');
  });
});
