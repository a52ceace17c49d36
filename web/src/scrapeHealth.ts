/**
 * A machine's scrape health from `GET /api/machines/{id}` (last duration, samples, consecutive
 * failures, …). Read defensively: the fields are shown as the server names them, so a server
 * that adds one shows it without a page change and an older server shows nothing.
 */
import { formatDuration, formatLocalDateTime, formatNumber } from './format';
import type { FetchLike } from './history';

export interface HealthFact {
  key: string;
  label: string;
  text: string;
}

/** Where the health may be in the answer, first found wins. */
const HEALTH_KEYS = ['scrape_health', 'health'];
const MAX_FACTS = 30;

function labelOf(key: string): string {
  const words = key.replace(/_(seconds|timestamp|time|at|total)$/, '').replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function textOf(key: string, value: unknown): string | null {
  if (value === null) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'string') return value.slice(0, 500);
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  if (/(_time|_timestamp|_at)$/.test(key) && value > 1e9) return formatLocalDateTime(value);
  if (key.endsWith('_seconds')) return value < 60 ? `${formatNumber(value)} s` : formatDuration(value);
  if (key.endsWith('_ratio')) return `${formatNumber(value * 100)}%`;
  return formatNumber(value);
}

/** The facts of a machine's JSON answer, in the server's order; [] when it has none. */
export function healthFacts(body: unknown): HealthFact[] {
  if (typeof body !== 'object' || body === null) return [];
  const record = body as Record<string, unknown>;
  for (const key of HEALTH_KEYS) {
    const health = record[key];
    if (typeof health !== 'object' || health === null || Array.isArray(health)) continue;
    const facts: HealthFact[] = [];
    for (const [k, v] of Object.entries(health as Record<string, unknown>)) {
      const text = textOf(k, v);
      if (text !== null) facts.push({ key: k, label: labelOf(k), text });
      if (facts.length >= MAX_FACTS) break;
    }
    return facts;
  }
  return [];
}

/** The scrape health of one machine; [] when the server has none or cannot answer now. */
export async function fetchScrapeHealth(
  machineId: string,
  fetchFn: FetchLike = (i, init) => fetch(i, init),
  signal?: AbortSignal,
): Promise<HealthFact[]> {
  const response = await fetchFn(`/api/machines/${encodeURIComponent(machineId)}`, {
    headers: { Accept: 'application/json' },
    credentials: 'same-origin',
    signal,
  });
  if (!response.ok) return [];
  return healthFacts(await response.json());
}
