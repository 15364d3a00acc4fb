/**
 * Light and dark: the colours live in CSS variables (styles.css). With no choice made the page follows
 * prefers-color-scheme; the toggle pins one and remembers it. Canvases read the variables through
 * `palette()` and redraw when `useTheme()` reports a change.
 */
import { useEffect, useState } from 'preact/hooks';

export type ThemePref = 'auto' | 'light' | 'dark';
const KEY = 'coalmine.theme';

export function loadThemePref(): ThemePref {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'auto';
  } catch {
    return 'auto';
  }
}

export function applyThemePref(pref: ThemePref): void {
  if (pref === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = pref;
  try {
    if (pref === 'auto') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, pref);
  } catch {
    // Not remembered, still applied.
  }
}

export function effectiveTheme(pref: ThemePref): 'light' | 'dark' {
  if (pref !== 'auto') return pref;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** The current effective theme; re-renders on toggle and on a system change. */
export function useTheme(): { pref: ThemePref; theme: 'light' | 'dark'; setPref: (p: ThemePref) => void } {
  const [pref, setPrefState] = useState<ThemePref>(loadThemePref);
  const [systemDark, setSystemDark] = useState(
    () => window.matchMedia('(prefers-color-scheme: dark)').matches,
  );
  useEffect(() => {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    const on = () => setSystemDark(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const setPref = (p: ThemePref) => {
    applyThemePref(p);
    setPrefState(p);
  };
  const theme = pref === 'auto' ? (systemDark ? 'dark' : 'light') : pref;
  return { pref, theme, setPref };
}

export interface Palette {
  fg: string;
  muted: string;
  grid: string;
  bg: string;
  accent: string;
  bandOuter: string;
  bandInner: string;
  ok: string;
  bad: string;
  warn: string;
  dup: string;
  reorder: string;
  heat: string;
  /** Median colours by loss class, see lossClass(). */
  loss: [string, string, string, string, string];
  phases: string[];
}

export function palette(): Palette {
  const cs = getComputedStyle(document.documentElement);
  const v = (name: string) => cs.getPropertyValue(name).trim();
  return {
    fg: v('--fg'),
    muted: v('--muted'),
    grid: v('--grid'),
    bg: v('--bg'),
    accent: v('--accent'),
    bandOuter: v('--band-outer'),
    bandInner: v('--band-inner'),
    ok: v('--ok'),
    bad: v('--bad'),
    warn: v('--warn'),
    dup: v('--dup'),
    reorder: v('--reorder'),
    heat: v('--heat'),
    loss: [v('--loss-0'), v('--loss-1'), v('--loss-2'), v('--loss-3'), v('--loss-4')],
    phases: [v('--phase-0'), v('--phase-1'), v('--phase-2'), v('--phase-3'), v('--phase-4'), v('--phase-5')],
  };
}

/** SmokePing-style loss classes for the median's colour: 0, ≤1%, ≤5%, ≤20%, more. */
export const LOSS_CLASSES = ['0', '≤1%', '≤5%', '≤20%', '>20%'] as const;
export function lossClass(ratio: number): 0 | 1 | 2 | 3 | 4 {
  if (!(ratio > 0)) return 0;
  if (ratio <= 0.01) return 1;
  if (ratio <= 0.05) return 2;
  if (ratio <= 0.2) return 3;
  return 4;
}
