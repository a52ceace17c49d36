import { formatLocalTime } from '../format';
import { useNow } from '../hooks';
import type { ConnectionState } from '../live';

/**
 * The notice shown while the live connection is lost (render it only then): says that the page
 * is reconnecting and when it tries next, so the operator knows the map is not current.
 */
export function ConnectionBanner({ connection }: { connection: ConnectionState }) {
  const now = useNow(1000);
  let next: string;
  if (connection.kind === 'waiting') {
    const seconds = Math.max(0, Math.ceil((connection.retryAt - now) / 1000));
    next = `Next try in ${seconds} s (at ${formatLocalTime(connection.retryAt / 1000)}).`;
  } else {
    next = 'Trying now.';
  }
  return (
    <div className="mw-banner" data-testid="connection-banner" role="alert">
      <strong>Connection lost — reconnecting…</strong> <span>{next}</span>{' '}
      <span className="mw-banner-note">The map shows the last data received.</span>
    </div>
  );
}
