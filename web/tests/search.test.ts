import { describe, expect, it } from 'vitest';
import { compareMachines, matchesSearch, searchTerms, visibleMachines } from '../src/search';
import { machine } from './helpers';

const FLEET = [
  machine('press_10', { name: 'Press 10', site: 'Lyon', status: 'up', labels: { line: 'stamping' } }),
  machine('press_2', { name: 'Press 2', site: 'Lyon', status: 'up' }),
  machine('oven_1', { name: 'Oven 1', site: 'Berlin', status: 'warn' }),
  machine('lathe_1', { name: 'Lathe', site: 'Pune', status: 'alarm' }),
  machine('saw_1', { name: 'Saw', site: null, status: 'disabled' }),
  machine('mill_1', { name: 'Mill', site: 'Pune', status: 'sensor_fault' }),
  machine('drill_1', { name: 'Drill', site: 'Pune', status: 'down' }),
];

describe('search', () => {
  it('finds by name, id, site and label value, every word must match, any case', () => {
    const ids = (q: string) => visibleMachines(FLEET, [], q).map((m) => m.id);
    expect(ids('press 2')).toEqual(['press_2']);
    expect(ids('PRESS_10')).toEqual(['press_10']);
    expect(ids('lyon')).toEqual(['press_2', 'press_10']);
    expect(ids('stamping')).toEqual(['press_10']);
    expect(ids('line=stamping')).toEqual(['press_10']);
    expect(ids('lyon oven')).toEqual([]);
    expect(searchTerms('  a   B ')).toEqual(['a', 'b']);
    expect(matchesSearch(FLEET[0]!, [])).toBe(true);
  });

  it('sorts worst first (alarm, down, sensor fault, warn, …, up, disabled), then by name as people count', () => {
    expect(visibleMachines(FLEET, [], '').map((m) => m.id)).toEqual([
      'lathe_1',
      'drill_1',
      'mill_1',
      'oven_1',
      'press_2',
      'press_10',
      'saw_1',
    ]);
    expect(compareMachines(FLEET[1]!, FLEET[0]!)).toBeLessThan(0);
  });

  it('applies the status filter with the search', () => {
    expect(visibleMachines(FLEET, ['up', 'alarm'], '').map((m) => m.id)).toEqual(['lathe_1', 'press_2', 'press_10']);
    expect(visibleMachines(FLEET, ['up'], 'pune')).toEqual([]);
  });
});

describe('sorting many machines', () => {
  it('orders names as people count, without accents or case deciding', () => {
    const names = ['press 10', 'Press 9', 'Öfen 1', 'oven 2', 'press 009b'];
    const sorted = visibleMachines(
      names.map((name, i) => machine(`m${i}`, { name })),
      [],
      '',
    ).map((m) => m.name);
    expect(sorted).toEqual(['Öfen 1', 'oven 2', 'Press 9', 'press 009b', 'press 10']);
  });

  it('sorts 10,000 machines, worst first (speed is for bench/, not for a test)', () => {
    const fleet = Array.from({ length: 10_000 }, (_, i) =>
      machine(`m${i}`, { name: `Machine ${(i * 7919) % 10_000}`, status: i % 10 === 0 ? 'warn' : 'up' }),
    );
    const sorted = visibleMachines(fleet, [], 'machine');
    expect(sorted).toHaveLength(10_000);
    expect(sorted.slice(0, 1000).every((m) => m.status === 'warn')).toBe(true);
    expect(sorted[0]!.name).toBe('Machine 0');
    expect(sorted[1000]!.name).toBe('Machine 1');
  });
});
