import { describe, expect, it } from 'vitest';
import {
  formatAgo,
  formatLocalDateTime,
  formatLocalTime,
  fromDatetimeLocal,
  formatDuration,
  formatNumber,
  formatTick,
  formatPercent,
  formatReading,
  metricLabel,
  thresholdCrossed,
  toDatetimeLocal,
  unitOf,
} from '../src/format';

describe('units', () => {
  it('derives the unit from the metric suffix', () => {
    expect(unitOf('machine_temperature_celsius')).toBe('°C');
    expect(unitOf('machine_pressure_bar')).toBe('bar');
    expect(unitOf('machine_speed_rpm')).toBe('rpm');
    expect(unitOf('machine_vibration')).toBeNull();
    expect(unitOf('machine_barrel_count')).toBeNull();
  });

  it('names readings for people, keeping the raw name when the unit is unknown', () => {
    expect(metricLabel('machine_temperature_celsius')).toBe('temperature');
    expect(metricLabel('machine_oil_pressure_bar')).toBe('oil pressure');
    expect(metricLabel('machine_vibration')).toBe('machine_vibration');
  });

  it('formats readings with their unit and sensible precision', () => {
    expect(formatReading('machine_temperature_celsius', 83.1)).toBe('83.1 °C');
    expect(formatReading('machine_pressure_bar', 1.0234)).toBe('1.02 bar');
    expect(formatReading('machine_speed_rpm', 1480)).toBe('1480 rpm');
    expect(formatReading('machine_vibration', 0.5)).toBe('0.5');
    expect(formatNumber(-0.001)).toBe('0');
    expect(formatNumber(Number.NaN)).toBe('—');
    expect(formatNumber(250.04)).toBe('250');
  });

  it('writes chart ticks with the decimals their spacing needs', () => {
    expect([0.995, 1, 1.005].map((v) => formatTick(v, 0.005))).toEqual(['0.995', '1.000', '1.005']);
    expect([1488, 1490, 1492].map((v) => formatTick(v, 2))).toEqual(['1488', '1490', '1492']);
    expect([0, 0.25, 0.5].map((v) => formatTick(v, 0.25))).toEqual(['0.00', '0.25', '0.50']);
    expect(formatTick(-0.0000001, 0.1)).toBe('0.0');
    expect(formatTick(2e-7, 1e-7)).toBe('0.0000002');
  });
});

describe('thresholds', () => {
  const t = { warn: 80, alarm: 95 };
  it('says which limit a reading reached', () => {
    expect(thresholdCrossed(79.9, t)).toBeNull();
    expect(thresholdCrossed(80, t)).toBe('warn');
    expect(thresholdCrossed(95, t)).toBe('alarm');
    expect(thresholdCrossed(120, { warn: null, alarm: 100 })).toBe('alarm');
    expect(thresholdCrossed(120, { warn: 100, alarm: null })).toBe('warn');
    expect(thresholdCrossed(120, undefined)).toBeNull();
  });
});

describe('times', () => {
  it('formats durations coarsely', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(59.9)).toBe('59 s');
    expect(formatDuration(60)).toBe('1 min');
    expect(formatDuration(3600)).toBe('1 h');
    expect(formatDuration(3600 * 5 + 180)).toBe('5 h 3 min');
    expect(formatDuration(86400 * 2 + 3600 * 4 + 59)).toBe('2 d 4 h');
    expect(formatDuration(-1)).toBe('—');
  });

  it('formats ages, tolerating clocks a little apart', () => {
    expect(formatAgo(100, 112)).toBe('12 s ago');
    expect(formatAgo(100, 100.4)).toBe('just now');
    expect(formatAgo(100, 95)).toBe('just now');
    expect(formatAgo(0, 7200)).toBe('2 h ago');
  });

  it('formats percentages and clock times', () => {
    expect(formatPercent(0.123)).toBe('12%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatPercent(null)).toBe('—');
    const t = Date.UTC(2025, 0, 2, 7, 5, 9) / 1000;
    // In the viewer's locale and time zone (here pinned for the test).
    expect(formatLocalTime(t, 'UTC')).toMatch(/^0?7:05:09/);
    expect(formatLocalTime(t, 'Asia/Kolkata')).toMatch(/^(12:35:09|0?12:35:09 PM)/);
    expect(formatLocalDateTime(t, 'UTC')).toContain('2025');
    expect(formatLocalTime(Number.NaN)).toBe('—');
  });

  it('reads and writes datetime-local values in local time', () => {
    const t = new Date(2026, 0, 2, 10, 30).getTime() / 1000;
    expect(toDatetimeLocal(t)).toBe('2026-01-02T10:30');
    expect(fromDatetimeLocal('2026-01-02T10:30')).toBe(t);
    expect(fromDatetimeLocal('2026-01-02T10:30:15')).toBe(t + 15);
    expect(fromDatetimeLocal('yesterday')).toBeNull();
    expect(fromDatetimeLocal('')).toBeNull();
  });
});
