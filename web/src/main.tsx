import { render } from 'preact';
import { adoptToken, Api } from './api.js';
import { App } from './app.js';
import { LiveState } from './live.js';
import { applyThemePref, loadThemePref } from './theme.js';
import './styles.css';

applyThemePref(loadThemePref());
const api = new Api(adoptToken());
const live = new LiveState(api);
render(<App api={api} live={live} />, document.getElementById('app') as HTMLElement);
