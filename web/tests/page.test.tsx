import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../src/alerts';
import { App } from '../src/App';
import type { Account } from '../src/auth';
import type { Machine } from '../src/types';
import { machine, waitUntil } from './helpers';
import { liveDeps } from './liveFake';

const XSS = '<img src=x onerror=alert(1)>';
const NOW = () => Date.now() / 1000;

const FLEET: Machine[] = [
  machine('berlin', { name: 'IronCast Berlin', site: 'Berlin', location: { lat: 52.52, lon: 13.4 }, labels: { line: 'casting' } }),
  machine('detroit', {
    name: 'Press Detroit',
    site: 'Detroit',
    status: 'warn',
    reason: 'machine_temperature_celsius 83.1 ≥ warn 80',
    location: { lat: 42.33, lon: -83.05 },
    readings: { machine_temperature_celsius: 83.1 },
    thresholds: { machine_temperature_celsius: { warn: 80, alarm: 95 } },
  }),
  machine('pune', { name: 'Lathe Pune', site: 'Pune', status: 'down', reason: 'connection refused', location: { lat: 18.52, lon: 73.86 } }),
  machine('xss', { name: XSS, site: XSS, status: 'alarm', reason: XSS, location: { lat: -23.5, lon: -46.6 }, labels: { x: XSS } }),
  machine('nowhere', { name: 'Unplaced', site: null, location: null }),
];

const ALERT: Alert = {
  id: 7,
  machine_id: 'pune',
  rule: 'status',
  state: 'firing',
  severity: 'critical',
  level: 'down',
  reason: 'down: connection refused',
  site: 'Pune',
  labels: {},
  started_at: NOW() - 600,
  fired_at: NOW() - 600,
  acknowledged: null,
  resolved_at: null,
  last_notified_at: null,
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** The server's HTTP API as the page uses it, small and in memory; every call is recorded. */
function fakeServer(options: { history?: 'ok' | 'missing' } = {}) {
  const calls: { url: string; init?: RequestInit }[] = [];
  let alert = { ...ALERT };
  const fetchFn = vi.fn(async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    const u = new URL(url, 'http://test');
    if (u.pathname === '/api/alerts') return json({ alerts: [alert] });
    if (u.pathname === '/api/alerts/7/ack') {
      const { reason } = JSON.parse(String(init?.body)) as { reason: string };
      alert = { ...alert, state: 'acknowledged', acknowledged: { at: NOW(), by: 'ada', reason } };
      return json(alert);
    }
    const history = /^\/api\/machines\/([^/]+)\/history$/.exec(u.pathname);
    if (history !== null) {
      if (options.history === 'missing') return json({ detail: 'Not Found' }, 404);
      const start = Number(u.searchParams.get('start'));
      const step = Number(u.searchParams.get('step'));
      return json({
        machine_id: history[1],
        metric: u.searchParams.get('metric'),
        start,
        end: Number(u.searchParams.get('end')),
        step,
        points: [
          { time: start + step, min: 70, avg: 71, max: 72, count: 1 },
          { time: start + 2 * step, min: 72, avg: 73, max: 75, count: 1 },
        ],
      });
    }
    const one = /^\/api\/machines\/([^/]+)$/.exec(u.pathname);
    if (one !== null) {
      return json({ id: one[1], scrape_health: { last_duration_seconds: 0.012, consecutive_failures: 2 } });
    }
    return json({ detail: 'Not Found' }, 404);
  });
  return { fetchFn, calls };
}

const SESSION: Account = { kind: 'session', name: 'ada', role: 'viewer', csrfToken: 'csrf-123' };

function rows(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>('[data-testid="machine-row"]')];
}

function row(id: string): HTMLElement | null {
  return document.querySelector<HTMLElement>(`[data-testid="machine-row"][data-machine-id="${id}"]`);
}

function markers(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>('.mw-marker')];
}

function detail(): HTMLElement | null {
  return document.querySelector<HTMLElement>('[data-testid="machine-detail"]');
}

// The whole world: every located machine is a marker of its own at this zoom.
const WORLD = '#map=2/20/0';

async function start(hash = WORLD, props: { session?: Account; history?: 'ok' | 'missing' } = {}) {
  window.history.replaceState(null, '', `/${hash}`);
  const live = liveDeps();
  const server = fakeServer({ history: props.history });
  render(<App url="ws://test/api/live" deps={live.deps} fetchFn={server.fetchFn} session={props.session} />);
  // Scraped 5 s ago, so the age in words changes every second.
  const fleet = FLEET.map((m) => ({ ...m, last_scrape: { time: NOW() - 5, duration_seconds: 0.01, error: null } }));
  live.last().send({ type: 'snapshot', machines: fleet, time: NOW() });
  await waitUntil(() => screen.getByTestId('header-total').textContent === '5 machines', 3000, 'the fleet');
  return { live, server };
}

beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, 'clientWidth', { configurable: true, get: () => 1280 });
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 720 });
});

afterAll(() => {
  delete (HTMLElement.prototype as { clientWidth?: number }).clientWidth;
  delete (HTMLElement.prototype as { clientHeight?: number }).clientHeight;
});

beforeEach(() => {
  vi.stubGlobal('fetch', async () => new Response('Not Found', { status: 404 }));
  vi.spyOn(console, 'error').mockImplementation(() => {});
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('the machine list and the search', () => {
  it('lists every machine worst first; the search narrows list and map, Enter selects and pans', async () => {
    await start();
    expect(rows().map((r) => r.getAttribute('data-machine-id'))).toEqual(['xss', 'pune', 'detroit', 'berlin', 'nowhere']);
    expect(row('pune')!.textContent).toContain('Down'); // status in words, not colour alone
    expect(row('pune')!.querySelector('svg')).not.toBeNull();

    fireEvent.change(screen.getByTestId('search'), { target: { value: 'casting' } });
    await waitUntil(() => rows().length === 1, 2000, 'one row');
    expect(row('berlin')).not.toBeNull();
    await waitUntil(() => markers().length === 1, 2000, 'one marker');
    expect(window.location.hash).toBe(`${WORLD}&q=casting`);

    fireEvent.keyDown(screen.getByTestId('search'), { key: 'Enter' });
    await waitUntil(() => detail()?.getAttribute('data-machine-id') === 'berlin', 2000, 'the detail panel');
    expect(row('berlin')!.getAttribute('aria-selected')).toBe('true');
    // Zoomed in to Berlin (the centre a little beside it, so that the popup clears the summary panel).
    await waitUntil(() => /^#map=10\/5[0-4]\.\d+\/1[2-9]\.\d+/.test(window.location.hash), 2000, 'the map to go to Berlin');
    expect(window.location.hash).toContain('&q=casting&sel=berlin');
    await waitUntil(() => document.querySelector('.mw-popup')?.textContent?.includes('IronCast Berlin') === true, 2000, 'popup');
  });

  it('says so when nothing matches', async () => {
    await start();
    fireEvent.change(screen.getByTestId('search'), { target: { value: 'no such machine' } });
    await waitUntil(() => screen.queryByText('No machine matches.') !== null, 2000, 'the empty note');
  });

  it('selecting a marker selects the row; Esc closes the panel; Back brings it again', async () => {
    await start();
    await waitUntil(() => markers().length === 4, 2000, 'markers');
    fireEvent.click(document.querySelector('.mw-marker[data-machine-id="detroit"]')!);
    await waitUntil(() => row('detroit')?.getAttribute('aria-selected') === 'true', 2000, 'the row selected');
    expect(detail()!.textContent).toContain('Press Detroit');
    expect(window.location.hash).toContain('sel=detroit');

    fireEvent.keyDown(document.body, { key: 'Escape' });
    await waitUntil(() => detail() === null, 2000, 'the panel to close');
    expect(window.location.hash).not.toContain('sel=');

    act(() => window.history.back());
    await waitUntil(() => detail()?.getAttribute('data-machine-id') === 'detroit', 3000, 'Back to reopen the panel');
  });

  it('is keyboard navigable: arrows move between rows, Enter selects', async () => {
    await start();
    const list = screen.getByTestId('machine-list');
    const first = rows()[0]!;
    expect(first.tabIndex).toBe(0);
    expect(rows()[1]!.tabIndex).toBe(-1);
    first.focus();
    fireEvent.keyDown(list, { key: 'ArrowDown' });
    await waitUntil(() => document.activeElement === row('pune'), 2000, 'focus on the second row');
    fireEvent.keyDown(list, { key: 'Enter' });
    await waitUntil(() => detail()?.getAttribute('data-machine-id') === 'pune', 2000, 'pune selected');
    fireEvent.keyDown(list, { key: 'End' });
    await waitUntil(() => document.activeElement === row('nowhere'), 2000, 'focus on the last row');
  });

  it('draws only the rows in view of a 10,000-machine fleet', async () => {
    window.history.replaceState(null, '', '/#map=4/45/10');
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} fetchFn={fakeServer().fetchFn} />);
    const many = Array.from({ length: 10_000 }, (_, i) =>
      machine(`m${i}`, { name: `Machine ${i}`, location: { lat: 40 + (i % 100) / 10, lon: (i / 100) % 20 } }),
    );
    live.last().send({ type: 'snapshot', machines: many, time: NOW() });
    await waitUntil(() => rows().length > 0, 5000, 'rows');
    expect(rows().length).toBeLessThan(100);
    expect(screen.getByTestId('tab-machines').textContent).toContain('10000');
  });
});

describe('the view in the URL', () => {
  it('a link reopens filter, search, selection and map view', async () => {
    await start('#map=3/45/-40&status=alarm,warn&q=press&sel=detroit');
    await waitUntil(() => rows().length === 1, 2000, 'the filtered list');
    expect(row('detroit')!.getAttribute('aria-selected')).toBe('true');
    expect(screen.getByTestId('summary-warn').getAttribute('aria-pressed')).toBe('true');
    expect(screen.getByTestId('summary-alarm').getAttribute('aria-pressed')).toBe('true');
    expect((screen.getByTestId('search') as HTMLInputElement).value).toBe('press');
    await waitUntil(() => detail()?.textContent?.includes('Press Detroit') === true, 2000, 'the panel');
    await waitUntil(() => markers().length === 1, 2000, 'the one marker');
    // Reopening the popup of a linked selection never moves the linked view.
    expect(window.location.hash.split('&')[0]).toBe('#map=3/45/-40');
  });

  it('a selection unknown to the fleet shows as such, not as an error', async () => {
    await start('#sel=gone_machine');
    await waitUntil(() => detail()?.textContent?.includes('No machine “gone_machine” in the fleet.') === true, 2000, 'note');
  });
});

describe('the detail panel', () => {
  it('shows identity, status, readings with limits, scrape health, the open alert and a chart per channel', async () => {
    const { server } = await start(`${WORLD}&sel=detroit`);
    const panel = () => detail()!;
    await waitUntil(() => panel().textContent?.includes('Consecutive failures') === true, 2000, 'scrape health');
    const text = panel().textContent!;
    expect(text).toContain('Warning — machine_temperature_celsius 83.1 ≥ warn 80');
    expect(text).toContain('83.1 °C');
    expect(text).toContain('warn 80 °C');
    expect(text).toContain('Detroit');
    expect(text).toMatch(/Last scrape.*ago/);

    const chart = await screen.findByTestId('chart-machine_temperature_celsius');
    await waitUntil(() => chart.textContent?.includes('min 70 °C · avg 72 °C · max 75 °C') === true, 2000, 'the chart stats');
    const historyCalls = () => server.calls.map((c) => new URL(c.url, 'http://t')).filter((u) => u.pathname.endsWith('/history'));
    const last = () => historyCalls()[historyCalls().length - 1]!;
    expect(last().searchParams.get('metric')).toBe('machine_temperature_celsius');
    expect(Number(last().searchParams.get('end')) - Number(last().searchParams.get('start'))).toBe(3600);
    expect(last().searchParams.get('step')).toBe('15');
    const csv = within(chart).getByText('CSV') as HTMLAnchorElement;
    expect(csv.getAttribute('href')).toBe(`${last().pathname}.csv${last().search}`);

    fireEvent.click(screen.getByTestId('range-7d'));
    await waitUntil(() => last().searchParams.get('step') === '1800', 2000, 'the 7-day request');
    expect(Number(last().searchParams.get('end')) - Number(last().searchParams.get('start'))).toBe(7 * 86400);

    fireEvent.click(screen.getByTestId('range-custom'));
    const [from, to] = [...panel().querySelectorAll<HTMLInputElement>('input[type="datetime-local"]')];
    fireEvent.change(from!, { target: { value: '2026-01-02T10:00' } });
    fireEvent.change(to!, { target: { value: '2026-01-02T09:00' } });
    fireEvent.click(within(panel()).getByText('Show'));
    expect(within(panel()).getByRole('alert').textContent).toBe('The end must be after the start.');
    fireEvent.change(to!, { target: { value: '2026-01-02T12:00' } });
    fireEvent.click(within(panel()).getByText('Show'));
    const want = new Date(2026, 0, 2, 10, 0).getTime() / 1000;
    await waitUntil(() => Number(last().searchParams.get('start')) === want, 2000, 'the custom request');
    expect(Number(last().searchParams.get('end'))).toBe(want + 7200);
  });

  it('ticks the age of the last scrape every second', async () => {
    await start('#sel=berlin');
    const age = () => screen.getByTestId('detail-last-scrape').textContent;
    const before = age();
    await waitUntil(() => age() !== before, 3000, 'the age to tick');
  });

  it('says the history is not available when the server has none', async () => {
    await start('#sel=detroit', { history: 'missing' });
    const chart = await screen.findByTestId('chart-machine_temperature_celsius');
    await waitUntil(() => chart.textContent?.includes('History not available: no history for this machine') === true, 2000, 'note');
  });
});

describe('names are text', () => {
  it('a machine named like markup shows as text in the list, the panel, the popup and the marker', async () => {
    await start(`${WORLD}&sel=xss`);
    expect(row('xss')!.querySelector('.mw-row-name')!.textContent).toBe(XSS);
    await waitUntil(() => detail()?.querySelector('h2')?.textContent === XSS, 2000, 'the panel heading');
    await waitUntil(() => document.querySelector('.mw-popup-name')?.textContent === XSS, 2000, 'the popup');
    await waitUntil(() => document.querySelector('.mw-marker[data-machine-id="xss"]') !== null, 2000, 'the marker');
    const marker = document.querySelector('.mw-marker[data-machine-id="xss"]')!;
    expect(marker.getAttribute('title')).toBe(`${XSS}: Alarm — ${XSS}`);
    expect(document.querySelector('img[src="x"]')).toBeNull();
  });
});

describe('disconnected', () => {
  it('marks the list, the panel and the map as old, with the time of the data', async () => {
    const { live } = await start('#sel=berlin');
    await waitUntil(() => detail() !== null, 2000, 'panel');
    expect(document.querySelector('.mw-offline')).toBeNull();
    live.last().drop();
    await waitUntil(() => document.querySelector('.mw-offline') !== null, 2000, 'the page marked offline');
    for (const id of ['list-old', 'detail-old', 'map-old']) {
      expect(screen.getByTestId(id).textContent).toMatch(/as of \d/);
    }
    await waitUntil(() => live.sockets.length >= 2, 2000, 'a reconnect');
    live.last().send({ type: 'snapshot', machines: FLEET, time: NOW() });
    await waitUntil(() => document.querySelector('.mw-offline') === null, 2000, 'live again');
    expect(screen.queryByTestId('list-old')).toBeNull();
  });
});

describe('alerts beside the map', () => {
  it('lists the open alerts; a signed-in user acknowledges with a reason (CSRF token sent)', async () => {
    const { server } = await start(`${WORLD}&sel=pune`, { session: SESSION });
    await waitUntil(() => screen.queryByTestId('detail-alerts')?.textContent?.includes('down: connection refused') === true, 3000, 'the open alert in the panel');
    fireEvent.click(screen.getByTestId('tab-alerts'));
    expect(window.location.hash).toContain('tab=alerts');
    fireEvent.click(await screen.findByTestId('alert-7-ack-button'));
    fireEvent.change(screen.getByTestId('alert-7-reason'), { target: { value: 'crew on site' } });
    fireEvent.click(screen.getByTestId('alert-7-submit'));
    await waitUntil(() => screen.queryByTestId('alert-7-ack') !== null, 2000, 'the acknowledgement');
    expect(screen.getByTestId('alert-7-ack').textContent).toContain('Acknowledged by ada');
    const post = server.calls.find((c) => c.url === '/api/alerts/7/ack')!;
    expect((post.init?.headers as Record<string, string>)['X-CSRF-Token']).toBe('csrf-123');
    // The machine's id in the alert selects it.
    fireEvent.click(screen.getByTestId('detail-close'));
    await waitUntil(() => detail() === null, 2000, 'the panel closed');
    fireEvent.click(within(screen.getByTestId('alert-7')).getByRole('button', { name: 'pune' }));
    await waitUntil(() => detail()?.getAttribute('data-machine-id') === 'pune', 2000, 'pune selected from its alert');
  });

  it('offers no Acknowledge button to anonymous read', async () => {
    await start(`${WORLD}&tab=alerts`, { session: { kind: 'anonymous' } });
    await screen.findByTestId('alert-7');
    expect(screen.queryByTestId('alert-7-ack-button')).toBeNull();
  });
});

describe('wall mode', () => {
  it('?wall=1: dark and large, nothing to type or acknowledge, tours the sites; the button leaves it', async () => {
    window.history.replaceState(null, '', '/?wall=1&wall_cycle=30#map=4/45/10&tab=alerts');
    const live = liveDeps();
    render(
      <App
        url="ws://test/api/live"
        deps={live.deps}
        fetchFn={fakeServer().fetchFn}
        session={SESSION}
        account={<span data-testid="account">ada</span>}
      />,
    );
    live.last().send({ type: 'snapshot', machines: FLEET, time: NOW() });
    await screen.findByTestId('alert-7');
    expect(document.querySelector('.mw-wall')).not.toBeNull();
    expect(document.documentElement.classList.contains('mw-wall-root')).toBe(true);
    expect(screen.queryByTestId('alert-7-ack-button')).toBeNull();
    expect(screen.queryByTestId('account')).toBeNull();
    expect(window.location.search).toBe('');
    expect(window.location.hash).toContain('wall=1&wall_cycle=30');
    // Sites by name: Berlin first; the map goes to it.
    await waitUntil(() => /^Site: .+ \(1\/4\)$/.test(screen.queryByTestId('wall-site')?.textContent ?? ''), 2000, 'the first site');
    await waitUntil(() => !window.location.hash.startsWith('#map=4/45/10'), 2000, 'the map to move to the site');
    fireEvent.click(screen.getByTestId('tab-machines'));
    expect(screen.queryByTestId('search')).toBeNull();

    fireEvent.click(screen.getByTestId('wall-toggle'));
    await waitUntil(() => document.querySelector('.mw-wall') === null, 2000, 'wall mode off');
    expect(window.location.hash).not.toContain('wall');
    expect(screen.getByTestId('search')).not.toBeNull();
    expect(screen.getByTestId('account')).not.toBeNull();
  });
});
