import { render } from 'preact';
import { AlertsState } from './alerts.js';
import { adoptToken, Api } from './api.js';
import { App } from './app.js';
import { LiveState } from './live.js';
import { applyThemePref, loadThemePref } from './theme.js';
import './styles.css';

applyThemePref(loadThemePref());
const api = new Api(adoptToken());
const live = new LiveState(api);
const alerts = new AlertsState(api, live);
render(<App api={api} live={live} alerts={alerts} />, document.getElementById('app') as HTMLElement);
