import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Machine } from '../src/types';
import { machine, waitUntil } from './helpers';
import { liveDeps } from './liveFake';

const FLEET: Machine[] = [
  machine('berlin', { name: 'IronCast Berlin', location: { lat: 52.52, lon: 13.4 } }),
  machine('detroit', {
    name: 'Press Detroit',
    status: 'warn',
    reason: 'machine_temperature_celsius 83.1 ≥ warn 80',
    location: { lat: 42.33, lon: -83.05 },
    readings: { machine_temperature_celsius: 83.1 },
    thresholds: { machine_temperature_celsius: { warn: 80, alarm: 95 } },
  }),
  machine('pune', { name: 'Lathe Pune', status: 'down', reason: 'connection refused', location: { lat: 18.52, lon: 73.86 } }),
  machine('nowhere', { name: 'Unplaced', location: null }),
];

function markers(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>('.mw-marker')];
}

function markerFor(id: string): HTMLElement | null {
  return document.querySelector<HTMLElement>(`.mw-marker[data-machine-id="${id}"]`);
}

beforeAll(() => {
  // jsdom does no layout; Leaflet reads the map size from clientWidth/clientHeight.
  Object.defineProperty(HTMLElement.prototype, 'clientWidth', { configurable: true, get: () => 1280 });
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 720 });
});

afterAll(() => {
  // Back to jsdom's own getters on Element.prototype.
  delete (HTMLElement.prototype as { clientWidth?: number }).clientWidth;
  delete (HTMLElement.prototype as { clientHeight?: number }).clientHeight;
});

beforeEach(() => {
  window.history.replaceState(null, '', '/');
  vi.stubGlobal('fetch', async () => new Response('Not Found', { status: 404 }));
  vi.spyOn(console, 'error').mockImplementation(() => {});
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('the page', () => {
  it('shows the snapshot as markers with the DOM contract, and the counts', async () => {
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    expect(screen.getByTestId('header-total').textContent).toBe('Connecting…');
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markers().length === 3, 2000, 'three markers');
    const detroit = markerFor('detroit')!;
    expect(detroit.getAttribute('data-status')).toBe('warn');
    expect(detroit.getAttribute('aria-label')).toBe('Press Detroit: Warning — machine_temperature_celsius 83.1 ≥ warn 80');
    expect(detroit.getAttribute('title')).toBe(detroit.getAttribute('aria-label'));
    expect(detroit.getAttribute('role')).toBe('button');
    expect(detroit.querySelector('svg')).not.toBeNull();
    expect(markerFor('nowhere')).toBeNull();
    expect(screen.getByTestId('header-total').textContent).toBe('4 machines');
    expect(screen.getByTestId('summary-up').textContent).toMatch(/Up\s+2/);
    expect(screen.getByTestId('summary-down').textContent).toMatch(/Down\s+1/);
    expect(screen.getByTestId('summary-unlocated').textContent).toContain('1 machine has no location');
    expect(screen.queryByTestId('connection-banner')).toBeNull();
  });

  it('fits the first snapshot when the link has no view, then never moves on updates or reconnects', async () => {
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markers().length === 3, 2000, 'markers');
    const fitted = window.location.hash;
    expect(fitted).toMatch(/^#map=\d+\/-?[\d.]+\/-?[\d.]+$/);
    expect(fitted).not.toBe('#map=2/25/10'); // moved from the default world view to the machines
    live.last().send({
      type: 'update',
      machines: [{ ...FLEET[0]!, status: 'alarm', reason: 'machine_temperature_celsius 99 ≥ alarm 95' }],
      removed: ['pune'],
      time: Date.now() / 1000,
    });
    await waitUntil(() => markerFor('berlin')?.getAttribute('data-status') === 'alarm', 2000, 'berlin in alarm');
    await waitUntil(() => markerFor('pune') === null, 2000, 'pune removed');
    expect(screen.getByTestId('summary-alarm').textContent).toMatch(/Alarm\s+1/);
    live.last().drop();
    expect(screen.getByTestId('connection-banner').textContent).toContain('Connection lost — reconnecting…');
    await waitUntil(() => live.sockets.length === 2, 2000, 'a reconnect');
    live.last().send({ type: 'snapshot', machines: [FLEET[1]!], time: Date.now() / 1000 });
    await waitUntil(() => markers().length === 1, 2000, 'the new snapshot');
    expect(screen.queryByTestId('connection-banner')).toBeNull();
    expect(window.location.hash).toBe(fitted);
  });

  it('notices a connection that went silent: says so, keeps the map, reconnects', async () => {
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    const silent = live.last();
    // The server pings every 10 ms; after its snapshot nothing more arrives, not even a ping.
    silent.send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000, ping_interval: 0.01 });
    await waitUntil(() => screen.queryByTestId('connection-banner') !== null, 2000, 'the connection-lost notice');
    expect(screen.getByTestId('connection-banner').textContent).toContain('Connection lost — reconnecting…');
    expect(silent.closed).toBe(true);
    await waitUntil(() => live.sockets.length >= 2, 2000, 'a reconnect');
    expect(screen.getByTestId('header-total').textContent).toBe('4 machines'); // the last data stays
  });

  it('opens the view in the link and keeps it when the first snapshot arrives', async () => {
    window.history.replaceState(null, '', '/#map=4/50/10');
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markerFor('berlin') !== null, 2000, 'berlin marker');
    expect(window.location.hash).toBe('#map=4/50/10');
  });

  it('keeps the view the operator chose before the first snapshot arrived', async () => {
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    fireEvent.click(document.querySelector('.leaflet-control-zoom-in')!);
    await waitUntil(() => window.location.hash.startsWith('#map=3/'), 2000, 'the zoom to reach the hash');
    const chosen = window.location.hash;
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markerFor('berlin') !== null, 2000, 'berlin marker');
    expect(window.location.hash).toBe(chosen);
  });

  it('ignores a bad view in the link', async () => {
    window.history.replaceState(null, '', '/#map=99/abc/10');
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markers().length === 3, 2000, 'markers');
    expect(window.location.hash).toMatch(/^#map=\d+\//);
    expect(window.location.hash).not.toContain('abc');
  });

  it('clusters nearby machines under their worst status with a breakdown', async () => {
    window.history.replaceState(null, '', '/#map=3/50/10');
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    const plant = [
      machine('a', { location: { lat: 50, lon: 10 } }),
      machine('b', { location: { lat: 50.01, lon: 10.01 }, status: 'sensor_fault' }),
      machine('c', { location: { lat: 50.02, lon: 10 }, status: 'stale' }),
    ];
    live.last().send({ type: 'snapshot', machines: plant, time: Date.now() / 1000 });
    await waitUntil(() => document.querySelector('.mw-cluster') !== null, 2000, 'a cluster');
    const cluster = document.querySelector<HTMLElement>('.mw-cluster')!;
    expect(cluster.getAttribute('data-status')).toBe('sensor_fault');
    expect(cluster.getAttribute('data-count')).toBe('3');
    expect(cluster.getAttribute('title')).toBe('3 machines, worst: Sensor fault (Sensor fault 1, Stale 1, Up 1)');
    expect(markers()).toHaveLength(0);
  });

  it('opens a live popup on click and filters the map from the summary', async () => {
    const live = liveDeps();
    render(<App url="ws://test/api/live" deps={live.deps} />);
    live.last().send({ type: 'snapshot', machines: FLEET, time: Date.now() / 1000 });
    await waitUntil(() => markers().length === 3, 2000, 'markers');
    const hash = window.location.hash;
    fireEvent.click(markerFor('detroit')!);
    await waitUntil(() => document.querySelector('.mw-popup') !== null, 2000, 'the popup');
    const popup = document.querySelector<HTMLElement>('.mw-popup')!;
    expect(popup.textContent).toContain('Press Detroit');
    expect(popup.textContent).toContain('83.1 °C');
    live.last().send({
      type: 'update',
      machines: [{ ...FLEET[1]!, status: 'alarm', reason: 'hot', readings: { machine_temperature_celsius: 97 } }],
      removed: [],
      time: Date.now() / 1000,
    });
    await waitUntil(() => popup.textContent?.includes('97 °C') === true, 2000, 'the popup to update');
    expect(popup.textContent).toContain('Alarm');
    // The selection goes into the link; the update never moved the map.
    expect(window.location.hash).toBe(`${hash}&sel=detroit`);

    fireEvent.click(screen.getByTestId('summary-alarm'));
    await waitUntil(() => markers().length === 1, 2000, 'only the alarm marker');
    expect(markers()[0]!.getAttribute('data-machine-id')).toBe('detroit');
    fireEvent.click(screen.getByTestId('summary-alarm'));
    await waitUntil(() => markers().length === 3, 2000, 'all markers again');
  });
});
