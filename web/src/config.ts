/** Optional online basemap, from `GET /api/config`. Without it the bundled world map is used alone. */
export interface TileConfig {
  tileUrl: string;
  attribution: string;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * The tile layer configured on the server, or null when there is none: a 404 (older server),
 * any other error, a body that is not JSON or a `tile_url` that is not a string all mean
 * "bundled basemap only"; the page never fails because of this optional setting.
 */
export async function fetchTileConfig(fetchFn: FetchLike = (i, init) => fetch(i, init)): Promise<TileConfig | null> {
  try {
    const response = await fetchFn('/api/config', { headers: { Accept: 'application/json' } });
    if (!response.ok) return null;
    const body: unknown = await response.json();
    if (typeof body !== 'object' || body === null) return null;
    const { tile_url: tileUrl, tile_attribution: attribution } = body as Record<string, unknown>;
    if (typeof tileUrl !== 'string' || tileUrl.trim() === '') return null;
    return { tileUrl, attribution: typeof attribution === 'string' ? attribution : '' };
  } catch {
    return null;
  }
}
