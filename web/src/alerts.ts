/**
 * Alerts from the server's API (`GET /api/alerts`, `POST /api/alerts/{id}/ack`; docs/alerts.md).
 * The fetch function is injected so that tests and the page use the same code.
 */

export type AlertState = 'firing' | 'acknowledged' | 'resolved';
export type Severity = 'critical' | 'warning' | 'info';

export interface Acknowledgement {
  at: number;
  by: string;
  reason: string;
}

/** One alert as the API sends it. Times are Unix seconds. */
export interface Alert {
  id: number;
  machine_id: string;
  rule: string;
  state: AlertState;
  severity: Severity;
  level: string;
  reason: string;
  site: string | null;
  labels: Record<string, string>;
  started_at: number;
  fired_at: number;
  acknowledged: Acknowledgement | null;
  resolved_at: number | null;
  last_notified_at: number | null;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

const SEVERITY_ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** Open alerts first by severity (critical first), then unacknowledged before acknowledged, newest first. */
export function sortAlerts(alerts: readonly Alert[]): Alert[] {
  return [...alerts].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      Number(a.state !== 'firing') - Number(b.state !== 'firing') ||
      b.fired_at - a.fired_at,
  );
}

/** The open alerts (firing or acknowledged). Throws an Error with the server's words on failure. */
export async function fetchOpenAlerts(fetchFn: FetchLike = (i, init) => fetch(i, init)): Promise<Alert[]> {
  const response = await fetchFn('/api/alerts?state=open', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(await problem(response));
  const body = (await response.json()) as { alerts?: Alert[] };
  return sortAlerts(body.alerts ?? []);
}

/**
 * Acknowledge an alert with a reason; returns the updated alert or throws with the server's words.
 * `csrfToken` is the page session's (Account.csrfToken): the server refuses a session's POST without it.
 */
export async function acknowledgeAlert(
  id: number,
  reason: string,
  fetchFn: FetchLike = (i, init) => fetch(i, init),
  csrfToken?: string,
): Promise<Alert> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const response = await fetchFn(`/api/alerts/${id}/ack`, {
    method: 'POST',
    headers,
    credentials: 'same-origin',
    body: JSON.stringify({ reason }),
  });
  if (!response.ok) throw new Error(await problem(response));
  return (await response.json()) as Alert;
}

async function problem(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (typeof body.detail === 'string') return body.detail;
    if (Array.isArray(body.detail)) return 'a reason is required (at most 500 characters)';
  } catch {
    // not JSON: fall through to the status
  }
  return `HTTP ${response.status}`;
}
