import L from 'leaflet';
import { useEffect, useRef } from 'react';
import type { PlanPlacement } from '../editor/EditorPanel';
import { placementIcon } from '../editor/mapPlacement';
import { statusIconSvg } from '../icons';
import { machineTitle, STATUS_META } from '../status';
import type { Status } from '../types';
import type { PlanInfo } from './api';
import { fromPlanLatLng, toPlanLatLng } from './geometry';
import type { PlanPosition } from '../editor/types';

export interface PlanMarker {
  id: string;
  name: string;
  status: Status;
  reason: string | null;
  position: PlanPosition;
}

/** A machine on the plan: its status as shape and words, its name as text (never markup). */
export function planMarkerElement(marker: PlanMarker): HTMLElement {
  const element = document.createElement('div');
  element.className = `mw-plan-marker mw-status-${marker.status}`;
  element.dataset.machineId = marker.id;
  element.dataset.status = marker.status;
  const icon = document.createElement('span');
  icon.className = 'mw-icon';
  icon.setAttribute('aria-hidden', 'true');
  // Our own constant shapes, never data.
  icon.innerHTML = statusIconSvg(marker.status, 18);
  const name = document.createElement('span');
  name.className = 'mw-plan-marker-name';
  name.textContent = marker.name;
  const status = document.createElement('span');
  status.className = 'mw-plan-marker-status';
  status.textContent = STATUS_META[marker.status].label;
  element.append(icon, name, status);
  return element;
}

export interface FloorPlanViewProps {
  site: string;
  plan: PlanInfo;
  imageUrl: string;
  markers: PlanMarker[];
  /** The machine an admin is placing on this plan, if any. */
  placing: PlanPlacement | null;
}

/**
 * One site's floor plan: the image in Leaflet's `CRS.Simple` (pan and zoom like the map), the
 * site's machines at their positions with live status, and, for an admin placing a machine, a
 * draggable pin that a click on the plan also moves.
 */
export function FloorPlanView({ site, plan, imageUrl, markers, placing }: FloorPlanViewProps) {
  const containerRef = useRef<HTMLDivElement>(null);
  const mapRef = useRef<L.Map | null>(null);
  const layerRef = useRef<L.LayerGroup | null>(null);
  const pinRef = useRef<L.Marker | null>(null);
  const placingRef = useRef(placing);
  placingRef.current = placing;

  useEffect(() => {
    const container = containerRef.current;
    if (container === null) return;
    const size = { width: plan.width, height: plan.height };
    const bounds = L.latLngBounds([0, 0], [plan.height, plan.width]);
    const map = L.map(container, { crs: L.CRS.Simple, minZoom: -5, maxZoom: 4, zoomSnap: 0.25, attributionControl: false });
    L.imageOverlay(imageUrl, bounds, { alt: `Floor plan of ${site}` }).addTo(map);
    map.fitBounds(bounds, { animate: false });
    map.setMaxBounds(bounds.pad(0.5));
    layerRef.current = L.layerGroup().addTo(map);
    map.on('click', (e: L.LeafletMouseEvent) => placingRef.current?.onPlace(fromPlanLatLng(e.latlng.lat, e.latlng.lng, size)));
    mapRef.current = map;
    // The panel narrows when the editor opens beside it: Leaflet must hear of it, and the whole
    // plan is shown again in the new size (otherwise a click would land on the wrong spot).
    const resized = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => {
      map.invalidateSize({ pan: false });
      map.fitBounds(bounds, { animate: false });
    });
    resized?.observe(container);
    return () => {
      resized?.disconnect();
      map.remove();
      mapRef.current = null;
      layerRef.current = null;
      pinRef.current = null;
    };
  }, [site, plan.width, plan.height, imageUrl]);

  useEffect(() => {
    const layer = layerRef.current;
    if (layer === null) return;
    layer.clearLayers();
    const size = { width: plan.width, height: plan.height };
    for (const m of markers) {
      if (placing?.id === m.id) continue; // shown as the pin being placed
      L.marker(toPlanLatLng(m.position, size), {
        icon: L.divIcon({ html: planMarkerElement(m), className: 'mw-plan-marker-wrap', iconSize: undefined, iconAnchor: [10, 10] }),
        title: machineTitle(m.name, m.status, m.reason),
        keyboard: true,
      }).addTo(layer);
    }
  }, [markers, placing?.id, plan.width, plan.height, imageUrl]);

  const px = placing?.position?.x;
  const py = placing?.position?.y;
  useEffect(() => {
    const map = mapRef.current;
    pinRef.current?.remove();
    pinRef.current = null;
    if (map === null || placing === null) return;
    const size = { width: plan.width, height: plan.height };
    map.getContainer().classList.add('mw-picking');
    if (px !== undefined && py !== undefined) {
      const pin = L.marker(toPlanLatLng({ x: px, y: py }, size), {
        draggable: true,
        keyboard: true,
        title: `Drag to move ${placing.name}`,
        icon: placementIcon(placing.name),
        zIndexOffset: 10_000,
      }).addTo(map);
      pin.on('dragend', () => {
        const at = pin.getLatLng();
        placingRef.current?.onPlace(fromPlanLatLng(at.lat, at.lng, size));
      });
      pinRef.current = pin;
    }
    return () => {
      map.getContainer().classList.remove('mw-picking');
    };
  }, [placing?.id, placing?.name, px, py, plan.width, plan.height, imageUrl]);

  return <div ref={containerRef} className="mw-plan-map" role="region" aria-label={`Floor plan of ${site}`} data-testid="floor-plan" />;
}
