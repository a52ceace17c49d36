import { useEffect, useRef, useState } from 'react';
import type { Alert } from '../alerts';
import { formatAgo, formatDuration, formatLocalDateTime, formatLocalTime, formatPercent } from '../format';
import type { FetchLike } from '../history';
import { useNow } from '../hooks';
import { fetchScrapeHealth, type HealthFact } from '../scrapeHealth';
import { STATUS_META } from '../status';
import type { Machine } from '../types';
import { HistorySection } from './HistorySection';
import { ReadingRow } from './MachinePopup';
import { StatusIcon } from './StatusIcon';

export interface MachineDetailProps {
  /** The selected machine's id; `machine` is undefined when the fleet has no such machine (yet). */
  machineId: string;
  machine: Machine | undefined;
  /** True until the first snapshot: an unknown id may still come. */
  waiting: boolean;
  clockOffset: number;
  /** The open alerts of this machine. */
  alerts: readonly Alert[];
  /** Server time of the data shown, when the live connection is lost (the data may be old). */
  staleAsOf: number | null;
  onClose: () => void;
  dark?: boolean;
  fetchFn?: FetchLike;
}

const SEVERITY_LABEL = { critical: 'Critical', warning: 'Warning', info: 'Info' } as const;

/**
 * Everything about the selected machine beside the map: identity, status and why, the age of
 * its last scrape (ticking), readings with their limits, system summary, scrape health, open
 * alert and history charts. Esc closes it.
 */
export function MachineDetail(props: MachineDetailProps) {
  const { machineId, machine, waiting, onClose, staleAsOf } = props;
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape' && !event.defaultPrevented) onClose();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [onClose]);

  return (
    <aside
      className={`mw-detail${staleAsOf !== null ? ' mw-old-data' : ''}`}
      aria-labelledby="mw-detail-title"
      data-testid="machine-detail"
      data-machine-id={machineId}
    >
      <header className="mw-detail-head">
        <h2 id="mw-detail-title" ref={heading} tabIndex={-1} className="mw-detail-name">
          {machine?.name ?? machineId}
        </h2>
        <button type="button" className="mw-close" onClick={onClose} aria-label="Close details (Esc)" data-testid="detail-close">
          ×
        </button>
      </header>
      {staleAsOf !== null && (
        <p className="mw-old-note" data-testid="detail-old">
          Not live: as of {formatLocalTime(staleAsOf)}
        </p>
      )}
      {machine === undefined ? (
        <p className="mw-muted">{waiting ? 'Waiting for the fleet…' : `No machine “${machineId}” in the fleet.`}</p>
      ) : (
        <DetailBody {...props} machine={machine} />
      )}
    </aside>
  );
}

function DetailBody({ machine, clockOffset, alerts, dark, fetchFn }: MachineDetailProps & { machine: Machine }) {
  const now = useNow(1000) / 1000 + clockOffset;
  const meta = STATUS_META[machine.status];
  const readings = Object.entries(machine.readings).sort(([a], [b]) => a.localeCompare(b));
  const labels = Object.entries(machine.labels);
  const { system, last_scrape: scrape } = machine;
  const health = useScrapeHealth(machine.id, scrape?.time ?? null, fetchFn);
  return (
    <div className="mw-detail-body">
      <p className={`mw-detail-status mw-status-${machine.status}`} data-testid="detail-status">
        <StatusIcon status={machine.status} size={24} /> <strong>{meta.label}</strong>
        {machine.reason !== null && machine.reason !== '' && <span> — {machine.reason}</span>}
      </p>
      {machine.maintenance && (
        <p className="mw-detail-maintenance">
          In maintenance until {formatLocalDateTime(machine.maintenance.until)}: {machine.maintenance.reason}
        </p>
      )}
      <dl className="mw-facts">
        <dt>{machine.mode === 'push' ? 'Last push' : 'Last scrape'}</dt>
        <dd data-testid="detail-last-scrape">
          {scrape === null ? (
            'never'
          ) : (
            <>
              {formatAgo(scrape.time, now)}{' '}
              <time className="mw-muted" dateTime={new Date(scrape.time * 1000).toISOString()}>
                ({formatLocalTime(scrape.time)})
              </time>
              {scrape.error !== null && <span className="mw-popup-error"> — error: {scrape.error}</span>}
            </>
          )}
        </dd>
        {scrape !== null && scrape.error !== null && (
          <>
            <dt>Last success</dt>
            <dd>{machine.last_success_time === null ? 'never' : formatAgo(machine.last_success_time, now)}</dd>
          </>
        )}
        <dt>ID</dt>
        <dd>
          <code>{machine.id}</code>
        </dd>
        <dt>Site</dt>
        <dd>{machine.site ?? '—'}</dd>
        <dt>Labels</dt>
        <dd>{labels.length === 0 ? '—' : labels.map(([k, v]) => `${k}=${v}`).join(', ')}</dd>
        <dt>Mode</dt>
        <dd>
          {machine.mode === 'push' ? 'push (the machine sends)' : 'pull (scraped)'}
          {machine.mode === 'pull' && machine.url !== '' && (
            <>
              {' '}
              <code className="mw-url">{machine.url}</code>
            </>
          )}
          {' · every '}
          {formatDuration(machine.scrape_interval_seconds)}
          {!machine.enabled && ' · disabled in the inventory'}
        </dd>
      </dl>
      <OpenAlerts alerts={alerts} now={now} />
      <h3 className="mw-detail-heading">Readings</h3>
      {readings.length > 0 ? (
        <table className="mw-readings">
          <tbody>
            {readings.map(([metric, value]) => (
              <ReadingRow key={metric} metric={metric} value={value} threshold={machine.thresholds[metric]} />
            ))}
          </tbody>
        </table>
      ) : (
        <p className="mw-muted">No sensor readings.</p>
      )}
      <h3 className="mw-detail-heading">System</h3>
      <dl className="mw-facts">
        <dt>Uptime</dt>
        <dd>{system.uptime_seconds === null ? '—' : formatDuration(system.uptime_seconds)}</dd>
        <dt>CPU</dt>
        <dd>{formatPercent(system.cpu_usage_ratio)}</dd>
        <dt>Memory</dt>
        <dd>{formatPercent(system.memory_used_ratio)}</dd>
        <dt>Disk</dt>
        <dd>{formatPercent(system.disk_used_ratio)}</dd>
      </dl>
      <h3 className="mw-detail-heading">Scrape health</h3>
      {health.length === 0 ? (
        <p className="mw-muted">
          {scrape === null
            ? 'Not scraped yet.'
            : `Last ${machine.mode === 'push' ? 'push' : 'scrape'} took ${(scrape.duration_seconds * 1000).toFixed(0)} ms.`}
        </p>
      ) : (
        <dl className="mw-facts" data-testid="detail-health">
          {health.map((fact) => (
            <div key={fact.key} className="mw-fact">
              <dt>{fact.label}</dt>
              <dd>{fact.text}</dd>
            </div>
          ))}
        </dl>
      )}
      <HistorySection machine={machine} clockOffset={clockOffset} dark={dark} fetchFn={fetchFn} />
    </div>
  );
}

function OpenAlerts({ alerts, now }: { alerts: readonly Alert[]; now: number }) {
  if (alerts.length === 0) return null;
  return (
    <section className="mw-detail-alerts" aria-label="Open alerts of this machine" data-testid="detail-alerts">
      <h3 className="mw-detail-heading">Open alert</h3>
      {alerts.map((a) => (
        <p key={a.id} className={`mw-alert mw-severity-${a.severity}`}>
          <strong>{SEVERITY_LABEL[a.severity]}</strong>: {a.reason} — since {formatAgo(a.started_at, now)}
          {a.acknowledged !== null && (
            <>
              <br />
              Acknowledged by {a.acknowledged.by}: {a.acknowledged.reason}
            </>
          )}
        </p>
      ))}
    </section>
  );
}

/** The server's scrape health of a machine, read again after each of its scrapes. */
function useScrapeHealth(machineId: string, lastScrape: number | null, fetchFn?: FetchLike): HealthFact[] {
  const [facts, setFacts] = useState<HealthFact[]>([]);
  useEffect(() => setFacts([]), [machineId]);
  useEffect(() => {
    const controller = new AbortController();
    fetchScrapeHealth(machineId, fetchFn, controller.signal).then(
      (f) => setFacts(f),
      () => {
        // Keep what was shown: one failed read of an optional extra is not worth a message.
      },
    );
    return () => controller.abort();
  }, [machineId, lastScrape, fetchFn]);
  return facts;
}
