import { memo } from 'preact/compat';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { FlowSummary, Status, TargetSummary } from '../../../src/api/v1/contract.js';
import { Sparkline } from '../components/Sparkline.js';
import { formatAgo, formatRatio, formatSeconds } from '../format.js';
import type { LiveState } from '../live.js';
import { flowHref, targetHref } from '../router.js';
import type { Palette } from '../theme.js';

type Row =
  { type: 'target'; key: string; item: TargetSummary } | { type: 'flow'; key: string; item: FlowSummary };
type SortKey = 'status' | 'name' | 'p95' | 'loss';

const ROW_HEIGHT = 48;
const OVERSCAN = 8;

const statusRank: Record<Status, number> = { down: 0, unknown: 1, up: 2 };

function rowName(r: Row): string {
  return r.type === 'target' ? r.item.name : `${r.item.canary} → ${r.item.coalminer}`;
}
function rowP95(r: Row): number | null {
  return r.item.window.p95;
}
function rowLoss(r: Row): number | null {
  if (r.type === 'flow') return r.item.window.lossRatio;
  const s = r.item.window.successRatio;
  return s === null ? null : 1 - s;
}
function haystack(r: Row): string {
  if (r.type === 'target') {
    const t = r.item;
    return `${t.name} ${t.kind} ${t.target} ${t.status}`.toLowerCase();
  }
  const f = r.item;
  return `${f.canary} ${f.coalminer} ${f.transport} ${f.region} ${f.status} flow`.toLowerCase();
}

export function Overview({ live, palette }: { live: LiveState; palette: Palette }) {
  const [query, setQuery] = useState('');
  const [only, setOnly] = useState<'all' | 'targets' | 'flows' | 'down'>('all');
  const [sort, setSort] = useState<SortKey>('status');
  const version = live.version;

  const all = useMemo<Row[]>(() => {
    const rows: Row[] = [];
    for (const t of live.targets.values()) rows.push({ type: 'target', key: `t:${t.name}`, item: t });
    for (const f of live.flows.values())
      rows.push({ type: 'flow', key: `f:${f.canary}/${f.coalminer}`, item: f });
    return rows;
  }, [version]);

  // Sorting by status or figures would make rows jump on every event; the order is taken when the
  // sort or the set of rows changes, and rows keep their place while their values update.
  const orderKey = `${sort}|${live.targets.size}|${live.flows.size}`;
  const order = useMemo(() => {
    const rows = all.slice();
    const byName = (a: Row, b: Row) => rowName(a).localeCompare(rowName(b));
    const nullsLast = (a: number | null, b: number | null) =>
      a === null ? (b === null ? 0 : 1) : b === null ? -1 : b - a;
    rows.sort((a, b) => {
      if (sort === 'status') return statusRank[a.item.status] - statusRank[b.item.status] || byName(a, b);
      if (sort === 'p95') return nullsLast(rowP95(a), rowP95(b)) || byName(a, b);
      if (sort === 'loss') return nullsLast(rowLoss(a), rowLoss(b)) || byName(a, b);
      return byName(a, b);
    });
    return new Map(rows.map((r, i) => [r.key, i]));
  }, [orderKey]);

  const shown = useMemo(() => {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = all.filter((r) => {
      if (only === 'targets' && r.type !== 'target') return false;
      if (only === 'flows' && r.type !== 'flow') return false;
      if (only === 'down' && r.item.status !== 'down') return false;
      if (words.length === 0) return true;
      const h = haystack(r);
      return words.every((w) => h.includes(w));
    });
    rows.sort((a, b) => (order.get(a.key) ?? 1e9) - (order.get(b.key) ?? 1e9));
    return rows;
  }, [all, query, only, order]);

  let up = 0;
  let down = 0;
  for (const r of all) {
    if (r.item.status === 'up') up++;
    else if (r.item.status === 'down') down++;
  }

  return (
    <section class="overview">
      <div class="toolbar">
        <input
          type="search"
          class="filter"
          placeholder="Filter by name, kind, address, region…"
          aria-label="Filter"
          value={query}
          onInput={(e) => setQuery((e.currentTarget as HTMLInputElement).value)}
        />
        <select
          aria-label="Show"
          value={only}
          onChange={(e) => setOnly((e.currentTarget as HTMLSelectElement).value as typeof only)}
        >
          <option value="all">Targets and flows</option>
          <option value="targets">Targets</option>
          <option value="flows">Flows</option>
          <option value="down">Down only</option>
        </select>
        <select
          aria-label="Sort"
          value={sort}
          onChange={(e) => setSort((e.currentTarget as HTMLSelectElement).value as SortKey)}
        >
          <option value="status">Down first</option>
          <option value="name">Name</option>
          <option value="p95">Slowest p95</option>
          <option value="loss">Most loss</option>
        </select>
        <span class="counts" data-testid="counts">
          <span class="count up">{up} up</span>
          <span class="count down">{down} down</span>
          <span class="count">
            {shown.length === all.length ? `${all.length} shown` : `${shown.length} of ${all.length} shown`}
          </span>
        </span>
      </div>
      {live.error && !live.loaded ? <p class="error-box">{live.error}</p> : null}
      {live.loaded && all.length === 0 ? (
        <p class="empty">
          No targets or flows yet. Add targets, canaries and coalminers to the agent's config.
        </p>
      ) : null}
      <div class="table-head row-grid">
        <span />
        <span>Name</span>
        <span>Last hour</span>
        <span class="num">Latest</span>
        <span class="num">p95</span>
        <span class="num">Loss</span>
        <span class="num hide-narrow">Runs / received</span>
      </div>
      <VirtualRows rows={shown} palette={palette} resetKey={`${query}|${only}|${sort}`} />
    </section>
  );
}

function VirtualRows({ rows, palette, resetKey }: { rows: Row[]; palette: Palette; resetKey: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(800);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let frame = 0;
    const onScroll = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setScrollTop(el.scrollTop);
      });
    };
    const ro = new ResizeObserver(() => setViewport(el.clientHeight));
    ro.observe(el);
    el.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      ro.disconnect();
      el.removeEventListener('scroll', onScroll);
      cancelAnimationFrame(frame);
    };
  }, []);
  // A new filter or order starts at the top, not somewhere in the middle of a different list.
  useEffect(() => {
    if (ref.current) ref.current.scrollTop = 0;
    setScrollTop(0);
  }, [resetKey]);
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);
  const visible = rows.slice(first, last);
  return (
    <div class="rows" ref={ref} data-testid="rows">
      <div style={{ height: rows.length * ROW_HEIGHT, position: 'relative' }}>
        {visible.map((r, i) => (
          <div
            key={r.key}
            class="row-wrap"
            style={{ transform: `translateY(${(first + i) * ROW_HEIGHT}px)`, height: ROW_HEIGHT }}
          >
            {r.type === 'target' ? (
              <TargetRow t={r.item} palette={palette} />
            ) : (
              <FlowRow f={r.item} palette={palette} />
            )}
          </div>
        ))}
      </div>
    </div>
  );
}

function StatusDot({ status }: { status: Status }) {
  return <span class={`dot ${status}`} title={status} aria-label={status} />;
}

const TargetRow = memo(function TargetRow({ t, palette }: { t: TargetSummary; palette: Palette }) {
  const loss = t.window.successRatio === null ? null : 1 - t.window.successRatio;
  return (
    <a class="row row-grid" href={targetHref(t.name)} data-name={t.name} data-status={t.status}>
      <StatusDot status={t.status} />
      <span class="name">
        <strong>{t.name}</strong>
        <small>
          <span class="kind">{t.kind}</span> {t.target}
        </small>
      </span>
      <Sparkline points={t.sparkline} palette={palette} />
      <span class="num last" data-testid="last" title={t.last ? formatAgo(t.last.time) : ''}>
        {t.last ? (
          t.last.ok ? (
            formatSeconds(t.last.durationSeconds)
          ) : (
            <span class="bad">{t.last.error?.code ?? 'failed'}</span>
          )
        ) : (
          '–'
        )}
      </span>
      <span class="num">{formatSeconds(t.window.p95)}</span>
      <span class={`num ${loss !== null && loss > 0 ? 'bad' : ''}`}>{formatRatio(loss)}</span>
      <span class="num hide-narrow">{t.window.runs}</span>
    </a>
  );
});

const FlowRow = memo(function FlowRow({ f, palette }: { f: FlowSummary; palette: Palette }) {
  const loss = f.window.lossRatio;
  return (
    <a
      class="row row-grid"
      href={flowHref(f.canary, f.coalminer)}
      data-flow={`${f.canary}/${f.coalminer}`}
      data-status={f.status}
    >
      <StatusDot status={f.status} />
      <span class="name">
        <strong>
          {f.canary} → {f.coalminer}
        </strong>
        <small>
          <span class="kind">flow</span> {f.transport}
          {f.region ? ` · ${f.region}` : ''}
        </small>
      </span>
      <Sparkline points={f.sparkline} palette={palette} />
      <span class="num last" data-testid="last">
        {formatSeconds(f.window.p50)}
      </span>
      <span class="num">{formatSeconds(f.window.p95)}</span>
      <span class={`num ${loss !== null && loss > 0 ? 'bad' : ''}`}>{formatRatio(loss)}</span>
      <span class="num hide-narrow">{f.counts.received}</span>
    </a>
  );
});
