import { describe, expect, it } from 'vitest';
import { formatViewHash, parseViewHash, wrapLon } from '../src/viewHash';

describe('parseViewHash', () => {
  it('reads zoom, latitude and longitude', () => {
    expect(parseViewHash('#map=6/52.52/13.405')).toEqual({ zoom: 6, lat: 52.52, lon: 13.405 });
    expect(parseViewHash('map=3/-33.9/-70.6')).toEqual({ zoom: 3, lat: -33.9, lon: -70.6 });
    expect(parseViewHash('#filter=x&map=10/0/0')).toEqual({ zoom: 10, lat: 0, lon: 0 });
  });

  it.each([
    '',
    '#',
    '#map=',
    '#map=6/52.5',
    '#map=6/52.5/13/4',
    '#map=a/b/c',
    '#map=6/91/0',
    '#map=6/0/181',
    '#map=0/0/0',
    '#map=19/0/0',
    '#map=6.5/0/0',
    '#map=6/1e3/0',
    '#map=6/NaN/0',
    '#zoom=6/52/13',
  ])('ignores the bad hash %j', (hash) => {
    expect(parseViewHash(hash)).toBeNull();
  });
});

describe('formatViewHash', () => {
  it('writes a short hash that parses back to the same view', () => {
    const hash = formatViewHash({ zoom: 6, lat: 52.520008, lon: 13.404954 });
    expect(hash).toBe('#map=6/52.52/13.405');
    expect(parseViewHash(hash)).toEqual({ zoom: 6, lat: 52.52, lon: 13.405 });
  });

  it('keeps other parts of the hash', () => {
    expect(formatViewHash({ zoom: 2, lat: 10, lon: 20 }, '#map=5/1/1&filter=alarm')).toBe('#map=2/10/20&filter=alarm');
  });

  it('clamps and wraps views Leaflet can produce', () => {
    const hash = formatViewHash({ zoom: 1, lat: -95, lon: 370 });
    expect(parseViewHash(hash)).toEqual({ zoom: 1, lat: -90, lon: 10 });
    expect(wrapLon(-190)).toBe(170);
    expect(wrapLon(180)).toBe(180);
  });

  it('never writes negative zero', () => {
    expect(formatViewHash({ zoom: 3, lat: -0.0001, lon: -0.0001 })).toBe('#map=3/0/0');
  });
});
