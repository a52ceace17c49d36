import { useState } from 'react';
import { type Alert, acknowledgeAlert, type FetchLike } from '../alerts';
import { formatAgo } from '../format';
import { useNow } from '../hooks';

export interface AlertsPanelProps {
  alerts: readonly Alert[];
  /** Server clock minus local clock, seconds. */
  clockOffset: number;
  /** Called with the updated alert after a successful acknowledgement. */
  onAcknowledged: (alert: Alert) => void;
  fetchFn?: FetchLike;
  /** The page session's CSRF token, sent with the acknowledgement. */
  csrfToken?: string;
  /** False for anonymous read and wall mode: the list only, no Acknowledge button. */
  canAcknowledge?: boolean;
  /** Makes the machine's id a button that selects the machine (map and detail panel). */
  onMachine?: (machineId: string) => void;
}

const SEVERITY_LABEL = { critical: 'Critical', warning: 'Warning', info: 'Info' } as const;

/**
 * The open alerts: severity in words (never colour alone), machine, reason, since when, and who
 * acknowledged it and why; a firing alert can be acknowledged with a reason.
 */
export function AlertsPanel({
  alerts,
  clockOffset,
  onAcknowledged,
  fetchFn,
  csrfToken,
  canAcknowledge = true,
  onMachine,
}: AlertsPanelProps) {
  const now = useNow(1000) / 1000 + clockOffset;
  return (
    <section className="mw-alerts" aria-label="Open alerts">
      <h2 className="mw-alerts-title">Alerts {alerts.length > 0 && <span data-testid="alerts-count">{alerts.length}</span>}</h2>
      {alerts.length === 0 ? (
        <p className="mw-alerts-empty">No open alerts.</p>
      ) : (
        <ul className="mw-alerts-list">
          {alerts.map((alert) => (
            <AlertRow
              key={alert.id}
              alert={alert}
              now={now}
              onAcknowledged={onAcknowledged}
              fetchFn={fetchFn}
              csrfToken={csrfToken}
              canAcknowledge={canAcknowledge}
              onMachine={onMachine}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

interface AlertRowProps {
  alert: Alert;
  now: number;
  onAcknowledged: (alert: Alert) => void;
  fetchFn?: FetchLike;
  csrfToken?: string;
  canAcknowledge: boolean;
  onMachine?: (machineId: string) => void;
}

function AlertRow({ alert, now, onAcknowledged, fetchFn, csrfToken, canAcknowledge, onMachine }: AlertRowProps) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    if (reason.trim() === '') {
      setError('Say why: the next shift reads it.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onAcknowledged(await acknowledgeAlert(alert.id, reason.trim(), fetchFn, csrfToken));
      setOpen(false);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className={`mw-alert mw-severity-${alert.severity}`} data-testid={`alert-${alert.id}`}>
      <p className="mw-alert-head">
        <strong>{SEVERITY_LABEL[alert.severity]}</strong> ·{' '}
        {onMachine === undefined ? (
          alert.machine_id
        ) : (
          <button type="button" className="mw-link" onClick={() => onMachine(alert.machine_id)} title="Show this machine">
            {alert.machine_id}
          </button>
        )}
        {alert.site !== null && <> · {alert.site}</>}
      </p>
      <p className="mw-alert-reason">{alert.reason}</p>
      <p className="mw-alert-since">since {formatAgo(alert.started_at, now)}</p>
      {alert.acknowledged !== null ? (
        <p className="mw-alert-ack" data-testid={`alert-${alert.id}-ack`}>
          Acknowledged by {alert.acknowledged.by} {formatAgo(alert.acknowledged.at, now)}: {alert.acknowledged.reason}
        </p>
      ) : !canAcknowledge ? null : open ? (
        <form onSubmit={(event) => void submit(event)} className="mw-alert-form">
          <label>
            Reason
            <input
              value={reason}
              maxLength={500}
              onChange={(event) => setReason(event.target.value)}
              data-testid={`alert-${alert.id}-reason`}
              autoFocus
            />
          </label>
          <button type="submit" disabled={busy} data-testid={`alert-${alert.id}-submit`}>
            Acknowledge
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
          {error !== null && (
            <p role="alert" className="mw-alert-error">
              {error}
            </p>
          )}
        </form>
      ) : (
        <button type="button" onClick={() => setOpen(true)} data-testid={`alert-${alert.id}-ack-button`}>
          Acknowledge…
        </button>
      )}
    </li>
  );
}
