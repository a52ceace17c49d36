import type { Feature, FeatureCollection, Geometry } from 'geojson';
import L from 'leaflet';
import { feature, mesh } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
// Served by the page's own server next to the bundle: the map works air-gapped.
import countriesUrl from 'world-atlas/countries-50m.json?url';
import { unwrapGeometry } from './geometry';

export const BASEMAP_PANE = 'mw-basemap';
export const BASEMAP_ATTRIBUTION = 'Natural Earth';

type Countries = Topology<{ countries: GeometryCollection; land: GeometryCollection }>;

/** Fetches the bundled world shapes (Natural Earth 1:50m via world-atlas). */
export async function loadWorld(): Promise<Countries> {
  const response = await fetch(countriesUrl);
  if (!response.ok) throw new Error(`basemap ${countriesUrl}: HTTP ${response.status}`);
  return (await response.json()) as Countries;
}

function unwrapped(data: FeatureCollection | Feature | Geometry): FeatureCollection {
  const features: Feature[] =
    data.type === 'FeatureCollection'
      ? data.features
      : data.type === 'Feature'
        ? [data]
        : [{ type: 'Feature', geometry: data, properties: {} }];
  return {
    type: 'FeatureCollection',
    features: features.map((f) => ({ ...f, geometry: unwrapGeometry(f.geometry) })),
  };
}

interface WorldData {
  land: FeatureCollection;
  coast: FeatureCollection;
  borders: FeatureCollection;
}

/**
 * Draws land, coastlines and country borders in their own pane below any tile layer, with a
 * canvas renderer; the sea is the map container's background colour. The copy of the world
 * left or right of the main one (a wide screen zoomed out, or a view across ±180°) is drawn
 * only while it is in view: every drawn copy costs projection time on each zoom.
 */
export class WorldBasemap {
  private readonly data: WorldData;
  private readonly renderer: L.Canvas;
  private readonly copies = new Map<number, L.Layer[]>();

  constructor(
    private readonly map: L.Map,
    world: Countries,
  ) {
    this.data = {
      land: unwrapped(feature(world, world.objects.land)),
      coast: unwrapped(mesh(world, world.objects.countries, (a, b) => a === b)),
      borders: unwrapped(mesh(world, world.objects.countries, (a, b) => a !== b)),
    };
    this.renderer = L.canvas({ pane: BASEMAP_PANE, padding: 0.3 });
    map.on('moveend', this.update, this);
    this.update();
  }

  /** Removes the basemap from the map. */
  destroy(): void {
    this.map.off('moveend', this.update, this);
    for (const offset of [...this.copies.keys()]) this.hide(offset);
  }

  private update(): void {
    const bounds = this.map.getBounds();
    const wanted = new Set([0]);
    if (bounds.getWest() < -180) wanted.add(-360);
    if (bounds.getEast() > 180) wanted.add(360);
    for (const offset of [...this.copies.keys()]) if (!wanted.has(offset)) this.hide(offset);
    for (const offset of wanted) if (!this.copies.has(offset)) this.show(offset);
  }

  private show(offset: number): void {
    const common = {
      pane: BASEMAP_PANE,
      renderer: this.renderer,
      interactive: false,
      coordsToLatLng: (c: [number, number]) => L.latLng(c[1], c[0] + offset),
    };
    const layers = [
      L.geoJSON(this.data.land, {
        ...common,
        style: { stroke: false, fillColor: '#f4f1ea', fillOpacity: 1 },
      } as L.GeoJSONOptions),
      L.geoJSON(this.data.coast, { ...common, style: { color: '#9fb6c4', weight: 1, opacity: 1 } } as L.GeoJSONOptions),
      L.geoJSON(this.data.borders, { ...common, style: { color: '#a9a293', weight: 1, opacity: 1 } } as L.GeoJSONOptions),
    ];
    for (const layer of layers) layer.addTo(this.map);
    this.copies.set(offset, layers);
  }

  private hide(offset: number): void {
    for (const layer of this.copies.get(offset) ?? []) layer.remove();
    this.copies.delete(offset);
  }
}
