import type L from 'leaflet';
import { type ReactNode, useCallback, useEffect, useMemo, useState } from 'react';
import type { FetchLike } from './alerts';
import type { Account } from './auth';
import { AppHeader } from './components/AppHeader';
import { ConnectionBanner } from './components/ConnectionBanner';
import { MachineDetail } from './components/MachineDetail';
import { Sidebar } from './components/Sidebar';
import { SummaryPanel } from './components/SummaryPanel';
import { fetchTileConfig, type TileConfig } from './config';
import { countStatuses, totalOf } from './counts';
import { usePageTools } from './editor/PageTools';
import { formatLocalTime } from './format';
import { useLiveFleet } from './hooks';
import { browserDeps, type LiveDeps, liveUrl } from './live';
import { FleetMap, type MapRequest } from './map/FleetMap';
import { visibleMachines } from './search';
import { useOpenAlerts } from './useAlerts';
import { useView } from './useView';
import { enterFullscreen, exitFullscreen, useSiteTour, useWallRoot } from './wall';

export interface AppProps {
  /** The live WebSocket URL; by default `/api/live` on the page's own host. */
  url?: string;
  deps?: LiveDeps;
  /** Shown at the right of the header: who is signed in (see Root). */
  account?: ReactNode;
  /** Who the page is signed in as: a session may acknowledge alerts (with its CSRF token). */
  session?: Account;
  /** Called when the live connection is refused for want of a login. */
  onAuthRequired?: () => void;
  /** The page's HTTP requests (alerts, history, scrape health); tests hand in a fake. */
  fetchFn?: FetchLike;
}

/**
 * The whole page: header, machine list and alerts beside the map, the fleet summary, the
 * selected machine's details, and the connection notice. The view lives in the URL (useView).
 */
export function App({ url = liveUrl(window.location), deps = browserDeps, account, session, onAuthRequired, fetchFn }: AppProps) {
  const { fleet, connection, disconnected } = useLiveFleet(url, deps, onAuthRequired);
  const { view, setView } = useView();
  const [map, setMap] = useState<L.Map | null>(null);
  // Admins' tools (editor/PageTools.tsx): the inventory editor, audit, floor plans; never in wall mode.
  const tools = usePageTools({ account: session, fleet, map });
  const [tiles, setTiles] = useState<TileConfig | null>(null);
  const [request, setRequest] = useState<MapRequest | null>(null);
  const alerts = useOpenAlerts(fetchFn);
  const rowHeight = useWallRoot(view.wall);
  const tour = useSiteTour(fleet.machines, view.wall ? view.wallCycle : null);

  useEffect(() => {
    let alive = true;
    void fetchTileConfig().then((config) => {
      if (alive) setTiles(config);
    });
    return () => {
      alive = false;
    };
  }, []);

  useEffect(() => {
    if (tour !== null) setRequest({ kind: 'bounds', points: tour.site.points, seq: tour.seq });
    // A new request per tour step, not per render.
  }, [tour?.seq, tour?.site.name]);

  const counts = useMemo(() => countStatuses(fleet.machines.values()), [fleet.machines]);
  const unlocated = useMemo(() => {
    let n = 0;
    for (const m of fleet.machines.values()) if (m.location === null) n += 1;
    return n;
  }, [fleet.machines]);
  const total = totalOf(counts);
  const shown = useMemo(
    () => visibleMachines(fleet.machines.values(), view.statuses, view.q),
    [fleet.machines, view.statuses, view.q],
  );

  useEffect(() => {
    document.title = fleet.snapshots > 0 ? `millwatch — ${total} machines` : 'millwatch';
  }, [fleet.snapshots, total]);

  const selectFromMap = useCallback((id: string | null) => setView({ sel: id }), [setView]);
  const selectFromList = useCallback(
    (id: string) => {
      setView({ sel: id });
      setRequest((r) => ({ kind: 'machine', id, seq: (r?.seq ?? 0) + 1 }));
    },
    [setView],
  );
  const closeDetail = useCallback(() => setView({ sel: null }), [setView]);
  const setWall = useCallback(
    (on: boolean) => {
      setView({ wall: on, wallCycle: on ? view.wallCycle : null });
      // The click is the gesture the browser wants before it goes full screen.
      if (on) void enterFullscreen();
      else void exitFullscreen();
    },
    [setView, view.wallCycle],
  );

  const staleAsOf = disconnected ? fleet.lastUpdate : null;
  const canAcknowledge = !view.wall && session?.kind === 'session';
  const selectedAlerts = alerts.alerts.filter((a) => a.machine_id === view.sel);
  const selected = view.sel === null ? undefined : fleet.machines.get(view.sel);
  return (
    <div className={`mw-app${view.wall ? ' mw-wall' : ''}${staleAsOf !== null ? ' mw-offline' : ''}`}>
      <AppHeader
        total={fleet.snapshots > 0 ? `${total} ${total === 1 ? 'machine' : 'machines'}` : 'Connecting…'}
        account={
          <>
            {!view.wall && tools.buttons}
            {account}
          </>
        }
        wall={view.wall}
        onWall={setWall}
        onFullscreen={() => void enterFullscreen()}
        tour={tour}
      />
      <main className="mw-main">
        <Sidebar
          tab={view.tab}
          onTab={(tab) => setView({ tab }, 'replace')}
          query={view.q}
          onQuery={(q) => setView({ q }, 'replace')}
          machines={shown}
          total={total}
          selectedId={view.sel}
          onSelect={selectFromList}
          alerts={alerts}
          canAcknowledge={canAcknowledge}
          csrfToken={session?.kind === 'session' ? session.csrfToken : undefined}
          clockOffset={fleet.clockOffset}
          staleAsOf={staleAsOf}
          rowHeight={rowHeight}
          wall={view.wall}
          fetchFn={fetchFn}
        />
        <div className="mw-stage">
          <FleetMap
            fleet={fleet}
            shown={shown}
            selectedId={view.sel}
            onSelect={selectFromMap}
            request={request}
            tiles={tiles}
            onMap={setMap}
          />
          {staleAsOf !== null && (
            <p className="mw-old-note mw-map-old" data-testid="map-old">
              Not live: the map shows the data as of {formatLocalTime(staleAsOf)}
            </p>
          )}
          {disconnected && <ConnectionBanner connection={connection} />}
          <SummaryPanel
            counts={counts}
            lastUpdate={fleet.lastUpdate}
            clockOffset={fleet.clockOffset}
            unlocated={unlocated}
            filter={view.statuses}
            onFilter={(statuses) => setView({ statuses })}
          />
          {!view.wall && tools.panels}
        </div>
        {view.sel !== null && (
          <MachineDetail
            machineId={view.sel}
            machine={selected}
            waiting={fleet.snapshots === 0}
            clockOffset={fleet.clockOffset}
            alerts={selectedAlerts}
            staleAsOf={staleAsOf}
            onClose={closeDetail}
            dark={view.wall}
            fetchFn={fetchFn}
          />
        )}
      </main>
    </div>
  );
}
