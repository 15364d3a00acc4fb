/**
 * Talking to the agent's /api/v1. The token arrives once in the address (`/?token=...`, as the agent prints
 * it); it moves to sessionStorage and out of the address bar so it is not left in history or screenshots.
 */
import type {
  AlertHistoryEntry,
  AlertRuleStatus,
  FlowSummary,
  Matrix,
  NewSilence,
  ScheduleSeries,
  Series,
  Silence,
  TargetSummary,
  WhoAmI,
} from '../../src/api/v1/contract.js';
import type { ProbeReport } from '../../src/core/report.js';

const TOKEN_KEY = 'coalmine.token';

/** Moves `?token=` from the URL into sessionStorage; returns the token to use (or null). */
export function adoptToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      // Storage can be disabled; the token still works for this page load.
    }
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Listener = (e: ApiError) => void;

export class Api {
  private readonly unauthorizedListeners = new Set<Listener>();

  constructor(
    private readonly token: string | null,
    private readonly base = '/api/v1',
  ) {}

  get hasToken(): boolean {
    return this.token !== null && this.token !== '';
  }

  /** Called on every 401, so the app can show one clear message instead of many broken panels. */
  onUnauthorized(fn: Listener): () => void {
    this.unauthorizedListeners.add(fn);
    return () => this.unauthorizedListeners.delete(fn);
  }

  private async request<T>(method: string, path: string, signal?: AbortSignal, json?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.hasToken) headers.authorization = `Bearer ${this.token}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        signal: signal ?? null,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(0, 'network', `cannot reach the agent: ${(e as Error).message}`);
    }
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!res.ok) {
      const err = (body as { error?: { code?: string; message?: string } | string } | undefined)?.error;
      const code = typeof err === 'object' && err?.code ? err.code : `http_${res.status}`;
      const message =
        typeof err === 'object' && err?.message
          ? err.message
          : typeof err === 'string'
            ? err
            : `${res.status} ${res.statusText}`;
      const apiError = new ApiError(res.status, code, message);
      if (res.status === 401) for (const fn of this.unauthorizedListeners) fn(apiError);
      throw apiError;
    }
    if (res.status === 204) return undefined as T;
    if (body === undefined) throw new ApiError(res.status, 'bad_response', 'the agent answered without JSON');
    return body as T;
  }

  targets(signal?: AbortSignal): Promise<{ targets: TargetSummary[] }> {
    return this.request('GET', '/targets', signal);
  }

  flows(signal?: AbortSignal): Promise<{ flows: FlowSummary[] }> {
    return this.request('GET', '/flows', signal);
  }

  matrix(signal?: AbortSignal): Promise<Matrix> {
    return this.request('GET', '/matrix', signal);
  }

  targetSeries(name: string, range: SeriesRange, signal?: AbortSignal): Promise<Series> {
    return this.request('GET', `/targets/${encodeURIComponent(name)}/series?${rangeQuery(range)}`, signal);
  }

  flowSeries(canary: string, coalminer: string, range: SeriesRange, signal?: AbortSignal): Promise<Series> {
    const path = `/flows/${encodeURIComponent(canary)}/${encodeURIComponent(coalminer)}/series`;
    return this.request('GET', `${path}?${rangeQuery(range)}`, signal);
  }

  /** The canary's side of a flow: due, attempted and behind schedule per step. */
  flowSchedule(
    canary: string,
    coalminer: string,
    range: SeriesRange,
    signal?: AbortSignal,
  ): Promise<ScheduleSeries> {
    const path = `/flows/${encodeURIComponent(canary)}/${encodeURIComponent(coalminer)}/schedule`;
    return this.request('GET', `${path}?${rangeQuery(range)}`, signal);
  }

  check(target: string, signal?: AbortSignal): Promise<{ results: ProbeReport[] }> {
    return this.request('POST', `/check?target=${encodeURIComponent(target)}`, signal);
  }

  /** The name and scopes of our token: whether to offer what needs the write scope. */
  whoami(signal?: AbortSignal): Promise<WhoAmI> {
    return this.request('GET', '/whoami', signal);
  }

  alerts(signal?: AbortSignal): Promise<{ alerts: AlertRuleStatus[] }> {
    return this.request('GET', '/alerts', signal);
  }

  alertHistory(
    rule: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ history: AlertHistoryEntry[] }> {
    const q = `limit=${limit}${rule === undefined ? '' : `&rule=${encodeURIComponent(rule)}`}`;
    return this.request('GET', `/alerts/history?${q}`, signal);
  }

  silences(signal?: AbortSignal): Promise<{ silences: Silence[] }> {
    return this.request('GET', '/silences', signal);
  }

  createSilence(s: NewSilence): Promise<Silence> {
    return this.request('POST', '/silences', undefined, s);
  }

  expireSilence(id: string): Promise<void> {
    return this.request('DELETE', `/silences/${encodeURIComponent(id)}`);
  }

  /** The live stream. EventSource cannot send headers, so the token goes in the query. */
  events(): EventSource {
    const q = this.hasToken ? `?token=${encodeURIComponent(this.token as string)}` : '';
    return new EventSource(`${this.base}/events${q}`);
  }
}

export interface SeriesRange {
  from: number;
  to: number;
  step: number;
}

function rangeQuery(r: SeriesRange): string {
  return `from=${Math.round(r.from)}&to=${Math.round(r.to)}&step=${Math.round(r.step)}`;
}

/** Steps that line up with the store's 1-minute and 1-hour rollups (as the server's default steps do). */
const NICE_STEPS_S = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** The smallest nice step giving at most 300 points (at least 10 s, so a chart is never a scatter). */
export function stepFor(from: number, to: number): number {
  const range = Math.max(1, to - from);
  for (const s of NICE_STEPS_S) if (Math.ceil(range / (s * 1000)) <= 300) return s * 1000;
  return Math.ceil(range / 300 / 86_400_000) * 86_400_000;
}
