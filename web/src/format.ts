import type { Threshold } from './types';

/** Display unit derived from a metric's suffix (`_celsius`, `_bar`, `_rpm`), or null when unknown. */
export function unitOf(metric: string): string | null {
  if (metric.endsWith('_celsius')) return '°C';
  if (metric.endsWith('_bar')) return 'bar';
  if (metric.endsWith('_rpm')) return 'rpm';
  return null;
}

/**
 * The reading's name for people: `machine_temperature_celsius` → "temperature". A metric
 * without a known unit keeps its raw name, so nothing is guessed.
 */
export function metricLabel(metric: string): string {
  const unit = unitOf(metric);
  if (unit === null) return metric;
  const stem = metric.replace(/_(celsius|bar|rpm)$/, '').replace(/^machine_/, '');
  return stem.replace(/_/g, ' ');
}

/** A number with no more precision than a sensor reading deserves: 1480, 83.1, 1.02. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  const decimals = abs >= 1000 ? 0 : abs >= 100 ? 1 : 2;
  const fixed = value.toFixed(decimals);
  const trimmed = fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
  return trimmed === '-0' ? '0' : trimmed;
}

/**
 * A chart axis tick: as many decimals as the ticks' spacing `increment` needs, so that ticks
 * 0.995, 1.000, 1.005 read as such and not as "1", "1", "1" (readings keep formatNumber's precision).
 */
export function formatTick(value: number, increment: number): string {
  if (!Number.isFinite(value)) return '—';
  const shown = Number.isFinite(increment) && increment > 0 ? String(Number(increment.toPrecision(6))) : '';
  const decimals = shown.includes('e-') ? Number(shown.split('e-')[1]) : (shown.split('.')[1] ?? '').length;
  const fixed = value.toFixed(Math.min(decimals, 10));
  return /^-0(\.0*)?$/.test(fixed) ? fixed.slice(1) : fixed;
}

/** "83.1 °C", "1.02 bar", "1480 rpm", or the bare number for a metric without a known unit. */
export function formatReading(metric: string, value: number): string {
  const unit = unitOf(metric);
  return unit === null ? formatNumber(value) : `${formatNumber(value)} ${unit}`;
}

/** Which limit a reading has reached (at or above), the worse one first; null when none. */
export function thresholdCrossed(value: number, threshold: Threshold | undefined): 'warn' | 'alarm' | null {
  if (threshold === undefined) return null;
  if (threshold.alarm !== null && value >= threshold.alarm) return 'alarm';
  if (threshold.warn !== null && value >= threshold.warn) return 'warn';
  return null;
}

/** A span of time, coarse enough to read at a glance: "45 s", "12 min", "5 h 3 min", "2 d 4 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}

/**
 * How long ago `thenSeconds` was at `nowSeconds` (both Unix seconds): "12 s ago". A time
 * slightly in the future (clocks a little apart) reads "just now" rather than a negative age.
 */
export function formatAgo(thenSeconds: number, nowSeconds: number): string {
  const age = nowSeconds - thenSeconds;
  if (!Number.isFinite(age)) return '—';
  if (age < 1) return 'just now';
  return `${formatDuration(age)} ago`;
}

/** A 0–1 ratio as a whole percentage: "12%". */
export function formatPercent(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return '—';
  return `${Math.round(ratio * 100)}%`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}


/**
 * Time of day in the viewer's locale and time zone (Intl): "14:03:07" or "2:03:07 PM".
 * `timeZone` is for tests; the page leaves it to the browser.
 */
export function formatLocalTime(unixSeconds: number, timeZone?: string): string {
  if (!Number.isFinite(unixSeconds)) return '—';
  return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone }).format(
    new Date(unixSeconds * 1000),
  );
}

/** Date and time in the viewer's locale and time zone, for times that may be days ago. */
export function formatLocalDateTime(unixSeconds: number, timeZone?: string): string {
  if (!Number.isFinite(unixSeconds)) return '—';
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium', timeZone }).format(
    new Date(unixSeconds * 1000),
  );
}

/** A Unix time as the value of an `<input type="datetime-local">` (local wall time, minutes). */
export function toDatetimeLocal(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** The Unix time of a `datetime-local` value (read as local time), or null when it is not one. */
export function fromDatetimeLocal(value: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s] = m;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? '0'));
  const t = date.getTime();
  return Number.isFinite(t) ? t / 1000 : null;
}
