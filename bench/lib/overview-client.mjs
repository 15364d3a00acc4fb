// @ts-check
/**
 * The HTTP client of bench/overview.mjs, in a worker thread: reading and parsing a 20 MB answer on the
 * server's own thread would count as the server's event-loop block. Messages: { id, url, token, keep }
 * fetches url (keep: 'ours' | 'peer' keeps the parsed targets) and answers { id, ms, status }, ms until
 * the last byte arrived (keepText: 'ours' | 'old' keeps the body as received); { id, compare: n } answers
 * { id, wrong, windowRuns } for the kept pair; { id, compareText: true } answers { id, differ }: null when
 * the kept bodies of ours and the old path are the same bytes, else where they part.
 */
import { parentPort } from 'node:worker_threads';

/** @type {Record<string, any[]>} */
const kept = {};
/** Answers' bodies as received (keepText), for the byte-for-byte comparison. @type {Record<string, string>} */
const keptText = {};

/** Where two bodies first differ, or null when they are the same bytes. */
function differ(a = '', b = '') {
  if (a === b) return a.length > 0 ? null : 'no body kept';
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `bodies differ at byte ${i} of ${a.length} / ${b.length}: ${JSON.stringify(a.slice(i, i + 60))} against ${JSON.stringify(b.slice(i, i + 60))}`;
}

/** Where ours and the peer disagree, if anywhere (runs and failures exactly, percentiles within 0.1 %). */
function compare(ours, peer, n) {
  if (ours.length !== n || peer.length !== n)
    return `targets listed: ours ${ours.length}, peer ${peer.length}, of ${n}`;
  for (let i = 0; i < n; i++) {
    const a = ours[i];
    const b = peer[i];
    if (a.name !== b.name) return `target ${i}: ${a.name} against ${b.name}`;
    if (a.window.runs !== b.window.runs) return `${a.name}: runs ${a.window.runs} against ${b.window.runs}`;
    for (const k of ['p50', 'p95']) {
      const x = a.window[k];
      const y = b.window[k];
      if ((x === null) !== (y === null) || (y !== null && Math.abs(x - y) / y > 1e-3))
        return `${a.name}: ${k} ${x} against ${y}`;
    }
    if (a.sparkline.length !== b.sparkline.length) return `${a.name}: sparkline length`;
    for (let k = 0; k < a.sparkline.length; k++)
      if (a.sparkline[k][0] !== b.sparkline[k][0] || a.sparkline[k][2] !== b.sparkline[k][2])
        return `${a.name}: sparkline point ${k} ${JSON.stringify(a.sparkline[k])} against ${JSON.stringify(b.sparkline[k])}`;
  }
  return null;
}

/** The same for flows: received, loss ratio and sparkline failures exactly, percentiles within 0.1 %. */
function compareFlows(ours, peer, n) {
  if (ours.length !== n || peer.length !== n)
    return `flows listed: ours ${ours.length}, peer ${peer.length}, of ${n}`;
  for (let i = 0; i < n; i++) {
    const a = ours[i];
    const b = peer[i];
    const name = `${a.canary}/${a.coalminer}`;
    if (a.canary !== b.canary || a.coalminer !== b.coalminer)
      return `flow ${i}: ${name} against ${b.canary}/${b.coalminer}`;
    for (const k of ['received', 'lossRatio'])
      if (a.window[k] !== b.window[k]) return `${name}: ${k} ${a.window[k]} against ${b.window[k]}`;
    for (const k of ['p50', 'p95', 'p99']) {
      const x = a.window[k];
      const y = b.window[k];
      if ((x === null) !== (y === null) || (y !== null && Math.abs(x - y) / y > 1e-3))
        return `${name}: ${k} ${x} against ${y}`;
    }
    if (a.sparkline.length !== b.sparkline.length) return `${name}: sparkline length`;
    for (let k = 0; k < a.sparkline.length; k++)
      if (a.sparkline[k][0] !== b.sparkline[k][0] || a.sparkline[k][2] !== b.sparkline[k][2])
        return `${name}: sparkline point ${k} ${JSON.stringify(a.sparkline[k])} against ${JSON.stringify(b.sparkline[k])}`;
  }
  return null;
}

parentPort?.on('message', async (m) => {
  if (m.compareText) {
    parentPort?.postMessage({ id: m.id, differ: differ(keptText.ours, keptText.old) });
    return;
  }
  if (m.compare !== undefined) {
    const ours = kept.ours ?? [];
    const flows = m.list === 'flows';
    const windowRuns = ours.reduce((s, t) => s + (flows ? t.window.received : t.window.runs), 0);
    const wrong =
      (flows ? compareFlows : compare)(ours, kept.peer ?? [], m.compare) ??
      (windowRuns > 0 ? null : 'no runs in the window');
    parentPort?.postMessage({ id: m.id, wrong, windowRuns });
    return;
  }
  const t0 = performance.now();
  const res = await fetch(m.url, { headers: { authorization: `Bearer ${m.token}` } });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200)
    return parentPort?.postMessage({ id: m.id, ms, status: res.status, error: text.slice(0, 200) });
  if (m.keepText) keptText[m.keepText] = text;
  if (m.keep) kept[m.keep] = JSON.parse(text)[m.list ?? 'targets'];
  parentPort?.postMessage({ id: m.id, ms, status: res.status });
});
