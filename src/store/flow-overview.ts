import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Accumulator, FLOW, HOUR, MINUTE, percentiles, type RawFlowRow } from './aggregate.js';
import type { FlowOverview } from './types.js';

/**
 * The overview of every flow at once (GET /api/v1/flows): the window and per-minute points of a range of
 * raw flow intervals, from one read of every flow series' rows instead of a window and a series query
 * per flow. The figures are the ones flowWindow and flowSeries give over a range they read from raw rows
 * (the same Accumulator, so counts, gauges and percentiles are identical).
 */

/** A raw flow interval with its series' key (flowKey of canary and coalminer). */
export interface KeyedFlowRow extends RawFlowRow {
  key: string;
}

/** How long the work runs before letting the event loop go: probes run on the same thread. */
const SLICE_MS = 5;
/** Longest range: raw flow rows are read for it, and the router asks for an hour. */
export const FLOW_OVERVIEW_MAX_MS = 6 * HOUR;

/** Checks an overview's range: whole minutes, to after from, at most `maxMs` long. */
export function checkOverviewRange(from: number, to: number, maxMs: number): void {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from % MINUTE !== 0 || to % MINUTE !== 0)
    throw new RangeError(
      `an overview covers whole minutes: from ${from} and to ${to} must be multiples of 60000`,
    );
  if (to <= from) throw new RangeError(`to (${to}) must be after from (${from})`);
  if (to - from > maxMs) throw new RangeError(`an overview covers at most ${maxMs / HOUR} h`);
}

const seconds = (ns: number): number | null => (Number.isFinite(ns) ? ns / 1e9 : null);

/**
 * For each key, in order, over [from, to): the window over every row and a point per minute. `rows`
 * are the raw intervals of every flow series with from <= time < to, in time order (rows of keys not
 * asked for are skipped).
 */
export async function flowOverviewOf(
  keys: readonly string[],
  from: number,
  to: number,
  rows: readonly KeyedFlowRow[],
): Promise<FlowOverview[]> {
  const steps = (to - from) / MINUTE;
  const byKey = new Map<string, { window: Accumulator; minutes: (Accumulator | undefined)[] }>();
  for (const k of keys)
    if (!byKey.has(k))
      byKey.set(k, { window: new Accumulator(FLOW), minutes: new Array<Accumulator | undefined>(steps) });
  let slice = performance.now() + SLICE_MS;
  for (let i = 0; i < rows.length; i++) {
    if (i % 256 === 0 && performance.now() > slice) {
      await yieldToLoop();
      slice = performance.now() + SLICE_MS;
    }
    const r = rows[i]!;
    const f = byKey.get(r.key);
    if (!f || r.time < from || r.time >= to) continue;
    f.window.addFlow(r);
    const k = Math.floor((r.time - from) / MINUTE);
    (f.minutes[k] ??= new Accumulator(FLOW)).addFlow(r);
  }
  const out: FlowOverview[] = [];
  for (const key of keys) {
    const { window: w, minutes } = byKey.get(key)!;
    const [received, lost] = w.counts as [number, number];
    const { p50, p95, p99 } = percentiles(w.hist);
    const points: FlowOverview['points'] = new Array(steps);
    for (let k = 0; k < steps; k++) {
      const m = minutes[k];
      points[k] = {
        time: from + k * MINUTE,
        p50: m && m.hist.count > 0 ? seconds(m.hist.percentile(50)) : null,
        failures: m ? m.counts[1]! : 0,
      };
    }
    out.push({
      window: {
        p50,
        p95,
        p99,
        lossRatio: received + lost > 0 ? lost / (received + lost) : null,
        received,
      },
      points,
    });
    if (performance.now() > slice) {
      await yieldToLoop();
      slice = performance.now() + SLICE_MS;
    }
  }
  return out;
}
