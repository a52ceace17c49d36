import { STATUSES, type Status } from './types';

/** How the page shows one status: words for people and screen readers, colour, and a shape. */
export interface StatusMeta {
  status: Status;
  /** Human text shown next to the icon, in titles and aria-labels. */
  label: string;
  /** Main colour of the status icon. */
  color: string;
  /** The shape drawn for it; colour is never the only signal. */
  shape: 'circle' | 'triangle' | 'octagon' | 'square' | 'cross' | 'ring' | 'dash' | 'question';
  /** Higher is worse (same order as `SEVERITY` in scraper/state.py). */
  severity: number;
}

export const STATUS_META: Readonly<Record<Status, StatusMeta>> = {
  alarm: { status: 'alarm', label: 'Alarm', color: '#d7191c', shape: 'octagon', severity: 7 },
  down: { status: 'down', label: 'Down', color: '#7f0000', shape: 'cross', severity: 6 },
  sensor_fault: { status: 'sensor_fault', label: 'Sensor fault', color: '#7b3fb5', shape: 'square', severity: 5 },
  warn: { status: 'warn', label: 'Warning', color: '#e69500', shape: 'triangle', severity: 4 },
  stale: { status: 'stale', label: 'Stale', color: '#6b6b6b', shape: 'ring', severity: 3 },
  unknown: { status: 'unknown', label: 'Unknown', color: '#6b6b6b', shape: 'question', severity: 2 },
  up: { status: 'up', label: 'Up', color: '#1b9e3e', shape: 'circle', severity: 1 },
  disabled: { status: 'disabled', label: 'Disabled', color: '#8a8a8a', shape: 'dash', severity: 0 },
};

/** Every status, worst first: the order of the summary panel and of cluster breakdowns. */
export const STATUSES_BY_SEVERITY: readonly Status[] = [...STATUSES].sort(
  (a, b) => STATUS_META[b].severity - STATUS_META[a].severity,
);

/** True when `value` is one of the eight statuses of the JSON contract. */
export function isStatus(value: unknown): value is Status {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

/** The worse of two statuses. */
export function worse(a: Status, b: Status): Status {
  return STATUS_META[b].severity > STATUS_META[a].severity ? b : a;
}

/** The worst status in `statuses`, or null when there is none. */
export function worstStatus(statuses: Iterable<Status>): Status | null {
  let worst: Status | null = null;
  for (const s of statuses) worst = worst === null ? s : worse(worst, s);
  return worst;
}

/** "<name>: <status text>[ — <reason>]": the marker's title and aria-label. */
export function machineTitle(name: string, status: Status, reason: string | null): string {
  const text = `${name}: ${STATUS_META[status].label}`;
  return reason ? `${text} — ${reason}` : text;
}
