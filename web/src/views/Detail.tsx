import { useEffect, useState } from 'preact/hooks';
import type { FlowSummary, ScheduleSeries, Series, TargetSummary } from '../../../src/api/v1/contract.js';
import { ApiError, stepFor, type Api } from '../api.js';
import { Heatmap } from '../charts/Heatmap.js';
import { PhasesChart } from '../charts/PhasesChart.js';
import { SmokeChart, stepLoss } from '../charts/SmokeChart.js';
import { CheckNow } from '../components/CheckNow.js';
import { RangePicker, resolveRange, type RangeChoice } from '../components/RangePicker.js';
import { formatAgo, formatCount, formatRatio, formatSeconds, formatTime } from '../format.js';
import { flowKey, type LiveState } from '../live.js';
import type { Palette } from '../theme.js';

type Subject = { type: 'target'; name: string } | { type: 'flow'; canary: string; coalminer: string };

export function Detail({
  api,
  live,
  subject,
  palette,
}: {
  api: Api;
  live: LiveState;
  subject: Subject;
  palette: Palette;
}) {
  const [range, setRange] = useState<RangeChoice>({ preset: '1h' });
  const [series, setSeries] = useState<Series | null>(null);
  const [schedule, setSchedule] = useState<ScheduleSeries | null>(null);
  const [scheduleError, setScheduleError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [reloads, setReloads] = useState(0);
  const subjectKey =
    subject.type === 'target' ? `t:${subject.name}` : `f:${subject.canary}/${subject.coalminer}`;

  useEffect(() => {
    setSeries(null);
    setSchedule(null);
  }, [subjectKey]);

  useEffect(() => {
    const ctrl = new AbortController();
    const { from, to } = resolveRange(range, Date.now());
    const q = { from, to, step: stepFor(from, to) };
    setLoading(true);
    const request =
      subject.type === 'target'
        ? api.targetSeries(subject.name, q, ctrl.signal)
        : api.flowSeries(subject.canary, subject.coalminer, q, ctrl.signal);
    request
      .then((s) => {
        setSeries(s);
        setError(null);
      })
      .catch((e: unknown) => {
        if (ctrl.signal.aborted) return;
        setError(
          e instanceof ApiError && e.status === 404
            ? `No ${subject.type} by that name.`
            : (e as Error).message,
        );
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    // The canary's side of a flow, apart: without it (an older agent) the rest of the page still shows.
    if (subject.type === 'flow') {
      api
        .flowSchedule(subject.canary, subject.coalminer, q, ctrl.signal)
        .then((s) => {
          setSchedule(s);
          setScheduleError(null);
        })
        .catch((e: unknown) => {
          if (ctrl.signal.aborted) return;
          setSchedule(null);
          setScheduleError((e as Error).message);
        });
    }
    // A range ending now moves with time: fetch again every step (at least every 15 s).
    let timer: number | undefined;
    if (range.preset !== 'custom')
      timer = window.setTimeout(() => setReloads((n) => n + 1), Math.max(15_000, q.step));
    return () => {
      ctrl.abort();
      window.clearTimeout(timer);
    };
  }, [subjectKey, range, reloads, api]);

  const summary: TargetSummary | FlowSummary | undefined =
    subject.type === 'target' ? live.targets.get(subject.name) : live.flows.get(flowKey(subject));
  const title = subject.type === 'target' ? subject.name : `${subject.canary} → ${subject.coalminer}`;
  const isHttp = subject.type === 'target' && (summary as TargetSummary | undefined)?.kind === 'http';

  return (
    <section class="detail">
      <div class="detail-head">
        <a href="#/" class="back">
          ← Overview
        </a>
        <h1 data-testid="detail-title">
          {summary ? <span class={`dot ${summary.status}`} title={summary.status} /> : null} {title}
        </h1>
        {subject.type === 'target' ? (
          <CheckNow api={api} target={subject.name} onResult={(r) => live.applyProbe(r)} />
        ) : null}
      </div>
      {summary ? <SummaryLine summary={summary} /> : null}
      <div class="detail-toolbar">
        <RangePicker value={range} onChange={setRange} />
        <span class="muted small">
          {loading
            ? 'loading…'
            : series
              ? `${series.points.length} steps of ${formatStep(series.step)} · ${series.resolution} data`
              : ''}
        </span>
      </div>
      {error ? <p class="error-box">{error}</p> : null}
      {series ? (
        <>
          <RangeFigures series={series} kind={subject.type} />
          {subject.type === 'flow' ? <ScheduleFigures schedule={schedule} error={scheduleError} /> : null}
          <h2>Latency</h2>
          <SmokeChart series={series} kind={subject.type} palette={palette} />
          <h2>Distribution</h2>
          <Heatmap series={series} palette={palette} />
          {isHttp ? (
            <>
              <h2>HTTP phases (mean)</h2>
              <PhasesChart series={series} palette={palette} />
            </>
          ) : null}
        </>
      ) : !error ? (
        <p class="muted">Loading…</p>
      ) : null}
    </section>
  );
}

function formatStep(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** A successful run's network time (kernel-timed; ICMP: mean RTT) first, then its wall time. */
function LastRunTimes({ last }: { last: NonNullable<TargetSummary['last']> }) {
  const wall = (
    <span title="Wall time of the whole run, as blackbox_exporter's probe_duration_seconds">
      {formatSeconds(last.durationSeconds)} wall
    </span>
  );
  if (last.networkSeconds === undefined) return wall;
  return (
    <>
      <span
        data-testid="detail-network"
        title="Network time: the target's share, timed by the kernel (ICMP: the round's mean RTT)"
      >
        {formatSeconds(last.networkSeconds)} network
      </span>
      {' · '}
      {wall}
    </>
  );
}

function SummaryLine({ summary }: { summary: TargetSummary | FlowSummary }) {
  if ('kind' in summary) {
    const t = summary;
    return (
      <dl class="facts">
        <div>
          <dt>kind</dt>
          <dd>{t.kind}</dd>
        </div>
        <div>
          <dt>target</dt>
          <dd class="mono">{t.target}</dd>
        </div>
        <div>
          <dt>interval</dt>
          <dd>{t.intervalSeconds ? `${t.intervalSeconds}s` : '–'}</dd>
        </div>
        <div>
          <dt>last run</dt>
          <dd data-testid="detail-last">
            {t.last ? (
              <>
                {t.last.ok ? (
                  <LastRunTimes last={t.last} />
                ) : (
                  <span class="bad">{t.last.error?.code ?? 'failed'}</span>
                )}{' '}
                <span class="muted">{formatAgo(t.last.time)}</span>
              </>
            ) : (
              '–'
            )}
          </dd>
        </div>
        {t.last?.error ? (
          <div class="wide">
            <dt>error</dt>
            <dd class="bad">{t.last.error.message}</dd>
          </div>
        ) : null}
        <div>
          <dt>p95 (1h)</dt>
          <dd>{formatSeconds(t.window.p95)}</dd>
        </div>
        <div>
          <dt>success (1h)</dt>
          <dd>{formatRatio(t.window.successRatio)}</dd>
        </div>
      </dl>
    );
  }
  const f = summary;
  return (
    <dl class="facts">
      <div>
        <dt>transport</dt>
        <dd>{f.transport}</dd>
      </div>
      <div>
        <dt>region</dt>
        <dd>{f.region || '–'}</dd>
      </div>
      <div>
        <dt>received / expected</dt>
        <dd>
          {formatCount(f.counts.received)} / {formatCount(f.counts.expected)}
        </dd>
      </div>
      <div>
        <dt>lost</dt>
        <dd class={f.counts.lost > 0 ? 'bad' : ''}>{formatCount(f.counts.lost)}</dd>
      </div>
      <div title="Pings that reached this coalminer but its own full buffer dropped: not lost in the messaging system">
        <dt>dropped by this coalminer</dt>
        <dd data-testid="dropped-locally" class={f.counts.droppedLocally > 0 ? 'warn-text' : ''}>
          {formatCount(f.counts.droppedLocally)}
        </dd>
      </div>
      <div>
        <dt>in flight</dt>
        <dd>{formatCount(f.counts.inFlight)}</dd>
      </div>
      <div>
        <dt>dup / reordered / late</dt>
        <dd>
          {f.counts.duplicated} / {f.counts.reordered} / {f.counts.late}
        </dd>
      </div>
      <div>
        <dt>send failed</dt>
        <dd class={f.counts.sendFailed > 0 ? 'bad' : ''}>
          {f.counts.sendFailed}
          {f.counts.sendFailedArrived > 0 ? (
            <span
              class="muted"
              title="Publishes that reported an error yet arrived (the outcome was in doubt); counted as received"
            >
              {' '}
              (+{f.counts.sendFailedArrived} arrived anyway)
            </span>
          ) : null}
        </dd>
      </div>
      {f.clockOffset ? (
        <div>
          <dt>clock offset</dt>
          <dd>
            {formatSeconds(f.clockOffset.seconds)} ± {formatSeconds(f.clockOffset.errorSeconds)}
          </dd>
        </div>
      ) : null}
    </dl>
  );
}

/** Totals over the chosen range (sums of the steps; percentiles stay per step in the chart). */
function RangeFigures({ series, kind }: { series: Series; kind: 'target' | 'flow' }) {
  let count = 0;
  let failures = 0;
  let dup = 0;
  let reo = 0;
  let dropped = 0;
  let worst: number | null = null;
  for (const p of series.points) {
    count += p.count;
    failures += p.failures;
    dup += p.duplicated ?? 0;
    reo += p.reordered ?? 0;
    dropped += p.droppedLocally ?? 0;
    if (p.p99 !== null && (worst === null || p.p99 > worst)) worst = p.p99;
  }
  const loss = stepLoss(kind, { ...emptyPoint, count, failures });
  return (
    <dl class="facts range-figures">
      <div>
        <dt>{kind === 'target' ? 'runs' : 'received'}</dt>
        <dd>{formatCount(count)}</dd>
      </div>
      <div>
        <dt>{kind === 'target' ? 'failed' : 'lost'}</dt>
        <dd class={failures > 0 ? 'bad' : ''}>
          {formatCount(failures)} ({formatRatio(loss, 2)})
        </dd>
      </div>
      {kind === 'flow' ? (
        <div>
          <dt>dropped by this coalminer</dt>
          <dd class={dropped > 0 ? 'warn-text' : ''}>{formatCount(dropped)}</dd>
        </div>
      ) : null}
      {kind === 'flow' ? (
        <div>
          <dt>duplicates / reordered</dt>
          <dd>
            {dup} / {reo}
          </dd>
        </div>
      ) : null}
      <div>
        <dt>worst step p99</dt>
        <dd>{formatSeconds(worst)}</dd>
      </div>
    </dl>
  );
}

/**
 * The canary's side over the range: pings due and attempted (due = attempted + behind schedule), and a
 * warning when the canary fell behind its schedule in any step: the pings it owed were never lost in the
 * messaging system, they were not sent (yet).
 */
function ScheduleFigures({ schedule, error }: { schedule: ScheduleSeries | null; error: string | null }) {
  if (!schedule) {
    return error ? (
      <p class="muted small" data-testid="schedule-unavailable">
        The canary's schedule is not available: {error}
      </p>
    ) : null;
  }
  let due = 0;
  let attempted = 0;
  let worst: ScheduleSeries['points'][number] | undefined;
  for (const p of schedule.points) {
    due += p.due;
    attempted += p.attempted;
    if (p.behindSchedule > 0 && (!worst || p.behindSchedule > worst.behindSchedule)) worst = p;
  }
  return (
    <>
      {worst ? (
        <p class="warning-box" role="status" data-testid="behind-warning">
          <strong>
            canary behind schedule: {formatCount(worst.behindSchedule)} pings,{' '}
            {formatSeconds(worst.behindScheduleSeconds)}
          </strong>{' '}
          <span class="small">
            (at worst in this range, in the step from {formatTime(worst.time)}; these pings were not sent on
            time, which is not loss)
          </span>
        </p>
      ) : null}
      <dl class="facts range-figures" data-testid="schedule">
        <div title="Pings whose intended send time fell in the range (the canary's agent records them)">
          <dt>due (canary)</dt>
          <dd>{exact(due)}</dd>
        </div>
        <div title="Pings the canary published or gave up on: sent + send failed">
          <dt>attempted</dt>
          <dd class={attempted < due ? 'warn-text' : ''}>{exact(attempted)}</dd>
        </div>
      </dl>
    </>
  );
}

/** Exact, grouped: due and attempted a few pings apart must not both read "24.0k". */
const exact = (n: number): string => n.toLocaleString();

const emptyPoint: Series['points'][number] = {
  time: 0,
  count: 0,
  p1: null,
  p5: null,
  p50: null,
  p90: null,
  p95: null,
  p99: null,
  max: null,
  failures: 0,
};
