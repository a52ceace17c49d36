import { describe, expect, it } from 'vitest';
import { DEFAULT_VIEW, formatView, parseView, searchWithoutWall, toggleStatus } from '../src/viewState';

describe('the view in the URL', () => {
  it('reads every part and writes it back the same, keeping the map part first', () => {
    const hash = '#map=6/51/11.5&status=alarm,down&q=press%2014&sel=forge_berlin&tab=alerts&wall=1&wall_cycle=30';
    const view = parseView(hash);
    expect(view).toEqual({
      statuses: ['alarm', 'down'],
      q: 'press 14',
      sel: 'forge_berlin',
      tab: 'alerts',
      wall: true,
      wallCycle: 30,
    });
    expect(formatView(view, '#map=6/51/11.5')).toBe(hash);
  });

  it('leaves defaults out, so a plain link stays #map=…', () => {
    expect(formatView(DEFAULT_VIEW, '#map=4/50/10&sel=x')).toBe('#map=4/50/10');
    expect(formatView(DEFAULT_VIEW, '')).toBe('');
    expect(parseView('')).toEqual(DEFAULT_VIEW);
  });

  it('keeps statuses in severity order without repeats', () => {
    expect(parseView('#status=up,alarm,up,bogus').statuses).toEqual(['alarm', 'up']);
    expect(toggleStatus(['up'], 'alarm')).toEqual(['alarm', 'up']);
    expect(toggleStatus(['alarm', 'up'], 'alarm')).toEqual(['up']);
  });

  it('falls back to the default for anything malformed or out of bounds', () => {
    const view = parseView('#sel=<img src=x>&q=%E0%A4%A&tab=admin&wall_cycle=1&wall=maybe');
    expect(view.sel).toBeNull();
    expect(view.q).toBe(''); // a bad escape is dropped, not thrown
    expect(view.tab).toBe('machines');
    expect(view.wallCycle).toBeNull(); // below 5 s
    expect(view.wall).toBe(false);
    expect(parseView(`#q=${'x'.repeat(500)}`).q).toHaveLength(200);
    expect(parseView('#wall_cycle=99999').wallCycle).toBeNull();
  });

  it('encodes search text so that & and # cannot break the link', () => {
    const view = { ...DEFAULT_VIEW, q: 'a&b #c=d' };
    const hash = formatView(view);
    expect(parseView(hash).q).toBe('a&b #c=d');
  });

  it('takes wall mode from the query string of a start-up URL', () => {
    expect(parseView('', '?wall=1&wall_cycle=30')).toMatchObject({ wall: true, wallCycle: 30 });
    expect(searchWithoutWall('?wall=1&wall_cycle=30&x=1')).toBe('?x=1');
    expect(searchWithoutWall('?wall=1')).toBe('');
  });
});
