import { useCallback, useEffect, useState } from 'react';
import { type Alert, type FetchLike, fetchOpenAlerts, sortAlerts } from './alerts';

/** How often the page asks for the open alerts (the live WebSocket carries machines, not alerts). */
export const ALERTS_POLL_MS = 10_000;

export interface OpenAlerts {
  alerts: readonly Alert[];
  /** Why the list could not be read (alerts off, no right, server away); null when it could. */
  error: string | null;
  /** Puts an alert the page has just changed (acknowledged) in place, before the next poll. */
  replace: (alert: Alert) => void;
  refresh: () => void;
}

/** The open alerts, read now and every `pollMs`; the last good list stays when a read fails. */
export function useOpenAlerts(fetchFn?: FetchLike, pollMs = ALERTS_POLL_MS): OpenAlerts {
  const [alerts, setAlerts] = useState<readonly Alert[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let alive = true;
    fetchOpenAlerts(fetchFn).then(
      (list) => {
        if (!alive) return;
        setAlerts(list);
        setError(null);
      },
      (e: unknown) => {
        if (alive) setError(e instanceof Error ? e.message : String(e));
      },
    );
    const timer = window.setTimeout(() => setTick((t) => t + 1), pollMs);
    return () => {
      alive = false;
      window.clearTimeout(timer);
    };
  }, [fetchFn, pollMs, tick]);

  const replace = useCallback((alert: Alert) => {
    setAlerts((list) => sortAlerts(list.map((a) => (a.id === alert.id ? alert : a))));
  }, []);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { alerts, error, replace, refresh };
}
