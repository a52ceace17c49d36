import { describe, expect, it } from 'vitest';
import { applyLiveMessage, EMPTY_FLEET, parseLiveMessage, parseMachine } from '../src/fleet';
import type { LiveMessage } from '../src/types';
import { machine } from './helpers';

const CONTRACT_EXAMPLE = {
  id: 'ironcast_berlin',
  name: 'IronCast Berlin',
  url: 'http://127.0.0.1:9817/metrics',
  site: 'Berlin',
  location: { lat: 52.52, lon: 13.405 },
  plan_position: { x: 0.25, y: 0.75 },
  labels: { line: 'casting' },
  enabled: true,
  scrape_interval_seconds: 15.0,
  status: 'warn',
  reason: 'machine_temperature_celsius 83.1 ≥ warn 80',
  last_scrape: { time: 1764136800.1, duration_seconds: 0.012, error: null, samples: 57 },
  last_success_time: 1764136800.1,
  consecutive_failures: 0,
  readings: { machine_temperature_celsius: 83.1, machine_pressure_bar: 1.02 },
  thresholds: { machine_temperature_celsius: { warn: 80, alarm: 95 } },
  system: { uptime_seconds: 86400, cpu_usage_ratio: 0.12, memory_used_ratio: 0.4, disk_used_ratio: 0.7 },
  mode: 'pull',
  stale_after_seconds: null,
  maintenance: { window: 3, until: 1764140400, reason: 'relining' },
};

describe('parseMachine', () => {
  it('keeps every field of the documented JSON shape', () => {
    expect(parseMachine(CONTRACT_EXAMPLE)).toEqual(CONTRACT_EXAMPLE);
  });

  it('rejects entries without an id', () => {
    expect(parseMachine({ name: 'x' })).toBeNull();
    expect(parseMachine({ id: '' })).toBeNull();
    expect(parseMachine('m1')).toBeNull();
    expect(parseMachine(null)).toBeNull();
  });

  it('turns odd fields into safe defaults instead of dropping the machine', () => {
    const m = parseMachine({
      id: 'm1',
      status: 'exploded',
      location: { lat: 123, lon: 5 },
      readings: { machine_speed_rpm: 'fast', machine_pressure_bar: 1.5 },
      thresholds: { machine_pressure_bar: { warn: '2', alarm: 3 } },
      last_scrape: { duration_seconds: 1 },
      plan_position: { x: 1.5, y: 0.5 },
      maintenance: { window: 'x' },
      consecutive_failures: 'many',
    });
    expect(m).not.toBeNull();
    expect(m!.name).toBe('m1');
    expect(m!.status).toBe('unknown');
    expect(m!.location).toBeNull();
    expect(m!.readings).toEqual({ machine_pressure_bar: 1.5 });
    expect(m!.thresholds).toEqual({ machine_pressure_bar: { warn: null, alarm: 3 } });
    expect(m!.last_scrape).toBeNull();
    expect(m!.system.cpu_usage_ratio).toBeNull();
    expect(m!.plan_position).toBeNull();
    expect(m!.maintenance).toBeNull();
    expect(m!.consecutive_failures).toBe(0);
  });
});

describe('parseLiveMessage', () => {
  it('reads a snapshot and an update', () => {
    const snap = parseLiveMessage(JSON.stringify({ type: 'snapshot', machines: [CONTRACT_EXAMPLE], time: 100 }));
    expect(snap?.type).toBe('snapshot');
    expect(snap?.machines).toHaveLength(1);
    expect(snap?.time).toBe(100);
    const update = parseLiveMessage(JSON.stringify({ type: 'update', machines: [], removed: ['a', 7, 'b'], time: 101 }));
    expect(update).toEqual({ type: 'update', machines: [], removed: ['a', 'b'], time: 101 });
  });

  it('skips malformed machines inside a valid message', () => {
    const msg = parseLiveMessage(JSON.stringify({ type: 'snapshot', machines: [{ id: 'ok' }, { nope: 1 }, 5] }));
    expect(msg?.machines.map((m) => m.id)).toEqual(['ok']);
    expect(msg?.time).toBeNull();
  });

  it('ignores text that is not a live message', () => {
    expect(parseLiveMessage('not json')).toBeNull();
    expect(parseLiveMessage('[]')).toBeNull();
    expect(parseLiveMessage('{"type":"hello","machines":[]}')).toBeNull();
    expect(parseLiveMessage('{"type":"update"}')).toBeNull();
  });
});

describe('applyLiveMessage', () => {
  const snapshot: LiveMessage = {
    type: 'snapshot',
    machines: [machine('a'), machine('b'), machine('c')],
    time: 1000,
  };

  it('replaces everything with a snapshot and counts snapshots', () => {
    const first = applyLiveMessage(EMPTY_FLEET, snapshot, 990);
    expect([...first.machines.keys()]).toEqual(['a', 'b', 'c']);
    expect(first.snapshots).toBe(1);
    expect(first.lastUpdate).toBe(1000);
    expect(first.clockOffset).toBe(10);
    const second = applyLiveMessage(first, { type: 'snapshot', machines: [machine('z')], time: 1005 }, 1000);
    expect([...second.machines.keys()]).toEqual(['z']);
    expect(second.snapshots).toBe(2);
  });

  it('merges an update by id and drops removed machines, without touching the old state', () => {
    const before = applyLiveMessage(EMPTY_FLEET, snapshot, 1000);
    const after = applyLiveMessage(
      before,
      {
        type: 'update',
        machines: [machine('b', { status: 'alarm' }), machine('d', { status: 'down' })],
        removed: ['c', 'never-there'],
        time: 1010,
      },
      1010,
    );
    expect([...after.machines.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect(after.machines.get('b')?.status).toBe('alarm');
    expect(after.machines.get('a')).toBe(before.machines.get('a'));
    expect(after.snapshots).toBe(1);
    expect(before.machines.get('b')?.status).toBe('up');
    expect(before.machines.has('c')).toBe(true);
  });

  it('uses the local clock when the server sends no time', () => {
    const fleet = applyLiveMessage(EMPTY_FLEET, { ...snapshot, time: null }, 1234);
    expect(fleet.lastUpdate).toBe(1234);
    expect(fleet.clockOffset).toBe(0);
  });
});
