/**
 * A machine's history from `GET /api/machines/{id}/history` (min/avg/max per step; docs/using-the-map.md)
 * and the time ranges the detail panel offers.
 */

export interface HistoryPoint {
  time: number;
  min: number | null;
  avg: number | null;
  max: number | null;
  count: number;
}

export interface History {
  machineId: string;
  metric: string;
  start: number;
  end: number;
  step: number;
  points: HistoryPoint[];
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type RangePreset = '1h' | '24h' | '7d';

export const PRESET_SECONDS: Readonly<Record<RangePreset, number>> = { '1h': 3600, '24h': 86400, '7d': 7 * 86400 };

/** The longest custom range asked for (the server bounds it too). */
export const MAX_RANGE_SECONDS = 366 * 86400;

/** About this many points per chart: more than a panel's width in pixels brings nothing. */
export const TARGET_POINTS = 400;

const NICE_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/**
 * The step (seconds) for a range: a round value giving at most about `TARGET_POINTS` points,
 * and never below the machine's scrape interval (a finer step only has empty buckets).
 */
export function chooseStep(rangeSeconds: number, scrapeIntervalSeconds = 1): number {
  const wanted = Math.max(rangeSeconds / TARGET_POINTS, scrapeIntervalSeconds, 1);
  for (const step of NICE_STEPS) if (step >= wanted) return step;
  return Math.ceil(wanted / 86400) * 86400;
}

export interface HistoryQuery {
  machineId: string;
  metric: string;
  start: number;
  end: number;
  step: number;
}

/** `/api/machines/{id}/history?…`, or `…/history.csv?…` for the spreadsheet download. */
export function historyUrl(q: HistoryQuery, csv = false): string {
  const params = new URLSearchParams({
    metric: q.metric,
    start: String(Math.floor(q.start)),
    end: String(Math.ceil(q.end)),
    step: String(q.step),
  });
  return `/api/machines/${encodeURIComponent(q.machineId)}/history${csv ? '.csv' : ''}?${params.toString()}`;
}

function finiteOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The answer's body, checked field by field: a malformed point is dropped, never drawn. */
export function parseHistory(body: unknown, q: HistoryQuery): History {
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const points: HistoryPoint[] = [];
  if (Array.isArray(b.points)) {
    for (const p of b.points as unknown[]) {
      if (typeof p !== 'object' || p === null) continue;
      const r = p as Record<string, unknown>;
      const time = finiteOrNull(r.time);
      if (time === null) continue;
      points.push({
        time,
        min: finiteOrNull(r.min),
        avg: finiteOrNull(r.avg),
        max: finiteOrNull(r.max),
        count: finiteOrNull(r.count) ?? 0,
      });
    }
  }
  points.sort((a, c) => a.time - c.time);
  return {
    machineId: typeof b.machine_id === 'string' ? b.machine_id : q.machineId,
    metric: typeof b.metric === 'string' ? b.metric : q.metric,
    start: finiteOrNull(b.start) ?? q.start,
    end: finiteOrNull(b.end) ?? q.end,
    step: finiteOrNull(b.step) ?? q.step,
    points,
  };
}

/** Why a history could not be shown, in words for the panel. */
export class HistoryError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'HistoryError';
  }
}

export async function fetchHistory(
  q: HistoryQuery,
  fetchFn: FetchLike = (i, init) => fetch(i, init),
  signal?: AbortSignal,
): Promise<History> {
  let response: Response;
  try {
    response = await fetchFn(historyUrl(q), { headers: { Accept: 'application/json' }, credentials: 'same-origin', signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new HistoryError('the server cannot be reached', null);
  }
  if (response.status === 404) throw new HistoryError('no history for this machine on this server', 404);
  if (!response.ok) {
    let detail = `the server answered ${response.status}`;
    try {
      const body = (await response.json()) as { detail?: unknown };
      if (typeof body.detail === 'string') detail = body.detail;
    } catch {
      // not JSON: the status says enough
    }
    throw new HistoryError(detail, response.status);
  }
  return parseHistory(await response.json(), q);
}

/**
 * The columns uPlot draws: times, then min, avg and max. Where more than two and a half steps
 * pass without a point a null is put in, so a gap (machine down) shows as a gap, not a line.
 */
export function chartColumns(history: History): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const xs: number[] = [];
  const mins: (number | null)[] = [];
  const avgs: (number | null)[] = [];
  const maxs: (number | null)[] = [];
  let previous: number | null = null;
  for (const p of history.points) {
    if (previous !== null && p.time - previous > 2.5 * history.step) {
      xs.push(previous + history.step);
      mins.push(null);
      avgs.push(null);
      maxs.push(null);
    }
    xs.push(p.time);
    mins.push(p.min);
    avgs.push(p.avg);
    maxs.push(p.max);
    previous = p.time;
  }
  return [xs, mins, avgs, maxs];
}

/** Lowest, mean (weighted by sample count) and highest value over the points; null without data. */
export function summarize(points: readonly HistoryPoint[]): { min: number; avg: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  for (const p of points) {
    if (p.min !== null) min = Math.min(min, p.min);
    if (p.max !== null) max = Math.max(max, p.max);
    if (p.avg !== null) {
      const w = p.count > 0 ? p.count : 1;
      sum += p.avg * w;
      n += w;
    }
  }
  if (n === 0 || !Number.isFinite(min) || !Number.isFinite(max)) return null;
  return { min, avg: sum / n, max };
}
