import L from 'leaflet';
import { clusterTitle, countsFromProps, type StatusCounts, totalOf, worstInCounts } from '../counts';
import { clusterSize, clusterSvg, statusIconSvg } from '../icons';
import { machineTitle, STATUS_META } from '../status';
import type { Machine } from '../types';
import { type BBox, type ClusterEngine, type ClusterPoint, createClusterEngine } from './clusterEngine';

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

// Coalesces bursts of fleet updates into at most a few re-clusterings per second.
const RELOAD_INTERVAL_MS = 250;

function markerSize(): number {
  return window.innerWidth >= 1800 ? 32 : 26;
}

function onActivate(marker: L.Marker, action: () => void): void {
  marker.on('click', action);
  marker.on('keypress', (e: L.LeafletKeyboardEvent) => {
    if (e.originalEvent.key === 'Enter' || e.originalEvent.key === ' ') action();
  });
}

/**
 * The machine markers of one map. Clusters with supercluster (in a worker) and keeps as DOM
 * elements only the clusters and markers in and around the visible area, re-computed on
 * moveend and on data change. Never moves the map by itself; clicking a cluster zooms in.
 */
export class FleetMarkers {
  private readonly layer: L.LayerGroup;
  private readonly engine: ClusterEngine;
  private machines: ReadonlyMap<string, Machine> = new Map();
  private pending: Machine[] | null = null;
  private reloadTimer: number | null = null;
  private lastReload = -Infinity;
  private querySeq = 0;
  private readonly shown = new Map<string, Shown>();

  constructor(
    private readonly map: L.Map,
    private readonly handlers: MarkerHandlers,
    engine: ClusterEngine = createClusterEngine(),
  ) {
    this.engine = engine;
    this.layer = L.layerGroup().addTo(map);
    map.on('moveend', this.refresh, this);
  }

  /** Replaces the machines to show (those without a location are skipped); redraws soon. */
  setMachines(machines: Machine[]): void {
    this.pending = machines;
    if (this.reloadTimer !== null) return;
    const wait = Math.max(0, this.lastReload + RELOAD_INTERVAL_MS - performance.now());
    this.reloadTimer = window.setTimeout(() => {
      this.reloadTimer = null;
      this.reload();
    }, wait);
  }

  /** Removes every marker and listener and stops the clustering. */
  destroy(): void {
    if (this.reloadTimer !== null) window.clearTimeout(this.reloadTimer);
    this.map.off('moveend', this.refresh, this);
    this.querySeq += 1; // answers still on their way are dropped
    this.engine.destroy();
    this.layer.remove();
    this.shown.clear();
  }

  private reload(): void {
    const machines = this.pending ?? [];
    this.pending = null;
    this.lastReload = performance.now();
    const points: ClusterPoint[] = [];
    const byId = new Map<string, Machine>();
    for (const m of machines) {
      if (m.location === null) continue;
      byId.set(m.id, m);
      points.push({ id: m.id, status: m.status, lon: m.location.lon, lat: m.location.lat });
    }
    this.machines = byId;
    this.engine.load(points);
    this.refresh();
  }

  private refresh(): void {
    const bounds = this.map.getBounds().pad(0.2);
    const bbox: BBox = [
      Math.max(-180, bounds.getWest()),
      Math.max(-85, bounds.getSouth()),
      Math.min(180, bounds.getEast()),
      Math.min(85, bounds.getNorth()),
    ];
    const seq = ++this.querySeq;
    const zoom = Math.round(this.map.getZoom());
    void this.engine.query(bbox, zoom).then((items) => {
      // Only the latest answer is drawn: an older one is for a view or a fleet that has moved on.
      if (seq !== this.querySeq) return;
      this.draw(items);
    });
  }

  private draw(items: Awaited<ReturnType<ClusterEngine['query']>>): void {
    const size = markerSize();
    const keep = new Set<string>();
    for (const item of items) {
      const latlng = L.latLng(item.lat, item.lon);
      if (item.kind === 'cluster') {
        const key = `c${item.clusterId}`;
        keep.add(key);
        this.showCluster(key, latlng, item.clusterId, countsFromProps(item.counts));
      } else {
        const machine = this.machines.get(item.id);
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
        { 'data-machine-id': machine.id, 'data-status': machine.status, 'aria-label': title, title },
      );
      const marker = L.marker(latlng, {
        icon,
        keyboard: true,
        riseOnHover: true,
        // Worse statuses are drawn above better ones so an alarm is never hidden under an "up".
        zIndexOffset: STATUS_META[machine.status].severity * 1000,
      });
      onActivate(marker, () => this.handlers.onMachine(machine.id));
      return marker;
    });
  }

  private showCluster(key: string, latlng: L.LatLng, clusterId: number, counts: StatusCounts): void {
    const worst = worstInCounts(counts) ?? 'unknown';
    const count = totalOf(counts);
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
      onActivate(marker, () => void this.openCluster(clusterId, latlng));
      return marker;
    });
  }

  private async openCluster(clusterId: number, latlng: L.LatLng): Promise<void> {
    const expansion = await this.engine.expand(clusterId);
    if (expansion === null) return; // the fleet was re-clustered meanwhile; the next draw replaces it
    if (expansion.kind === 'zoom') this.map.setView(latlng, Math.min(expansion.zoom, this.map.getMaxZoom()));
    else this.handlers.onStack(expansion.ids, latlng);
  }
}
