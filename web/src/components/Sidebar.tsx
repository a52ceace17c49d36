import type { KeyboardEvent } from 'react';
import type { Alert, FetchLike } from '../alerts';
import { formatLocalTime } from '../format';
import type { OpenAlerts } from '../useAlerts';
import type { SideTab } from '../viewState';
import { MAX_QUERY_LENGTH } from '../viewState';
import type { Machine } from '../types';
import { AlertsPanel } from './AlertsPanel';
import { MachineList } from './MachineList';

export interface SidebarProps {
  tab: SideTab;
  onTab: (tab: SideTab) => void;
  query: string;
  onQuery: (query: string) => void;
  /** Machines that pass the filter and the search, sorted. */
  machines: readonly Machine[];
  total: number;
  selectedId: string | null;
  onSelect: (id: string) => void;
  alerts: OpenAlerts;
  /** Acknowledging needs a named login (not anonymous read) and is off in wall mode. */
  canAcknowledge: boolean;
  csrfToken?: string;
  clockOffset: number;
  /** Server time of the data shown, when the live connection is lost. */
  staleAsOf: number | null;
  rowHeight: number;
  /** Wall mode: nothing to type into. */
  wall: boolean;
  fetchFn?: FetchLike;
}

/** Beside the map: the machine list with its search box, and the open alerts, as two tabs. */
export function Sidebar(props: SidebarProps) {
  const { tab, onTab, query, onQuery, machines, total, selectedId, onSelect, alerts, staleAsOf, wall } = props;

  function onSearchKey(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === 'Enter') {
      // "find press 14" + Enter: the best match is selected and the map goes to it.
      const first = machines[0];
      if (first !== undefined) onSelect(first.id);
    } else if (event.key === 'ArrowDown') {
      event.preventDefault();
      document.querySelector<HTMLElement>('.mw-list [tabindex="0"]')?.focus();
    } else if (event.key === 'Escape' && query !== '') {
      event.preventDefault(); // clears the search, leaves the detail panel open
      onQuery('');
    }
  }

  const open = alerts.alerts.filter((a: Alert) => a.state !== 'resolved').length;
  return (
    <aside className={`mw-side${staleAsOf !== null ? ' mw-old-data' : ''}`} aria-label="Machines and alerts">
      <div className="mw-tabs" role="tablist">
        <button
          type="button"
          role="tab"
          id="mw-tab-machines"
          aria-selected={tab === 'machines'}
          aria-controls="mw-panel-machines"
          onClick={() => onTab('machines')}
          data-testid="tab-machines"
        >
          Machines <span className="mw-tab-count">{machines.length === total ? total : `${machines.length}/${total}`}</span>
        </button>
        <button
          type="button"
          role="tab"
          id="mw-tab-alerts"
          aria-selected={tab === 'alerts'}
          aria-controls="mw-panel-alerts"
          onClick={() => onTab('alerts')}
          data-testid="tab-alerts"
        >
          Alerts <span className="mw-tab-count">{open}</span>
        </button>
      </div>
      {staleAsOf !== null && (
        <p className="mw-old-note" data-testid="list-old">
          Not live: as of {formatLocalTime(staleAsOf)}
        </p>
      )}
      {tab === 'machines' ? (
        <div className="mw-tabpanel" role="tabpanel" id="mw-panel-machines" aria-labelledby="mw-tab-machines">
          {!wall && (
            <input
              type="search"
              className="mw-search"
              placeholder="Search name, id, site, label"
              aria-label="Search machines by name, id, site or label"
              value={query}
              maxLength={MAX_QUERY_LENGTH}
              onChange={(e) => onQuery(e.target.value)}
              onKeyDown={onSearchKey}
              data-testid="search"
            />
          )}
          <MachineList machines={machines} selectedId={selectedId} onSelect={onSelect} rowHeight={props.rowHeight} />
        </div>
      ) : (
        <div className="mw-tabpanel" role="tabpanel" id="mw-panel-alerts" aria-labelledby="mw-tab-alerts">
          {alerts.error !== null && (
            <p className="mw-form-error" role="status" data-testid="alerts-error">
              Alerts could not be read: {alerts.error}
            </p>
          )}
          <AlertsPanel
            alerts={alerts.alerts}
            clockOffset={props.clockOffset}
            onAcknowledged={alerts.replace}
            csrfToken={props.csrfToken}
            canAcknowledge={props.canAcknowledge}
            fetchFn={props.fetchFn}
            onMachine={onSelect}
          />
        </div>
      )}
    </aside>
  );
}
