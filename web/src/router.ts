/** Hash routes, so the agent serves one page and any deep link works without server knowledge. */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'overview' }
  | { view: 'matrix' }
  | { view: 'alerts' }
  | { view: 'target'; name: string }
  | { view: 'flow'; canary: string; coalminer: string };

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  if (parts[0] === 'matrix') return { view: 'matrix' };
  if (parts[0] === 'alerts') return { view: 'alerts' };
  if (parts[0] === 'target' && parts[1]) return { view: 'target', name: parts[1] };
  if (parts[0] === 'flow' && parts[1] && parts[2])
    return { view: 'flow', canary: parts[1], coalminer: parts[2] };
  return { view: 'overview' };
}

export const alertsHref = '#/alerts';
export const targetHref = (name: string) => `#/target/${encodeURIComponent(name)}`;
export const flowHref = (canary: string, coalminer: string) =>
  `#/flow/${encodeURIComponent(canary)}/${encodeURIComponent(coalminer)}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
