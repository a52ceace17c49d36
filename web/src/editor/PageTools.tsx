import type L from 'leaflet';
import { type ReactNode, useCallback, useEffect, useMemo, useState } from 'react';
import type { Account } from '../auth';
import type { FleetData } from '../fleet';
import { PlansApi, type Site } from '../plans/api';
import { FloorPlanPanel } from '../plans/FloorPlanPanel';
import '../plans/plans.css';
import { siteInView } from '../plans/siteInView';
import { InventoryApi } from './api';
import './editor.css';
import { EditorPanel, type PlanPlacement } from './EditorPanel';
import type { InventoryEntry } from './types';

export interface PageToolsInput {
  /** Who the page is signed in as (the editor exists for admins only). */
  account: Account | null | undefined;
  fleet: FleetData;
  /** The fleet map, once it exists (placing machines by click or drag). */
  map: L.Map | null;
}

export interface PageTools {
  /** The header buttons: "Floor plans" for everyone, "Edit machines" for admins. */
  buttons: ReactNode;
  /** The open panels, to be placed over the map area. */
  panels: ReactNode;
}

export function isAdmin(account: Account | null | undefined): boolean {
  return account?.kind === 'session' && account.role === 'admin';
}

/**
 * The editor and the floor plans as two mount points for App: buttons for the header, panels
 * for the map area. A viewer never gets the editor's button or panel (the server refuses
 * them the inventory API anyway).
 */
export function usePageTools({ account, fleet, map }: PageToolsInput): PageTools {
  const admin = isAdmin(account);
  const csrf = account?.kind === 'session' ? account.csrfToken : '';
  const inventoryApi = useMemo(() => new InventoryApi({ csrfToken: csrf }), [csrf]);
  const plansApi = useMemo(() => new PlansApi(csrf), [csrf]);
  const [editorOpen, setEditorOpen] = useState(false);
  const [plansOpen, setPlansOpen] = useState(false);
  const [site, setSite] = useState<string | null>(null);
  const [placing, setPlacing] = useState<PlanPlacement | null>(null);
  const [inventory, setInventory] = useState<InventoryEntry[]>([]);
  const [sites, setSites] = useState<Site[]>([]);

  // Which sites have a plan: for the editor's "place on the plan" and the zoom hint below.
  useEffect(() => {
    let alive = true;
    plansApi.sites().then(
      (list) => alive && setSites(list),
      () => undefined, // the page works without plans; the plans panel says why when opened
    );
    return () => {
      alive = false;
    };
  }, [admin, editorOpen, plansApi]);

  const sitesWithPlan = useMemo(() => new Set(sites.filter((s) => s.plan !== null).map((s) => s.name)), [sites]);

  // Zoomed into one site that has a plan: the page offers the plan (never opens it by itself).
  const [view, setView] = useState<{ bounds: L.LatLngBounds; zoom: number } | null>(null);
  useEffect(() => {
    if (map === null) return;
    const moved = () => setView({ bounds: map.getBounds(), zoom: map.getZoom() });
    moved();
    map.on('moveend', moved);
    return () => {
      map.off('moveend', moved);
    };
  }, [map]);
  const hintSite = useMemo(() => {
    if (view === null) return null;
    const b = view.bounds;
    const bounds = { south: b.getSouth(), west: b.getWest(), north: b.getNorth(), east: b.getEast() };
    return siteInView(fleet.machines.values(), bounds, view.zoom, sitesWithPlan);
  }, [view, fleet.machines, sitesWithPlan]);
  const openPlan = useCallback((name: string) => {
    setSite(name);
    setPlansOpen(true);
  }, []);

  const buttons = (
    <div className="mw-tools">
      <button type="button" aria-expanded={plansOpen} onClick={() => setPlansOpen((o) => !o)} data-testid="open-plans">
        Floor plans
      </button>
      {admin && (
        <button type="button" aria-expanded={editorOpen} onClick={() => setEditorOpen((o) => !o)} data-testid="open-editor">
          Edit machines
        </button>
      )}
    </div>
  );

  const editorShown = admin && editorOpen;
  const panels = (
    <>
      {hintSite !== null && !(plansOpen && site === hintSite) && (
        <button type="button" className="mw-plan-hint" onClick={() => openPlan(hintSite)} data-testid="plan-hint">
          Show the floor plan of {hintSite}
        </button>
      )}
      {plansOpen && (
        <div className={editorShown ? 'mw-plans-area mw-beside-editor' : 'mw-plans-area'}>
          <FloorPlanPanel
            api={plansApi}
            fleet={fleet}
            isAdmin={admin}
            site={site}
            onSite={setSite}
            onClose={() => setPlansOpen(false)}
            inventory={admin ? inventory : []}
            placing={editorShown ? placing : null}
            onSites={setSites}
          />
        </div>
      )}
      {editorShown && (
        <EditorPanel
          api={inventoryApi}
          fleet={fleet}
          map={map}
          onClose={() => setEditorOpen(false)}
          onPlacing={setPlacing}
          onOpenPlan={openPlan}
          sitesWithPlan={sitesWithPlan}
          onInventory={setInventory}
        />
      )}
    </>
  );
  return { buttons, panels };
}
