import { useEffect, useMemo, useState } from 'preact/hooks';
import type { AlertsState } from './alerts.js';
import type { Api } from './api.js';
import type { LiveState } from './live.js';
import { alertsHref, useRoute } from './router.js';
import { palette, useTheme, type ThemePref } from './theme.js';
import { Alerts } from './views/Alerts.js';
import { Detail } from './views/Detail.js';
import { Matrix } from './views/Matrix.js';
import { Overview } from './views/Overview.js';

const NEXT_THEME: Record<ThemePref, ThemePref> = { auto: 'dark', dark: 'light', light: 'auto' };

export function App({ api, live, alerts }: { api: Api; live: LiveState; alerts: AlertsState }) {
  const route = useRoute();
  const { pref, theme, setPref } = useTheme();
  // Read after the theme attribute changed, so canvases get this theme's colours; stable otherwise.
  const colours = useMemo(() => palette(), [theme]);
  const [, setTick] = useState(0);
  const [unauthorized, setUnauthorized] = useState<string | null>(null);

  useEffect(() => live.subscribe(() => setTick(live.version)), [live]);
  const [, setAlertsTick] = useState(0);
  useEffect(() => alerts.subscribe(() => setAlertsTick(alerts.version)), [alerts]);
  useEffect(
    () =>
      api.onUnauthorized((e) => {
        setUnauthorized(api.hasToken ? e.message : 'no-token');
        live.close();
        alerts.close();
      }),
    [api, live, alerts],
  );
  useEffect(() => {
    void live.start();
    alerts.start();
    return () => {
      live.close();
      alerts.close();
    };
  }, [live, alerts]);
  const firing = alerts.firing;

  const connection =
    live.connection === 'live'
      ? 'live'
      : live.connection === 'connecting'
        ? 'connecting…'
        : live.connection === 'closed'
          ? 'offline'
          : 'reconnecting…';

  return (
    <div class="app">
      <header class="top">
        <a class="brand" href="#/">
          coalmine
        </a>
        <nav>
          <a href="#/" aria-current={route.view === 'overview' ? 'page' : undefined}>
            Overview
          </a>
          <a href="#/matrix" aria-current={route.view === 'matrix' ? 'page' : undefined}>
            Matrix
          </a>
          <a
            href={alertsHref}
            aria-current={route.view === 'alerts' ? 'page' : undefined}
            data-testid="nav-alerts"
          >
            Alerts
            {firing > 0 ? (
              <span class="badge" data-testid="firing-badge" title={`${firing} firing`}>
                {firing}
                <span class="sr-only"> firing</span>
              </span>
            ) : null}
          </a>
        </nav>
        <span class={`conn ${live.connection}`} data-testid="connection" title={`${live.events} live events`}>
          <span class="conn-dot" /> {connection}
        </span>
        <button
          type="button"
          class="theme-toggle"
          data-testid="theme-toggle"
          onClick={() => setPref(NEXT_THEME[pref])}
          title="Switch between automatic, dark and light"
        >
          {pref === 'auto' ? `Theme: auto (${theme})` : `Theme: ${pref}`}
        </button>
      </header>
      <main>
        {unauthorized ? (
          <Unauthorized reason={unauthorized} />
        ) : route.view === 'overview' ? (
          <Overview live={live} palette={colours} />
        ) : route.view === 'matrix' ? (
          <Matrix api={api} theme={theme} />
        ) : route.view === 'alerts' ? (
          <Alerts alerts={alerts} />
        ) : route.view === 'target' ? (
          <Detail api={api} live={live} palette={colours} subject={{ type: 'target', name: route.name }} />
        ) : (
          <Detail
            api={api}
            live={live}
            palette={colours}
            subject={{ type: 'flow', canary: route.canary, coalminer: route.coalminer }}
          />
        )}
      </main>
    </div>
  );
}

function Unauthorized({ reason }: { reason: string }) {
  return (
    <div class="unauthorized" role="alert" data-testid="unauthorized">
      <h1>Not signed in</h1>
      {reason === 'no-token' ? (
        <p>This page needs the agent's access token.</p>
      ) : (
        <p>
          The agent refused the token (<span class="mono">{reason}</span>): it may have restarted with a new
          one.
        </p>
      )}
      <p>
        Open the dashboard with the URL the agent printed when it started (it ends in{' '}
        <span class="mono">/?token=…</span>), or add <span class="mono">?token=YOUR_TOKEN</span> to this
        address.
      </p>
    </div>
  );
}
