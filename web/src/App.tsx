import type L from 'leaflet';
import { type ReactNode, useEffect, useMemo, useState } from 'react';
import type { Account } from './auth';
import { ConnectionBanner } from './components/ConnectionBanner';
import { SummaryPanel } from './components/SummaryPanel';
import { fetchTileConfig, type TileConfig } from './config';
import { countStatuses, totalOf } from './counts';
import { usePageTools } from './editor/PageTools';
import { useLiveFleet } from './hooks';
import { browserDeps, type LiveDeps, liveUrl } from './live';
import { FleetMap } from './map/FleetMap';
import type { Status } from './types';

export interface AppProps {
  /** The live WebSocket URL; by default `/api/live` on the page's own host. */
  url?: string;
  deps?: LiveDeps;
  /** Shown at the right of the header: who is signed in (see Root). */
  account?: ReactNode;
  /** Called when the live connection is refused for want of a login. */
  onAuthRequired?: () => void;
  /** Who is signed in: admins get the inventory editor (editor/PageTools.tsx). */
  session?: Account;
}

/** The whole page: header, full-window map, fleet summary and the connection notice. */
export function App({ url = liveUrl(window.location), deps = browserDeps, account, onAuthRequired, session }: AppProps) {
  const { fleet, connection, disconnected } = useLiveFleet(url, deps, onAuthRequired);
  const [map, setMap] = useState<L.Map | null>(null);
  const tools = usePageTools({ account: session, fleet, map });
  const [filter, setFilter] = useState<Status | null>(null);
  const [tiles, setTiles] = useState<TileConfig | null>(null);

  useEffect(() => {
    let alive = true;
    void fetchTileConfig().then((config) => {
      if (alive) setTiles(config);
    });
    return () => {
      alive = false;
    };
  }, []);

  const counts = useMemo(() => countStatuses(fleet.machines.values()), [fleet.machines]);
  const unlocated = useMemo(() => {
    let n = 0;
    for (const m of fleet.machines.values()) if (m.location === null) n += 1;
    return n;
  }, [fleet.machines]);
  const total = totalOf(counts);

  useEffect(() => {
    document.title = fleet.snapshots > 0 ? `millwatch — ${total} machines` : 'millwatch';
  }, [fleet.snapshots, total]);

  return (
    <div className="mw-app">
      <header className="mw-header">
        <h1 className="mw-brand">millwatch</h1>
        <p className="mw-header-total" data-testid="header-total">
          {fleet.snapshots > 0 ? `${total} ${total === 1 ? 'machine' : 'machines'}` : 'Connecting…'}
        </p>
        {tools.buttons}
        {account}
      </header>
      <main className="mw-main">
        <FleetMap fleet={fleet} filter={filter} tiles={tiles} onMap={setMap} />
        {disconnected && <ConnectionBanner connection={connection} />}
        <SummaryPanel
          counts={counts}
          lastUpdate={fleet.lastUpdate}
          clockOffset={fleet.clockOffset}
          unlocated={unlocated}
          filter={filter}
          onFilter={setFilter}
        />
        {tools.panels}
      </main>
    </div>
  );
}
