import type { Logger } from '../core/log.js';
import type { Observation } from '../core/types.js';

/**
 * An observation listener that logs when a target goes down (warn, with the probe's error) and comes back
 * up (info, with how long it was down). Every result is in the metrics and the store; the log gets the
 * changes, so it stays readable with many targets on short intervals.
 */
export function logProbeTransitions(log: Logger): (o: Observation) => void {
  const downSince = new Map<string, number>();
  const seen = new Set<string>();
  return (o) => {
    const fields = { component: 'probe', target: o.name, kind: o.kind, address: o.target };
    const wasDown = downSince.get(o.name);
    const first = !seen.has(o.name);
    seen.add(o.name);
    if (!o.result.ok) {
      if (wasDown !== undefined) return;
      downSince.set(o.name, o.startedAtMs);
      log.warn('target down', { ...fields, err: o.result.error });
    } else if (wasDown !== undefined) {
      downSince.delete(o.name);
      log.info('target up', { ...fields, downMs: Math.max(0, o.startedAtMs - wasDown) });
    } else if (first) {
      log.debug('target up', fields);
    }
  };
}
