import L from 'leaflet';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { createPortal } from 'react-dom';
import { MachinePopup, StackList } from '../components/MachinePopup';
import type { TileConfig } from '../config';
import type { FleetData } from '../fleet';
import type { Machine } from '../types';
import { formatViewHash, MAX_ZOOM, MIN_ZOOM, parseViewHash } from '../viewHash';
import { BASEMAP_ATTRIBUTION, BASEMAP_PANE, WorldBasemap } from './basemap';
import { FleetMarkers } from './markers';

type Selection =
  | { kind: 'machine'; id: string }
  | { kind: 'stack'; ids: string[]; lat: number; lon: number }
  | null;

/** A request to move the map, carried out once per `seq` (a new request, even to the same place). */
export type MapRequest =
  | { kind: 'machine'; id: string; seq: number }
  | { kind: 'bounds'; points: readonly [number, number][]; seq: number };

export interface FleetMapProps {
  fleet: FleetData;
  /** The machines to draw (filtered and searched); `fleet` has them all. */
  shown: readonly Machine[];
  /** The selected machine (its popup is open), controlled by the page. */
  selectedId: string | null;
  onSelect: (id: string | null) => void;
  /** Pan to a machine (chosen in the list) or fit some points (wall mode's site tour). */
  request?: MapRequest | null;
  /** Optional online tiles from the server's configuration. */
  tiles: TileConfig | null;
  /** Told the Leaflet map once it exists (null when it is gone), for tools that add their own layers. */
  onMap?: (map: L.Map | null) => void;
}

/** A machine chosen in the list is shown at least this close (a town's streets). */
const FOCUS_ZOOM = 10;

const WORLD_VIEW = { lat: 25, lon: 10, zoom: 2 };
const TRANSPARENT_PIXEL = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';

function selectionKey(selection: Selection): string {
  if (selection === null) return '';
  return selection.kind === 'machine' ? `m:${selection.id}` : `s:${selection.lat},${selection.lon}`;
}

function summaryWidth(): number {
  return document.querySelector<HTMLElement>('.mw-summary')?.offsetWidth ?? 0;
}

function viewOf(map: L.Map): { zoom: number; lat: number; lon: number } {
  const c = map.getCenter();
  return { zoom: map.getZoom(), lat: c.lat, lon: c.lng };
}

/**
 * The Leaflet map: bundled world basemap, clustered machine markers and the popup of the
 * selected machine. Its view comes from the URL hash (or, on the first snapshot only, from the
 * machines' extent) and is written back to the hash; data changes never move it.
 */
export function FleetMap({ fleet, shown, selectedId, onSelect, request = null, tiles, onMap }: FleetMapProps) {
  const containerRef = useRef<HTMLDivElement>(null);
  const mapRef = useRef<L.Map | null>(null);
  const markersRef = useRef<FleetMarkers | null>(null);
  const popupRef = useRef<L.Popup | null>(null);
  const openKeyRef = useRef('');
  const viewDecidedRef = useRef(false);
  const [popupNode] = useState(() => document.createElement('div'));
  const [stack, setStack] = useState<Selection>(null);
  const selection: Selection = stack ?? (selectedId === null ? null : { kind: 'machine', id: selectedId });
  const onSelectRef = useRef(onSelect);
  onSelectRef.current = onSelect;
  // The popup pans the map into view only when the operator opened it (a click, the list), never
  // when a link or a reload reopens it: the link's centre and zoom win.
  const panOnOpenRef = useRef(false);
  // Set while the page closes the popup itself (the selection has no place on the map).
  const closingRef = useRef(false);
  const onMapRef = useRef(onMap);
  onMapRef.current = onMap;

  useEffect(() => {
    const container = containerRef.current;
    if (container === null) return;
    const fromHash = parseViewHash(window.location.hash);
    viewDecidedRef.current = fromHash !== null;
    const start = fromHash ?? WORLD_VIEW;
    const map = L.map(container, {
      preferCanvas: true,
      minZoom: MIN_ZOOM,
      maxZoom: MAX_ZOOM,
      worldCopyJump: true,
      center: [start.lat, start.lon],
      zoom: start.zoom,
    });
    // Below the tile pane (200): configured tiles cover the bundled map, which shows when they fail.
    const pane = map.createPane(BASEMAP_PANE);
    pane.style.zIndex = '150';
    pane.style.pointerEvents = 'none';
    map.attributionControl.setPrefix('Leaflet').addAttribution(BASEMAP_ATTRIBUTION);
    mapRef.current = map;

    const popup = L.popup({
      className: 'mw-popup',
      // Narrow: the detail panel beside the map has everything else.
      minWidth: 200,
      maxWidth: 300,
      autoPan: false,
      // Panned into view, a popup keeps clear of the summary panel at the top right.
      autoPanPaddingTopLeft: L.point(20, 20),
      autoPanPaddingBottomRight: L.point(summaryWidth() + 30, 20),
    });
    popup.setContent(popupNode);
    popup.on('remove', () => {
      openKeyRef.current = '';
      setStack(null);
      if (!closingRef.current) onSelectRef.current(null);
    });
    popupRef.current = popup;

    markersRef.current = new FleetMarkers(map, {
      onMachine: (id) => {
        panOnOpenRef.current = true;
        setStack(null);
        onSelectRef.current(id);
      },
      onStack: (ids, at) => {
        panOnOpenRef.current = true;
        setStack({ kind: 'stack', ids, lat: at.lat, lon: at.lng });
      },
    });

    const writeHash = () => {
      const hash = formatViewHash(viewOf(map), window.location.hash);
      if (hash !== window.location.hash) window.history.replaceState(window.history.state, '', hash);
    };
    map.on('moveend', writeHash);
    // Nothing moves the map before the first snapshot but the operator: then their view wins.
    const operatorMoved = () => {
      viewDecidedRef.current = true;
    };
    map.once('dragstart zoomstart', operatorMoved);
    // Someone edited or pasted a link into the address bar: go where it points.
    const onHashChange = () => {
      const view = parseViewHash(window.location.hash);
      if (view !== null && formatViewHash(view) !== formatViewHash(viewOf(map))) {
        map.setView([view.lat, view.lon], view.zoom);
      }
    };
    window.addEventListener('hashchange', onHashChange);
    // Back and forward between entries the page pushed (pushState fires no hashchange).
    window.addEventListener('popstate', onHashChange);

    // The list and the detail panel change the map's width; Leaflet only watches the window.
    // The centre stays where it was, so the view in the URL stays true.
    const resizes =
      typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => map.invalidateSize({ pan: true }));
    resizes?.observe(container);
    onMapRef.current?.(map);

    const basemap = new WorldBasemap(map);

    return () => {
      resizes?.disconnect();
      onMapRef.current?.(null);
      basemap.destroy();
      window.removeEventListener('hashchange', onHashChange);
      window.removeEventListener('popstate', onHashChange);
      markersRef.current?.destroy();
      markersRef.current = null;
      popupRef.current = null;
      mapRef.current = null;
      map.remove();
    };
  }, [popupNode]);

  useEffect(() => {
    const map = mapRef.current;
    if (map === null || tiles === null) return;
    const layer = L.tileLayer(tiles.tileUrl, {
      attribution: tiles.attribution,
      maxZoom: MAX_ZOOM,
      // A tile that fails to load is left transparent: the bundled map below shows through.
      errorTileUrl: TRANSPARENT_PIXEL,
    }).addTo(map);
    return () => {
      layer.remove();
    };
  }, [tiles]);

  useEffect(() => {
    const map = mapRef.current;
    const markers = markersRef.current;
    if (map === null || markers === null) return;
    const all = [...fleet.machines.values()];
    markers.setMachines([...shown]);
    // The one time the page moves the map by itself: the first snapshot, when the link had no view.
    if (!viewDecidedRef.current && fleet.snapshots > 0) {
      viewDecidedRef.current = true;
      const located = all.filter((m) => m.location !== null);
      if (located.length > 0) {
        const bounds = L.latLngBounds(located.map((m) => [m.location!.lat, m.location!.lon] as L.LatLngTuple));
        const panel = document.querySelector<HTMLElement>('.mw-summary');
        map.fitBounds(bounds, {
          paddingTopLeft: [50, 50],
          paddingBottomRight: [(panel?.offsetWidth ?? 0) + 50, 50],
          maxZoom: 10,
        });
      }
    }
  }, [fleet.machines, fleet.snapshots, shown]);

  const machinesRef = useRef(fleet.machines);
  machinesRef.current = fleet.machines;
  useEffect(() => {
    const map = mapRef.current;
    if (map === null || request === null) return;
    viewDecidedRef.current = true;
    if (request.kind === 'machine') {
      const location = machinesRef.current.get(request.id)?.location;
      if (!location) return;
      // Once there, the popup (opened already) is panned fully into view, as a click would.
      map.once('moveend', () => {
        const popup = popupRef.current;
        if (popup === null || !map.hasLayer(popup)) return;
        popup.options.autoPanPaddingBottomRight = L.point(summaryWidth() + 30, 20);
        popup.options.autoPan = true;
        popup.update();
        popup.options.autoPan = false;
      });
      // The machine left of the summary panel and low enough for its popup above it.
      const zoom = Math.max(map.getZoom(), FOCUS_ZOOM);
      const at = map.project([location.lat, location.lon], zoom);
      const shift = L.point((summaryWidth() + 30) / 2, -Math.min(160, map.getSize().y / 4));
      map.setView(map.unproject(at.add(shift), zoom), zoom);
    } else if (request.points.length > 0) {
      map.fitBounds(L.latLngBounds(request.points.map(([lat, lon]) => [lat, lon] as L.LatLngTuple)), {
        padding: [60, 60],
        maxZoom: 16,
      });
    }
  }, [request]);

  const selectedMachine = selection?.kind === 'machine' ? fleet.machines.get(selection.id) : undefined;
  const stackMachines =
    selection?.kind === 'stack'
      ? selection.ids.map((id) => fleet.machines.get(id)).filter((m): m is Machine => m !== undefined)
      : [];

  useLayoutEffect(() => {
    const map = mapRef.current;
    const popup = popupRef.current;
    if (map === null || popup === null) return;
    let at: L.LatLng | null = null;
    if (selection?.kind === 'machine' && selectedMachine?.location) {
      at = L.latLng(selectedMachine.location.lat, selectedMachine.location.lon);
    } else if (selection?.kind === 'stack' && stackMachines.length > 0) {
      at = L.latLng(selection.lat, selection.lon);
    }
    if (at === null) {
      // Nothing (left) to show on the map: the machine was removed or has no location. The
      // selection itself stays (the detail panel shows it); only the popup closes.
      if (map.hasLayer(popup)) {
        closingRef.current = true;
        popup.close();
        closingRef.current = false;
      }
      if (stack !== null) setStack(null);
      return;
    }
    const key = selectionKey(selection);
    if (!at.equals(popup.getLatLng() ?? at, 0) || !map.hasLayer(popup)) popup.setLatLng(at);
    if (!map.hasLayer(popup)) {
      popup.openOn(map);
    }
    if (openKeyRef.current !== key) {
      // Pan so a newly opened popup is visible; live updates of an open one never move the map.
      openKeyRef.current = key;
      // Bounded so that, panned into view on opening, it stays readable as its text changes.
      popup.options.maxHeight = Math.max(200, Math.round(map.getSize().y * 0.7));
      popup.options.autoPanPaddingBottomRight = L.point(summaryWidth() + 30, 20);
      popup.options.autoPan = panOnOpenRef.current;
      panOnOpenRef.current = false;
      popup.update();
      popup.options.autoPan = false;
    } else {
      popup.update();
    }
  });

  const relayout = () => {
    const popup = popupRef.current;
    if (popup !== null && mapRef.current?.hasLayer(popup)) popup.update();
  };

  return (
    <>
      <div
        ref={containerRef}
        className="mw-map"
        data-testid="fleet-map"
        role="region"
        aria-label="Map of the fleet"
      />
      {selectedMachine !== undefined &&
        createPortal(
          <MachinePopup machine={selectedMachine} clockOffset={fleet.clockOffset} onLayout={relayout} compact />,
          popupNode,
        )}
      {selection?.kind === 'stack' &&
        stackMachines.length > 0 &&
        createPortal(
          <StackList
            machines={stackMachines}
            onPick={(id) => {
              panOnOpenRef.current = true;
              setStack(null);
              onSelect(id);
            }}
          />,
          popupNode,
        )}
    </>
  );
}
