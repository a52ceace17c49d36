/**
 * Everything of the page's view but the map's centre and zoom, kept in the URL hash next to
 * the `map=` part (viewHash.ts), so that a reload or a copied link shows the same view:
 *
 *     #map=6/51/11.5&status=alarm,down&q=press%2014&sel=forge_berlin&tab=alerts&wall=1&wall_cycle=30
 *
 * Parts at their default value are left out (a plain link stays `#map=…`). `wall` and
 * `wall_cycle` are also read from the query string (`/?wall=1&wall_cycle=30`), the form a wall
 * screen's start-up URL is likely to have. Unknown parts are kept untouched.
 */
import { isStatus, STATUSES_BY_SEVERITY } from './status';
import type { Status } from './types';

export type SideTab = 'machines' | 'alerts';

export interface ViewState {
  /** Statuses the map and the list show; empty: all. Always in severity order, no repeats. */
  statuses: readonly Status[];
  /** The search text as typed. */
  q: string;
  /** The selected machine's id. */
  sel: string | null;
  tab: SideTab;
  wall: boolean;
  /** Seconds between sites in wall mode; null: no cycling. */
  wallCycle: number | null;
}

export const DEFAULT_VIEW: ViewState = { statuses: [], q: '', sel: null, tab: 'machines', wall: false, wallCycle: null };

/** Bounds on what a link may carry: a pasted link is input like any other. */
export const MAX_QUERY_LENGTH = 200;
export const MIN_WALL_CYCLE = 5;
export const MAX_WALL_CYCLE = 3600;
const MACHINE_ID = /^[a-z0-9_-]{1,200}$/;
const OWN_KEYS = ['status', 'q', 'sel', 'tab', 'wall', 'wall_cycle'] as const;

function parts(text: string, lead: string): string[] {
  const body = text.startsWith(lead) ? text.slice(1) : text;
  return body === '' ? [] : body.split('&');
}

function decode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

function readParts(list: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of list) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = decode(eq < 0 ? '' : part.slice(eq + 1));
    if (value !== null) out.set(key, value);
  }
  return out;
}

function parseStatuses(value: string | undefined): Status[] {
  if (value === undefined) return [];
  const wanted = new Set(value.split(',').filter(isStatus));
  return STATUSES_BY_SEVERITY.filter((s) => wanted.has(s));
}

function parseCycle(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,5}$/.test(value)) return null;
  const n = Number(value);
  return n >= MIN_WALL_CYCLE && n <= MAX_WALL_CYCLE ? n : null;
}

/**
 * The view in a location's `hash` and `search`; anything malformed falls back to its default
 * (a bad link opens a working page, never a broken one).
 */
export function parseView(hash: string, search = ''): ViewState {
  const h = readParts(parts(hash, '#'));
  const s = readParts(parts(search, '?'));
  const sel = h.get('sel');
  const wallText = h.get('wall') ?? s.get('wall');
  return {
    statuses: parseStatuses(h.get('status')),
    q: (h.get('q') ?? '').slice(0, MAX_QUERY_LENGTH),
    sel: sel !== undefined && MACHINE_ID.test(sel) ? sel : null,
    tab: h.get('tab') === 'alerts' ? 'alerts' : 'machines',
    wall: wallText === '1' || wallText === 'true',
    wallCycle: parseCycle(h.get('wall_cycle') ?? s.get('wall_cycle')),
  };
}

/**
 * `hash` with the view's parts set (defaults left out); its `map=` part and unknown parts are
 * kept. The result starts with '#', or is '' when nothing is left.
 */
export function formatView(view: ViewState, hash = ''): string {
  const keep = parts(hash, '#').filter((p) => !(OWN_KEYS as readonly string[]).includes(p.split('=')[0] ?? ''));
  const own: string[] = [];
  if (view.statuses.length > 0) own.push(`status=${view.statuses.join(',')}`);
  if (view.q !== '') own.push(`q=${encodeURIComponent(view.q.slice(0, MAX_QUERY_LENGTH))}`);
  if (view.sel !== null) own.push(`sel=${encodeURIComponent(view.sel)}`);
  if (view.tab !== 'machines') own.push(`tab=${view.tab}`);
  if (view.wall) own.push('wall=1');
  if (view.wallCycle !== null) own.push(`wall_cycle=${view.wallCycle}`);
  const all = [...keep, ...own];
  return all.length === 0 ? '' : `#${all.join('&')}`;
}

/** The query string without `wall`/`wall_cycle` (the hash carries them once the page runs). */
export function searchWithoutWall(search: string): string {
  const rest = parts(search, '?').filter((p) => {
    const key = p.split('=')[0];
    return key !== 'wall' && key !== 'wall_cycle';
  });
  return rest.length === 0 ? '' : `?${rest.join('&')}`;
}

/** `statuses` with `status` added or taken out, in severity order. */
export function toggleStatus(statuses: readonly Status[], status: Status): Status[] {
  const next = new Set(statuses);
  if (next.has(status)) next.delete(status);
  else next.add(status);
  return STATUSES_BY_SEVERITY.filter((s) => next.has(s));
}
