import { describe, expect, it } from 'vitest';
import { fetchTileConfig } from '../src/config';

function respond(status: number, body: string) {
  return async () => new Response(body, { status, headers: { 'Content-Type': 'application/json' } });
}

describe('fetchTileConfig', () => {
  it('returns the configured tile layer', async () => {
    const config = await fetchTileConfig(
      respond(200, JSON.stringify({ tile_url: '/tiles/{z}/{x}/{y}.png', tile_attribution: '© plant GIS', version: '0.1' })),
    );
    expect(config).toEqual({ tileUrl: '/tiles/{z}/{x}/{y}.png', attribution: '© plant GIS' });
  });

  it('means "bundled basemap only" for 404, null, bad JSON or a network error', async () => {
    expect(await fetchTileConfig(respond(404, 'Not Found'))).toBeNull();
    expect(await fetchTileConfig(respond(200, JSON.stringify({ tile_url: null, tile_attribution: null })))).toBeNull();
    expect(await fetchTileConfig(respond(200, JSON.stringify({ tile_url: '  ' })))).toBeNull();
    expect(await fetchTileConfig(respond(200, '<html>'))).toBeNull();
    expect(await fetchTileConfig(respond(200, '[1]'))).toBeNull();
    expect(
      await fetchTileConfig(async () => {
        throw new TypeError('Failed to fetch');
      }),
    ).toBeNull();
  });

  it('asks the page own server', async () => {
    const asked: string[] = [];
    await fetchTileConfig(async (url) => {
      asked.push(url);
      return new Response('{}', { status: 200 });
    });
    expect(asked).toEqual(['/api/config']);
  });
});
