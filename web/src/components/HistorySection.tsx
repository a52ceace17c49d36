import { type FormEvent, useEffect, useState } from 'react';
import { formatLocalDateTime, fromDatetimeLocal, toDatetimeLocal } from '../format';
import { chooseStep, type FetchLike, MAX_RANGE_SECONDS, PRESET_SECONDS, type RangePreset } from '../history';
import type { Machine } from '../types';
import { HistoryChart } from './HistoryChart';

type Range = { kind: 'preset'; preset: RangePreset } | { kind: 'custom'; start: number; end: number };

const PRESET_LABEL: Record<RangePreset, string> = { '1h': '1 h', '24h': '24 h', '7d': '7 d' };

/** A preset's window ends now; it moves on every minute while the panel stays open. */
const PRESET_REFRESH_MS = 60_000;

export interface HistorySectionProps {
  machine: Machine;
  /** Server clock minus local clock, seconds: "the last hour" is the server's. */
  clockOffset: number;
  dark?: boolean;
  fetchFn?: FetchLike;
}

/** The range picker (1 h, 24 h, 7 d, custom) and one chart per channel of the machine. */
export function HistorySection({ machine, clockOffset, dark = false, fetchFn }: HistorySectionProps) {
  const [range, setRange] = useState<Range>({ kind: 'preset', preset: '1h' });
  const [minute, setMinute] = useState(() => Date.now());
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (range.kind !== 'preset') return;
    const timer = window.setInterval(() => setMinute(Date.now()), PRESET_REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [range.kind]);

  let start: number;
  let end: number;
  if (range.kind === 'preset') {
    const span = PRESET_SECONDS[range.preset];
    const step = chooseStep(span, machine.scrape_interval_seconds);
    // Ends on a step boundary, so a refresh a minute later asks for the same buckets.
    end = Math.ceil((minute / 1000 + clockOffset) / step) * step;
    start = end - span;
  } else {
    ({ start, end } = range);
  }
  const step = chooseStep(end - start, machine.scrape_interval_seconds);

  function pickCustom(event: FormEvent) {
    event.preventDefault();
    const s = fromDatetimeLocal(from);
    const e = fromDatetimeLocal(to);
    if (s === null || e === null) return setError('Give both a start and an end.');
    if (e <= s) return setError('The end must be after the start.');
    if (e - s > MAX_RANGE_SECONDS) return setError('At most 366 days at once.');
    setError(null);
    setRange({ kind: 'custom', start: s, end: e });
  }

  function openCustom() {
    if (from === '' || to === '') {
      setFrom(toDatetimeLocal(start));
      setTo(toDatetimeLocal(end));
    }
    setRange({ kind: 'custom', start, end });
  }

  // A machine that is down has no current readings; its configured limits still name its channels.
  const named = Object.keys(machine.readings);
  const channels = (named.length > 0 ? named : Object.keys(machine.thresholds)).sort((a, b) => a.localeCompare(b));
  return (
    <section className="mw-history" aria-label="History">
      <h3 className="mw-detail-heading">History</h3>
      <div className="mw-range" role="group" aria-label="Time range">
        {(Object.keys(PRESET_LABEL) as RangePreset[]).map((preset) => (
          <button
            key={preset}
            type="button"
            aria-pressed={range.kind === 'preset' && range.preset === preset}
            onClick={() => setRange({ kind: 'preset', preset })}
            data-testid={`range-${preset}`}
          >
            {PRESET_LABEL[preset]}
          </button>
        ))}
        <button type="button" aria-pressed={range.kind === 'custom'} onClick={openCustom} data-testid="range-custom">
          Custom
        </button>
      </div>
      {range.kind === 'custom' && (
        <form className="mw-range-custom" onSubmit={pickCustom}>
          <label>
            From <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} required />
          </label>
          <label>
            To <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} required />
          </label>
          <button type="submit">Show</button>
          {error !== null && (
            <p className="mw-form-error" role="alert">
              {error}
            </p>
          )}
        </form>
      )}
      <p className="mw-muted mw-range-text" data-testid="range-text">
        {formatLocalDateTime(start)} – {formatLocalDateTime(end)}, one point per {step} s
      </p>
      {channels.length === 0 ? (
        <p className="mw-muted">This machine sends no sensor readings to chart.</p>
      ) : (
        channels.map((metric) => (
          <HistoryChart
            key={metric}
            machineId={machine.id}
            metric={metric}
            start={start}
            end={end}
            step={step}
            threshold={machine.thresholds[metric]}
            dark={dark}
            fetchFn={fetchFn}
          />
        ))
      )}
    </section>
  );
}
