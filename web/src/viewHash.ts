/** The map view kept in the URL hash as `#map=<zoom>/<lat>/<lon>`, so that a shared link opens the same view. */
export interface MapView {
  zoom: number;
  lat: number;
  lon: number;
}

export const MIN_ZOOM = 1;
export const MAX_ZOOM = 18;

const NUMBER = /^-?\d+(\.\d+)?$/;

function hashParts(hash: string): string[] {
  const body = hash.startsWith('#') ? hash.slice(1) : hash;
  return body === '' ? [] : body.split('&');
}

/**
 * The view in `hash` (with or without the leading '#'), or null when there is none or it is
 * malformed or out of range: a bad link falls back to the default view instead of a broken map.
 * Other `&`-separated parts of the hash are ignored.
 */
export function parseViewHash(hash: string): MapView | null {
  const part = hashParts(hash).find((p) => p.startsWith('map='));
  if (part === undefined) return null;
  const fields = part.slice('map='.length).split('/');
  if (fields.length !== 3 || !fields.every((f) => NUMBER.test(f))) return null;
  const [zoom, lat, lon] = fields.map(Number) as [number, number, number];
  if (!Number.isInteger(zoom) || zoom < MIN_ZOOM || zoom > MAX_ZOOM) return null;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { zoom, lat, lon };
}

/** Degrees rounded to what is visible at `zoom` (about a pixel), without trailing zeros. */
function roundForZoom(value: number, zoom: number): string {
  const decimals = Math.max(0, Math.min(6, Math.ceil(Math.log10(Math.pow(2, zoom)))));
  const fixed = value.toFixed(decimals);
  const trimmed = fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
  return trimmed === '-0' ? '0' : trimmed;
}

/** Wraps a longitude into [-180, 180] (Leaflet lets the operator pan around the world). */
export function wrapLon(lon: number): number {
  if (lon >= -180 && lon <= 180) return lon;
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

/**
 * `hash` with its `map=` part set to `view`, other parts kept; the result starts with '#'.
 * The output always parses back with `parseViewHash`.
 */
export function formatViewHash(view: MapView, hash = ''): string {
  const zoom = Math.round(Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom)));
  const lat = Math.max(-90, Math.min(90, view.lat));
  const value = `map=${zoom}/${roundForZoom(lat, zoom + 2)}/${roundForZoom(wrapLon(view.lon), zoom + 2)}`;
  const others = hashParts(hash).filter((p) => !p.startsWith('map='));
  return `#${[value, ...others].join('&')}`;
}
