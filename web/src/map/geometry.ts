import type { Geometry, Position } from 'geojson';

/**
 * The same line or ring with longitudes made continuous: Natural Earth cuts shapes at ±180°,
 * so a ring that crosses it jumps from 179.9 to -180. Drawn as is, that jump is a line across
 * the whole world; shifted by ±360° the shape continues past 180° instead (Leaflet draws it there).
 */
export function unwrapLongitudes(coords: readonly Position[]): Position[] {
  const out: Position[] = [];
  let shift = 0;
  let previous: number | null = null;
  for (const point of coords) {
    const [lon, lat, ...rest] = point as [number, number, ...number[]];
    if (previous !== null) {
      const delta = lon - previous;
      if (delta > 180) shift -= 360;
      else if (delta < -180) shift += 360;
    }
    previous = lon;
    out.push([lon + shift, lat, ...rest]);
  }
  return out;
}

/** `geometry` with every line and ring passed through `unwrapLongitudes`. */
export function unwrapGeometry(geometry: Geometry): Geometry {
  switch (geometry.type) {
    case 'LineString':
      return { ...geometry, coordinates: unwrapLongitudes(geometry.coordinates) };
    case 'MultiLineString':
    case 'Polygon':
      return { ...geometry, coordinates: geometry.coordinates.map(unwrapLongitudes) } as Geometry;
    case 'MultiPolygon':
      return { ...geometry, coordinates: geometry.coordinates.map((p) => p.map(unwrapLongitudes)) };
    case 'GeometryCollection':
      return { ...geometry, geometries: geometry.geometries.map(unwrapGeometry) };
    default:
      return geometry;
  }
}
