import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Alert, acknowledgeAlert, fetchOpenAlerts, sortAlerts } from '../src/alerts';
import { AlertsPanel } from '../src/components/AlertsPanel';

afterEach(() => {
  cleanup();
});

const NOW = Date.now() / 1000;

function alert(id: number, changes: Partial<Alert> = {}): Alert {
  return {
    id,
    machine_id: `press_${id}`,
    rule: 'status',
    state: 'firing',
    severity: 'critical',
    level: 'down',
    reason: 'down: connection refused',
    site: 'Lyon',
    labels: {},
    started_at: NOW - 600,
    fired_at: NOW - 540,
    acknowledged: null,
    resolved_at: null,
    last_notified_at: NOW - 540,
    ...changes,
  };
}

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('alerts API', () => {
  it('sorts critical first, unacknowledged before acknowledged, newest first', () => {
    const acked = alert(1, { state: 'acknowledged', fired_at: NOW });
    const warning = alert(2, { severity: 'warning' });
    const older = alert(3, { fired_at: NOW - 3600 });
    const newer = alert(4, { fired_at: NOW - 10 });
    expect(sortAlerts([acked, warning, older, newer]).map((a) => a.id)).toEqual([4, 3, 1, 2]);
  });

  it('asks for the open alerts and reports the server\'s words on failure', async () => {
    const fetchFn = vi.fn(async () => answer(200, { alerts: [alert(1, { severity: 'info' }), alert(2)] }));
    expect((await fetchOpenAlerts(fetchFn)).map((a) => a.id)).toEqual([2, 1]);
    expect(fetchFn).toHaveBeenCalledWith('/api/alerts?state=open', expect.anything());
    const off = vi.fn(async () => answer(503, { detail: 'alerts are off in this server' }));
    await expect(fetchOpenAlerts(off)).rejects.toThrow('alerts are off in this server');
  });

  it('posts the reason as JSON', async () => {
    const fetchFn = vi.fn(async (_url: string, _init?: RequestInit) => answer(200, alert(7, { state: 'acknowledged' })));
    const updated = await acknowledgeAlert(7, 'crew on site', fetchFn);
    expect(updated.state).toBe('acknowledged');
    const [url, init] = fetchFn.mock.calls[0] ?? [''];
    expect(url).toBe('/api/alerts/7/ack');
    expect(init?.method).toBe('POST');
    expect(JSON.parse(String(init?.body))).toEqual({ reason: 'crew on site' });
  });

  it("sends the session's CSRF token, without which the server refuses the acknowledgement", async () => {
    const fetchFn = vi.fn(async (_url: string, _init?: RequestInit) => answer(200, alert(7, { state: 'acknowledged' })));
    await acknowledgeAlert(7, 'crew on site', fetchFn, 'csrf-123');
    const [, init] = fetchFn.mock.calls[0] ?? [''];
    expect((init?.headers as Record<string, string>)['X-CSRF-Token']).toBe('csrf-123');
  });
});

describe('AlertsPanel', () => {
  it('says so when nothing is open', () => {
    render(<AlertsPanel alerts={[]} clockOffset={0} onAcknowledged={vi.fn()} />);
    expect(screen.getByText('No open alerts.')).toBeTruthy();
  });

  it('shows severity in words, machine, site, reason, age and who acknowledged why', () => {
    const acked = alert(2, {
      state: 'acknowledged',
      acknowledged: { at: NOW - 60, by: 'maria', reason: 'valve stuck, crew on site' },
    });
    render(<AlertsPanel alerts={[alert(1), acked]} clockOffset={0} onAcknowledged={vi.fn()} />);
    expect(screen.getByTestId('alerts-count').textContent).toBe('2');
    const row = screen.getByTestId('alert-1');
    expect(row.textContent).toContain('Critical · press_1 · Lyon');
    expect(row.textContent).toContain('down: connection refused');
    expect(row.textContent).toMatch(/since 10 min ago/);
    expect(screen.getByTestId('alert-2-ack').textContent).toMatch(/Acknowledged by maria 1 min ago: valve stuck, crew on site/);
    expect(screen.queryByTestId('alert-2-ack-button')).toBeNull();
  });

  it('acknowledges with a reason, and refuses an empty one without asking the server', async () => {
    const fetchFn = vi.fn(async () =>
      answer(200, alert(1, { state: 'acknowledged', acknowledged: { at: NOW, by: 'anonymous', reason: 'on it' } })),
    );
    const onAcknowledged = vi.fn();
    render(<AlertsPanel alerts={[alert(1)]} clockOffset={0} onAcknowledged={onAcknowledged} fetchFn={fetchFn} />);
    fireEvent.click(screen.getByTestId('alert-1-ack-button'));
    fireEvent.click(screen.getByTestId('alert-1-submit'));
    expect((await screen.findByRole('alert')).textContent).toContain('Say why');
    expect(fetchFn).not.toHaveBeenCalled();

    fireEvent.change(screen.getByTestId('alert-1-reason'), { target: { value: '  on it ' } });
    fireEvent.click(screen.getByTestId('alert-1-submit'));
    await waitFor(() => expect(onAcknowledged).toHaveBeenCalledTimes(1));
    expect(onAcknowledged.mock.calls[0]?.[0].acknowledged.reason).toBe('on it');
  });

  it('shows the server\'s refusal (an alert already acknowledged elsewhere)', async () => {
    const fetchFn = vi.fn(async () => answer(409, { detail: 'alert 1 is acknowledged: only a firing alert can be acknowledged' }));
    render(<AlertsPanel alerts={[alert(1)]} clockOffset={0} onAcknowledged={vi.fn()} fetchFn={fetchFn} />);
    fireEvent.click(screen.getByTestId('alert-1-ack-button'));
    fireEvent.change(screen.getByTestId('alert-1-reason'), { target: { value: 'on it' } });
    fireEvent.click(screen.getByTestId('alert-1-submit'));
    expect((await screen.findByRole('alert')).textContent).toContain('only a firing alert can be acknowledged');
  });
});
