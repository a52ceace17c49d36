import { formatAgo, formatDuration, formatPercent, formatReading, metricLabel, thresholdCrossed, unitOf } from '../format';
import { useLayoutEffect } from 'react';
import { useNow } from '../hooks';
import { STATUS_META } from '../status';
import type { Machine, Threshold } from '../types';
import { StatusIcon } from './StatusIcon';

function limitText(metric: string, level: 'warn' | 'alarm', threshold: Threshold): string | null {
  const value = threshold[level];
  if (value === null) return null;
  const unit = unitOf(metric);
  return `${level} ${unit === null ? value : `${value} ${unit}`}`;
}

export function ReadingRow({
  metric,
  value,
  threshold,
  showLimits = true,
}: {
  metric: string;
  value: number;
  threshold: Threshold | undefined;
  showLimits?: boolean;
}) {
  const crossed = thresholdCrossed(value, threshold);
  const limits = threshold === undefined || !showLimits ? [] : (['warn', 'alarm'] as const);
  return (
    <tr className={crossed === null ? undefined : `mw-crossed-${crossed}`} data-metric={metric}>
      <th scope="row">{metricLabel(metric)}</th>
      <td className="mw-reading-value">{formatReading(metric, value)}</td>
      <td className="mw-reading-limits">
        {limits.map((level) => {
          const text = threshold === undefined ? null : limitText(metric, level, threshold);
          if (text === null) return null;
          const hit = crossed === level || (crossed === 'alarm' && level === 'warn');
          return (
            <span key={level} className={`mw-limit mw-limit-${level}${hit ? ' mw-limit-hit' : ''}`}>
              {hit ? `≥ ${text}` : text}{' '}
            </span>
          );
        })}
      </td>
    </tr>
  );
}

/** The details of one machine in its popup; re-renders live as the machine changes. */
export function MachinePopup({
  machine,
  clockOffset,
  onLayout,
  compact = false,
}: {
  machine: Machine;
  clockOffset: number;
  /** Called after every render, so the popup around it can fit the new text. */
  onLayout?: () => void;
  /** Name, status and readings only: the detail panel beside the map has the rest. */
  compact?: boolean;
}) {
  const now = useNow(1000) / 1000 + clockOffset;
  useLayoutEffect(() => onLayout?.());
  const meta = STATUS_META[machine.status];
  const readings = Object.entries(machine.readings).sort(([a], [b]) => a.localeCompare(b));
  const labels = Object.entries(machine.labels);
  const { system, last_scrape: scrape } = machine;
  return (
    <div className="mw-popup-body" data-machine-id={machine.id}>
      <h2 className="mw-popup-name">{machine.name}</h2>
      <p className="mw-popup-ident">
        <code>{machine.id}</code>
        {machine.site !== null && <span className="mw-popup-site"> · {machine.site}</span>}
      </p>
      <p className={`mw-popup-status mw-status-${machine.status}`} data-testid="popup-status">
        <StatusIcon status={machine.status} size={22} /> <strong>{meta.label}</strong>
        {machine.reason !== null && machine.reason !== '' && (
          <span className="mw-popup-reason"> — {machine.reason}</span>
        )}
      </p>
      {readings.length > 0 ? (
        <table className="mw-readings">
          <tbody>
            {readings.map(([metric, value]) => (
              <ReadingRow
                key={metric}
                metric={metric}
                value={value}
                threshold={machine.thresholds[metric]}
                showLimits={!compact}
              />
            ))}
          </tbody>
        </table>
      ) : (
        <p className="mw-popup-muted">No sensor readings.</p>
      )}
      {!compact && (
      <dl className="mw-popup-facts">
        <dt>{machine.mode === 'push' ? 'Last push' : 'Last scrape'}</dt>
        <dd data-testid="popup-last-scrape">
          {scrape === null ? 'never' : formatAgo(scrape.time, now)}
          {scrape !== null && scrape.error !== null && (
            <span className="mw-popup-error"> — error: {scrape.error}</span>
          )}
        </dd>
        {scrape !== null && scrape.error !== null && (
          <>
            <dt>Last success</dt>
            <dd>{machine.last_success_time === null ? 'never' : formatAgo(machine.last_success_time, now)}</dd>
          </>
        )}
        <dt>Uptime</dt>
        <dd>{system.uptime_seconds === null ? '—' : formatDuration(system.uptime_seconds)}</dd>
        <dt>CPU</dt>
        <dd>{formatPercent(system.cpu_usage_ratio)}</dd>
        <dt>Memory</dt>
        <dd>{formatPercent(system.memory_used_ratio)}</dd>
        <dt>Disk</dt>
        <dd>{formatPercent(system.disk_used_ratio)}</dd>
        {labels.length > 0 && (
          <>
            <dt>Labels</dt>
            <dd>{labels.map(([k, v]) => `${k}=${v}`).join(', ')}</dd>
          </>
        )}
        {!machine.enabled && (
          <>
            <dt>Scraping</dt>
            <dd>disabled in the inventory</dd>
          </>
        )}
      </dl>
      )}
    </div>
  );
}

const STACK_LIMIT = 200;

/** Machines that share one place (they cannot be split by zooming): pick one to see it. */
export function StackList({ machines, onPick }: { machines: Machine[]; onPick: (id: string) => void }) {
  const sorted = [...machines].sort(
    (a, b) => STATUS_META[b.status].severity - STATUS_META[a.status].severity || a.name.localeCompare(b.name),
  );
  const shown = sorted.slice(0, STACK_LIMIT);
  return (
    <div className="mw-popup-body mw-stack">
      <h2 className="mw-popup-name">{machines.length} machines at this place</h2>
      <ul className="mw-stack-list">
        {shown.map((m) => (
          <li key={m.id}>
            <button type="button" className="mw-stack-item" onClick={() => onPick(m.id)}>
              <StatusIcon status={m.status} size={18} /> {m.name}: {STATUS_META[m.status].label}
            </button>
          </li>
        ))}
      </ul>
      {sorted.length > shown.length && (
        <p className="mw-popup-muted">and {sorted.length - shown.length} more; filter by status to narrow.</p>
      )}
    </div>
  );
}
