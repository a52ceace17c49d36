import { describe, expect, it } from 'vitest';
import { unwrapGeometry, unwrapLongitudes } from '../src/map/geometry';

describe('unwrapLongitudes', () => {
  it('leaves ordinary lines alone', () => {
    const line = [
      [10, 50],
      [11, 51],
      [-5, 40],
    ];
    expect(unwrapLongitudes(line)).toEqual(line);
  });

  it('continues a ring across the antimeridian instead of jumping around the world', () => {
    const ring = [
      [179.5, 65],
      [-179.5, 65.5],
      [-179, 66],
      [179.8, 66.2],
      [179.5, 65],
    ];
    const out = unwrapLongitudes(ring);
    expect(out.map((p) => p[0])).toEqual([179.5, 180.5, 181, 179.8, 179.5]);
    for (let i = 1; i < out.length; i++) expect(Math.abs(out[i]![0]! - out[i - 1]![0]!)).toBeLessThan(180);
  });

  it('handles a jump in the other direction', () => {
    expect(unwrapLongitudes([[-179.9, -16.5], [180, -16.5]]).map((p) => p[0])).toEqual([-179.9, -180]);
  });

  it('unwraps every ring of a multipolygon', () => {
    const g = unwrapGeometry({
      type: 'MultiPolygon',
      coordinates: [
        [
          [
            [179, 0],
            [-179, 0],
            [179, 1],
          ],
        ],
      ],
    });
    expect(g.type === 'MultiPolygon' && g.coordinates[0]![0]!.map((p) => p[0])).toEqual([179, 181, 179]);
  });
});
