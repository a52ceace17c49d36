import type { Feature, FeatureCollection, Geometry } from 'geojson';
import L from 'leaflet';
import { feature, mesh } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
// Served by the page's own server next to the bundle: the map works air-gapped.
import coarseUrl from 'world-atlas/countries-110m.json?url';
import fineUrl from 'world-atlas/countries-50m.json?url';
import { unwrapGeometry } from './geometry';

export const BASEMAP_PANE = 'mw-basemap';
export const BASEMAP_ATTRIBUTION = 'Natural Earth';

type Countries = Topology<{ countries: GeometryCollection; land: GeometryCollection }>;

/** The two scales of the bundled world: Natural Earth 1:110m and 1:50m (world-atlas). */
export type Resolution = 'coarse' | 'fine';

/**
 * The zoom from which the 1:50m shapes are drawn. Below it a screen pixel covers more than the
 * 1:110m shapes' detail, and the 1:50m ones (ten times the points) would cost their projection
 * on every zoom for nothing visible: at 10,000 machines that was most of the page's first second.
 */
export const FINE_FROM_ZOOM = 4;

export function resolutionFor(zoom: number): Resolution {
  return zoom >= FINE_FROM_ZOOM ? 'fine' : 'coarse';
}

/** Fetches the bundled world shapes of one scale. */
export async function loadWorld(resolution: Resolution): Promise<Countries> {
  const url = resolution === 'fine' ? fineUrl : coarseUrl;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`basemap ${url}: HTTP ${response.status}`);
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
  borders: FeatureCollection;
}

function worldData(world: Countries): WorldData {
  return {
    land: unwrapped(feature(world, world.objects.land)),
    borders: unwrapped(mesh(world, world.objects.countries, (a, b) => a !== b)),
  };
}

/**
 * Draws land (its outline is the coastline) and country borders in their own pane below any
 * tile layer, with a canvas renderer; the sea is the map container's background colour. Shapes
 * of the scale that fits the zoom (`resolutionFor`), each scale fetched the first time it is
 * needed; until it has arrived the other one stays drawn. The copy of the world left or right of
 * the main one (a wide screen zoomed out, or a view across ±180°) is drawn only while it is in
 * view: every drawn copy costs projection time on each zoom.
 */
export class WorldBasemap {
  private readonly data = new Map<Resolution, WorldData>();
  private readonly loading = new Set<Resolution>();
  private readonly renderer: L.Canvas;
  private readonly copies = new Map<number, L.Layer[]>();
  private drawn: Resolution | null = null;
  private destroyed = false;

  constructor(
    private readonly map: L.Map,
    private readonly load: (resolution: Resolution) => Promise<Countries> = loadWorld,
  ) {
    this.renderer = L.canvas({ pane: BASEMAP_PANE, padding: 0.3 });
    map.on('moveend', this.update, this);
    this.update();
  }

  /** Removes the basemap from the map. */
  destroy(): void {
    this.destroyed = true;
    this.map.off('moveend', this.update, this);
    this.hideAll();
  }

  private update(): void {
    const wantedScale = resolutionFor(this.map.getZoom());
    const data = this.data.get(wantedScale);
    if (data === undefined) {
      this.fetch(wantedScale);
    } else if (this.drawn !== wantedScale) {
      this.hideAll();
      this.drawn = wantedScale;
    }
    const shapes = this.drawn === null ? undefined : this.data.get(this.drawn);
    if (shapes === undefined) return;
    const bounds = this.map.getBounds();
    const wanted = new Set([0]);
    if (bounds.getWest() < -180) wanted.add(-360);
    if (bounds.getEast() > 180) wanted.add(360);
    for (const offset of [...this.copies.keys()]) if (!wanted.has(offset)) this.hide(offset);
    for (const offset of wanted) if (!this.copies.has(offset)) this.show(offset, shapes);
  }

  private fetch(resolution: Resolution): void {
    if (this.loading.has(resolution)) return;
    this.loading.add(resolution);
    this.load(resolution)
      .then((world) => {
        if (this.destroyed) return;
        this.data.set(resolution, worldData(world));
        this.update();
      })
      .catch((error: unknown) => {
        // Asked again at the next move; the other scale (if any) stays drawn meanwhile.
        this.loading.delete(resolution);
        console.error(`millwatch: the bundled basemap (${resolution}) could not be loaded`, error);
      });
  }

  private show(offset: number, shapes: WorldData): void {
    const common = {
      pane: BASEMAP_PANE,
      renderer: this.renderer,
      interactive: false,
      coordsToLatLng: (c: [number, number]) => L.latLng(c[1], c[0] + offset),
    };
    const layers = [
      L.geoJSON(shapes.land, {
        ...common,
        style: { color: '#9fb6c4', weight: 1, opacity: 1, fillColor: '#f4f1ea', fillOpacity: 1 },
      } as L.GeoJSONOptions),
      L.geoJSON(shapes.borders, { ...common, style: { color: '#a9a293', weight: 1, opacity: 1 } } as L.GeoJSONOptions),
    ];
    for (const layer of layers) layer.addTo(this.map);
    this.copies.set(offset, layers);
  }

  private hide(offset: number): void {
    for (const layer of this.copies.get(offset) ?? []) layer.remove();
    this.copies.delete(offset);
  }

  private hideAll(): void {
    for (const offset of [...this.copies.keys()]) this.hide(offset);
  }
}
