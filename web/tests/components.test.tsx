import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionBanner } from '../src/components/ConnectionBanner';
import { MachinePopup } from '../src/components/MachinePopup';
import { SummaryPanel } from '../src/components/SummaryPanel';
import { countStatuses } from '../src/counts';
import { formatLocalTime } from '../src/format';
import type { Status } from '../src/types';
import { machine } from './helpers';

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

function summary(statuses: Status[], filter: Status[] = [], onFilter = vi.fn()) {
  const counts = countStatuses(statuses.map((status) => ({ status })));
  return render(
    <SummaryPanel counts={counts} lastUpdate={null} clockOffset={0} unlocated={0} filter={filter} onFilter={onFilter} />,
  );
}

describe('SummaryPanel', () => {
  it('shows the count and the name of every status, and the total', () => {
    summary(['up', 'up', 'up', 'alarm', 'warn', 'sensor_fault']);
    expect(screen.getByTestId('summary-up').textContent).toContain('3');
    expect(screen.getByTestId('summary-up').textContent).toContain('Up');
    expect(screen.getByTestId('summary-alarm').textContent).toMatch(/Alarm\s+1/);
    expect(screen.getByTestId('summary-sensor_fault').textContent).toMatch(/Sensor fault\s+1/);
    expect(screen.getByTestId('summary-down').textContent).toMatch(/Down\s+0/);
    expect(screen.getByTestId('summary-total').textContent).toMatch(/Total\s+6/);
    const order = screen.getAllByRole('button').map((b) => b.getAttribute('data-testid'));
    expect(order.slice(0, 8)).toEqual([
      'summary-alarm',
      'summary-down',
      'summary-sensor_fault',
      'summary-warn',
      'summary-stale',
      'summary-unknown',
      'summary-up',
      'summary-disabled',
    ]);
  });

  it('filters on click, adds a second status, and clears on a second click', () => {
    const onFilter = vi.fn();
    const { rerender } = summary(['up', 'warn'], [], onFilter);
    fireEvent.click(screen.getByTestId('summary-warn'));
    expect(onFilter).toHaveBeenLastCalledWith(['warn']);
    const counts = countStatuses([{ status: 'up' }, { status: 'warn' }]);
    rerender(
      <SummaryPanel counts={counts} lastUpdate={null} clockOffset={0} unlocated={0} filter={['warn']} onFilter={onFilter} />,
    );
    expect(screen.getByTestId('summary-warn').getAttribute('aria-pressed')).toBe('true');
    expect(screen.getByTestId('summary-up').getAttribute('aria-pressed')).toBe('false');
    expect(screen.getByTestId('summary-filter').textContent).toContain('Warning');
    fireEvent.click(screen.getByTestId('summary-alarm'));
    expect(onFilter).toHaveBeenLastCalledWith(['alarm', 'warn']);
    fireEvent.click(screen.getByTestId('summary-warn'));
    expect(onFilter).toHaveBeenLastCalledWith([]);
  });

  it('shows the time of the last update and machines without a location', () => {
    vi.useFakeTimers();
    const t = new Date(2025, 5, 1, 14, 3, 4);
    vi.setSystemTime(new Date(t.getTime() + 12_000));
    render(
      <SummaryPanel
        counts={countStatuses([{ status: 'up' }])}
        lastUpdate={t.getTime() / 1000}
        clockOffset={0}
        unlocated={2}
        filter={[]}
        onFilter={() => {}}
      />,
    );
    // In the viewer's locale: "14:03:04" or "02:03:04 PM".
    const clock = formatLocalTime(t.getTime() / 1000);
    expect(clock).toMatch(/0?2:03:04|14:03:04/);
    expect(screen.getByTestId('summary-updated').textContent).toBe(`Updated ${clock} (12 s ago)`);
    expect(screen.getByTestId('summary-unlocated').textContent).toContain('2 machines have no location');
    act(() => {
      vi.advanceTimersByTime(60_000);
    });
    expect(screen.getByTestId('summary-updated').textContent).toBe(`Updated ${clock} (1 min ago)`);
  });
});

describe('ConnectionBanner', () => {
  it('is an alert saying the connection is lost and when the next try is', () => {
    vi.useFakeTimers();
    const now = new Date(2025, 5, 1, 9, 0, 0).getTime();
    vi.setSystemTime(now);
    render(<ConnectionBanner connection={{ kind: 'waiting', attempt: 2, retryAt: now + 4000 }} />);
    const banner = screen.getByRole('alert');
    expect(banner.getAttribute('data-testid')).toBe('connection-banner');
    expect(banner.textContent).toContain('Connection lost — reconnecting…');
    expect(banner.textContent).toContain(`Next try in 4 s (at ${formatLocalTime(now / 1000 + 4)})`);
    expect(formatLocalTime(now / 1000 + 4)).toMatch(/0?9:00:04/);
    act(() => {
      vi.advanceTimersByTime(3000);
    });
    expect(banner.textContent).toContain('Next try in 1 s');
  });

  it('says it is trying while a new connection is being opened', () => {
    render(<ConnectionBanner connection={{ kind: 'connecting' }} />);
    expect(screen.getByTestId('connection-banner').textContent).toContain('Trying now');
  });
});

describe('MachinePopup', () => {
  it('shows identity, status with reason, readings with units and crossed limits, scrape and system', () => {
    vi.useFakeTimers();
    vi.setSystemTime(1764136812_000);
    const m = machine('ironcast_berlin', {
      name: 'IronCast Berlin',
      status: 'warn',
      reason: 'machine_temperature_celsius 83.1 ≥ warn 80',
      readings: { machine_temperature_celsius: 83.1, machine_pressure_bar: 1.02, machine_vibration: 0.3 },
      thresholds: { machine_temperature_celsius: { warn: 80, alarm: 95 } },
      last_scrape: { time: 1764136800, duration_seconds: 0.01, error: null, samples: 40 },
      system: { uptime_seconds: 93600, cpu_usage_ratio: 0.12, memory_used_ratio: 0.4, disk_used_ratio: 0.7 },
    });
    const { container } = render(<MachinePopup machine={m} clockOffset={0} />);
    const text = container.textContent ?? '';
    for (const expected of [
      'IronCast Berlin',
      'ironcast_berlin',
      'Berlin',
      'Warning',
      '83.1 ≥ warn 80',
      '83.1 °C',
      '1.02 bar',
      'machine_vibration',
      '12 s ago',
      '1 d 2 h',
      '12%',
      '40%',
      '70%',
    ]) {
      expect(text).toContain(expected);
    }
    const temp = container.querySelector('tr[data-metric="machine_temperature_celsius"]');
    expect(temp?.className).toBe('mw-crossed-warn');
    expect(temp?.querySelector('.mw-limit-warn.mw-limit-hit')?.textContent?.trim()).toBe('≥ warn 80 °C');
    expect(temp?.querySelector('.mw-limit-alarm')?.className).not.toContain('mw-limit-hit');
  });

  it('calls the last batch of a push machine its last push', () => {
    vi.useFakeTimers();
    vi.setSystemTime(1764137000_000);
    const m = machine('m1', {
      mode: 'push',
      url: '',
      status: 'stale',
      reason: 'no data pushed for over 45s',
      last_scrape: { time: 1764136940, duration_seconds: 0.01, error: null, samples: 3 },
    });
    render(<MachinePopup machine={m} clockOffset={0} />);
    expect(screen.getByText('Last push')).toBeTruthy();
    expect(screen.getByTestId('popup-last-scrape').textContent).toBe('1 min ago');
  });

  it('shows the scrape error of a machine that is down', () => {
    vi.useFakeTimers();
    vi.setSystemTime(1764137000_000);
    const m = machine('m1', {
      status: 'down',
      reason: 'connection refused',
      last_scrape: { time: 1764136990, duration_seconds: 5, error: 'connection refused', samples: 0 },
      last_success_time: 1764136400,
    });
    render(<MachinePopup machine={m} clockOffset={0} />);
    expect(screen.getByTestId('popup-last-scrape').textContent).toBe('10 s ago — error: connection refused');
    expect(screen.getByText('10 min ago')).toBeTruthy();
  });
});
