import { type StatusCounts, totalOf } from '../counts';
import { formatAgo, formatLocalTime } from '../format';
import { useNow } from '../hooks';
import { STATUS_META, STATUSES_BY_SEVERITY } from '../status';
import type { Status } from '../types';
import { toggleStatus } from '../viewState';
import { StatusIcon } from './StatusIcon';

export interface SummaryPanelProps {
  counts: StatusCounts;
  /** Server time (Unix seconds) of the last message, null before the first one. */
  lastUpdate: number | null;
  /** Server clock minus local clock, seconds. */
  clockOffset: number;
  /** Machines that have no location and so no marker. */
  unlocated: number;
  /** The statuses shown (empty: all). */
  filter: readonly Status[];
  onFilter: (statuses: Status[]) => void;
}

/**
 * Count per status (worst first), total and time of the last update. Clicking a status adds it
 * to the statuses shown (map and list show only those); clicking it again takes it out.
 */
export function SummaryPanel({ counts, lastUpdate, clockOffset, unlocated, filter, onFilter }: SummaryPanelProps) {
  const now = useNow(1000) / 1000 + clockOffset;
  const total = totalOf(counts);
  return (
    <aside className="mw-summary" aria-label="Fleet summary">
      <h2 className="mw-summary-title">Fleet status</h2>
      <ul className="mw-summary-list">
        {STATUSES_BY_SEVERITY.map((status) => {
          const active = filter.includes(status);
          const label = STATUS_META[status].label;
          return (
            <li key={status}>
              <button
                type="button"
                data-testid={`summary-${status}`}
                className={`mw-summary-row mw-status-${status}${active ? ' mw-active' : ''}${counts[status] === 0 ? ' mw-zero' : ''}`}
                aria-pressed={active}
                title={active ? `Stop showing ${label.toLowerCase()} machines` : `Show ${label.toLowerCase()} machines`}
                onClick={() => onFilter(toggleStatus(filter, status))}
              >
                <StatusIcon status={status} size={22} />
                <span className="mw-summary-label">{label}</span>{' '}
                <span className="mw-summary-count">{counts[status]}</span>
              </button>
            </li>
          );
        })}
      </ul>
      <p className="mw-summary-total" data-testid="summary-total">
        <span>Total</span> <strong>{total}</strong>
      </p>
      {filter.length > 0 && (
        <p className="mw-summary-filter" data-testid="summary-filter">
          Shows only: {filter.map((s) => STATUS_META[s].label).join(', ')}.{' '}
          <button type="button" className="mw-link" onClick={() => onFilter([])}>
            Show all
          </button>
        </p>
      )}
      {unlocated > 0 && (
        <p className="mw-summary-note" data-testid="summary-unlocated">
          {unlocated} {unlocated === 1 ? 'machine has' : 'machines have'} no location and {unlocated === 1 ? 'is' : 'are'} not
          on the map.
        </p>
      )}
      <p className="mw-summary-updated" data-testid="summary-updated">
        {lastUpdate === null ? (
          'Waiting for the first data from the server'
        ) : (
          <>
            Updated <time dateTime={new Date(lastUpdate * 1000).toISOString()}>{formatLocalTime(lastUpdate)}</time> (
            {formatAgo(lastUpdate, now)})
          </>
        )}
      </p>
    </aside>
  );
}
