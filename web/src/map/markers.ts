import L from 'leaflet';
import Supercluster, { type PointFeature } from 'supercluster';
import {
  type ClusterCountProps,
  clusterTitle,
  countsFromProps,
  mergeCountProps,
  pointCountProps,
  worstInCounts,
} from '../counts';
import { clusterSize, clusterSvg, statusIconSvg } from '../icons';
import { machineTitle, STATUS_META } from '../status';
import type { Machine, Status } from '../types';
import { MAX_ZOOM } from '../viewHash';

interface PointProps {
  id: string;
  status: Status;
}

export interface MarkerHandlers {
  /** A machine marker was clicked (or activated with Enter). */
  onMachine: (id: string) => void;
  /** A cluster that cannot be split by zooming (machines at one place) was clicked. */
  onStack: (ids: string[], at: L.LatLng) => void;
}

/** A DivIcon whose element carries extra attributes (the page's DOM contract lives on it). */
class AttributedDivIcon extends L.DivIcon {
  constructor(
    options: L.DivIconOptions,
    private readonly attributes: Record<string, string>,
  ) {
    super(options);
  }

  override createIcon(oldIcon?: HTMLElement): HTMLElement {
    const element = super.createIcon(oldIcon);
    for (const [name, value] of Object.entries(this.attributes)) element.setAttribute(name, value);
    return element;
  }
}

interface Shown {
  marker: L.Marker;
  signature: string;
}

// Past this zoom supercluster returns single points; at the map's own maximum, machines that
// share a place stay one cluster, which opens as a list instead of markers piled on each other.
const CLUSTER_MAX_ZOOM = MAX_ZOOM;
// A rebuild for 10,000 machines takes tens of milliseconds: coalesce bursts of updates.
const REBUILD_INTERVAL_MS = 250;

function markerSize(): number {
  return window.innerWidth >= 1800 ? 32 : 26;
}

/**
 * The machine markers of one map: clusters with supercluster and keeps as DOM elements only
 * the clusters and markers inside the visible area (re-computed on moveend and on data change).
 * Never moves the map by itself except when the operator clicks a cluster.
 */
export class FleetMarkers {
  private readonly layer: L.LayerGroup;
  private index: Supercluster<PointProps, ClusterCountProps> | null = null;
  private machines: ReadonlyMap<string, Machine> = new Map();
  private pending: Machine[] | null = null;
  private rebuildTimer: number | null = null;
  private lastRebuild = 0;
  private readonly shown = new Map<string, Shown>();

  constructor(
    private readonly map: L.Map,
    private readonly handlers: MarkerHandlers,
  ) {
    this.layer = L.layerGroup().addTo(map);
    map.on('moveend', this.render, this);
  }

  /** Replaces the machines to show (those without a location are skipped); redraws soon. */
  setMachines(machines: Machine[]): void {
    this.pending = machines;
    if (this.rebuildTimer !== null) return;
    const wait = Math.max(0, this.lastRebuild + REBUILD_INTERVAL_MS - performance.now());
    this.rebuildTimer = window.setTimeout(() => {
      this.rebuildTimer = null;
      this.rebuild();
    }, wait);
  }

  /** Removes every marker and listener. */
  destroy(): void {
    if (this.rebuildTimer !== null) window.clearTimeout(this.rebuildTimer);
    this.map.off('moveend', this.render, this);
    this.layer.remove();
    this.shown.clear();
  }

  private rebuild(): void {
    const machines = this.pending ?? [];
    this.pending = null;
    this.lastRebuild = performance.now();
    const points: Array<PointFeature<PointProps>> = [];
    const byId = new Map<string, Machine>();
    for (const m of machines) {
      if (m.location === null) continue;
      byId.set(m.id, m);
      points.push({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [m.location.lon, m.location.lat] },
        properties: { id: m.id, status: m.status },
      });
    }
    const index = new Supercluster<PointProps, ClusterCountProps>({
      radius: 60,
      maxZoom: CLUSTER_MAX_ZOOM,
      map: (p) => pointCountProps(p.status),
      reduce: mergeCountProps,
    });
    index.load(points);
    this.index = index;
    this.machines = byId;
    this.render();
  }

  private render(): void {
    const index = this.index;
    if (index === null) return;
    const bounds = this.map.getBounds().pad(0.2);
    const west = Math.max(-180, bounds.getWest());
    const east = Math.min(180, bounds.getEast());
    const south = Math.max(-85, bounds.getSouth());
    const north = Math.min(85, bounds.getNorth());
    const zoom = Math.round(this.map.getZoom());
    const features = index.getClusters([west, south, east, north], zoom);
    const size = markerSize();
    const keep = new Set<string>();
    for (const f of features) {
      const [lon, lat] = f.geometry.coordinates as [number, number];
      const latlng = L.latLng(lat, lon);
      const props = f.properties;
      if ('cluster' in props && props.cluster) {
        const key = `c${props.cluster_id}`;
        keep.add(key);
        this.showCluster(key, latlng, props.cluster_id, countsFromProps(props));
      } else {
        const machine = this.machines.get((props as PointProps).id);
        if (machine === undefined) continue;
        const key = `m${machine.id}`;
        keep.add(key);
        this.showMachine(key, latlng, machine, size);
      }
    }
    for (const [key, shown] of this.shown) {
      if (!keep.has(key)) {
        this.layer.removeLayer(shown.marker);
        this.shown.delete(key);
      }
    }
  }

  private place(key: string, latlng: L.LatLng, signature: string, make: () => L.Marker): void {
    const existing = this.shown.get(key);
    if (existing !== undefined && existing.signature === signature) return;
    if (existing !== undefined) this.layer.removeLayer(existing.marker);
    const marker = make();
    marker.setLatLng(latlng);
    this.layer.addLayer(marker);
    this.shown.set(key, { marker, signature });
  }

  private showMachine(key: string, latlng: L.LatLng, machine: Machine, size: number): void {
    const title = machineTitle(machine.name, machine.status, machine.reason);
    const signature = `${latlng.lat},${latlng.lng}|${machine.status}|${title}|${size}`;
    this.place(key, latlng, signature, () => {
      const icon = new AttributedDivIcon(
        {
          className: `mw-marker mw-status-${machine.status}`,
          html: statusIconSvg(machine.status, size),
          iconSize: [size, size],
          iconAnchor: [size / 2, size / 2],
        },
        {
          'data-machine-id': machine.id,
          'data-status': machine.status,
          'aria-label': title,
          title,
        },
      );
      const marker = L.marker(latlng, {
        icon,
        keyboard: true,
        riseOnHover: true,
        // Worse statuses are drawn above better ones so an alarm is never hidden under an "up".
        zIndexOffset: STATUS_META[machine.status].severity * 1000,
      });
      const open = () => this.handlers.onMachine(machine.id);
      marker.on('click', open);
      marker.on('keypress', (e: L.LeafletKeyboardEvent) => {
        if (e.originalEvent.key === 'Enter' || e.originalEvent.key === ' ') open();
      });
      return marker;
    });
  }

  private showCluster(
    key: string,
    latlng: L.LatLng,
    clusterId: number,
    counts: ReturnType<typeof countsFromProps>,
  ): void {
    const worst = worstInCounts(counts) ?? 'unknown';
    const count = Object.values(counts).reduce((a, b) => a + b, 0);
    const title = clusterTitle(counts);
    const signature = `${latlng.lat},${latlng.lng}|${title}`;
    this.place(key, latlng, signature, () => {
      const size = clusterSize(count);
      const icon = new AttributedDivIcon(
        {
          className: `mw-cluster mw-status-${worst}`,
          html: clusterSvg(worst, count),
          iconSize: [size, size],
          iconAnchor: [size / 2, size / 2],
        },
        { 'data-status': worst, 'data-count': String(count), 'aria-label': title, title },
      );
      const marker = L.marker(latlng, {
        icon,
        keyboard: true,
        zIndexOffset: 10000 + STATUS_META[worst].severity * 1000,
      });
      const open = () => this.openCluster(clusterId, latlng);
      marker.on('click', open);
      marker.on('keypress', (e: L.LeafletKeyboardEvent) => {
        if (e.originalEvent.key === 'Enter' || e.originalEvent.key === ' ') open();
      });
      return marker;
    });
  }

  private openCluster(clusterId: number, latlng: L.LatLng): void {
    const index = this.index;
    if (index === null) return;
    let expansion: number;
    try {
      expansion = index.getClusterExpansionZoom(clusterId);
    } catch {
      return; // the index was rebuilt since this marker was drawn; the next render replaces it
    }
    if (expansion <= Math.min(CLUSTER_MAX_ZOOM, this.map.getMaxZoom())) {
      this.map.setView(latlng, expansion);
      return;
    }
    const ids = index
      .getLeaves(clusterId, Infinity)
      .map((leaf) => leaf.properties.id)
      .filter((id): id is string => typeof id === 'string');
    this.handlers.onStack(ids, latlng);
  }
}
