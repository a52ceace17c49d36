import { describe, expect, it } from 'vitest';
import { statusIconSvg } from '../src/icons';
import { isStatus, machineTitle, STATUS_META, STATUSES_BY_SEVERITY, worse, worstStatus } from '../src/status';
import { STATUSES } from '../src/types';

describe('status metadata', () => {
  it('orders statuses worst first as the operators expect', () => {
    expect(STATUSES_BY_SEVERITY).toEqual(['alarm', 'down', 'sensor_fault', 'warn', 'stale', 'unknown', 'up', 'disabled']);
  });

  it('gives every status its own shape, so colour is never the only signal', () => {
    const shapes = new Set(STATUSES.map((s) => STATUS_META[s].shape));
    expect(shapes.size).toBe(STATUSES.length);
    const icons = new Set(STATUSES.map((s) => statusIconSvg(s, 24)));
    expect(icons.size).toBe(STATUSES.length);
  });

  it('draws icons as decorative SVG without text content', () => {
    for (const s of STATUSES) {
      const host = document.createElement('div');
      host.innerHTML = statusIconSvg(s, 24);
      const svg = host.querySelector('svg');
      expect(svg?.getAttribute('aria-hidden')).toBe('true');
      expect(host.textContent).toBe('');
    }
  });

  it('recognises only the eight statuses of the contract', () => {
    expect(isStatus('sensor_fault')).toBe(true);
    expect(isStatus('SENSOR_FAULT')).toBe(false);
    expect(isStatus('ok')).toBe(false);
    expect(isStatus(3)).toBe(false);
    expect(isStatus(null)).toBe(false);
  });
});

describe('worst status', () => {
  it('picks the worse of two', () => {
    expect(worse('up', 'warn')).toBe('warn');
    expect(worse('alarm', 'down')).toBe('alarm');
    expect(worse('disabled', 'up')).toBe('up');
    expect(worse('stale', 'unknown')).toBe('stale');
  });

  it('finds the worst of many and null for none', () => {
    expect(worstStatus(['up', 'disabled', 'sensor_fault', 'warn'])).toBe('sensor_fault');
    expect(worstStatus(['disabled'])).toBe('disabled');
    expect(worstStatus([])).toBeNull();
  });
});

describe('machine title', () => {
  it('reads name, status text and reason', () => {
    expect(machineTitle('IronCast Berlin', 'warn', 'machine_temperature_celsius 83.1 ≥ warn 80')).toBe(
      'IronCast Berlin: Warning — machine_temperature_celsius 83.1 ≥ warn 80',
    );
  });

  it('leaves the reason out when there is none', () => {
    expect(machineTitle('Press 4', 'up', null)).toBe('Press 4: Up');
    expect(machineTitle('Press 4', 'sensor_fault', '')).toBe('Press 4: Sensor fault');
  });
});
