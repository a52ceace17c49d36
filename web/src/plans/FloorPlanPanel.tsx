import { useCallback, useEffect, useMemo, useState } from 'react';
import { StatusIcon } from '../components/StatusIcon';
import type { PlanPlacement } from '../editor/EditorPanel';
import type { InventoryEntry, PlanPosition } from '../editor/types';
import type { FleetData } from '../fleet';
import { STATUS_META } from '../status';
import { type PlansApi, planFileProblem, planPosition, planUrl, type Site } from './api';
import { FloorPlanView, type PlanMarker } from './FloorPlanView';

export interface FloorPlanPanelProps {
  api: PlansApi;
  fleet: FleetData;
  isAdmin: boolean;
  site: string | null;
  onSite: (site: string | null) => void;
  onClose: () => void;
  /** The inventory as the admin's editor last read it (positions not yet live); empty for viewers. */
  inventory: InventoryEntry[];
  /** The machine the admin is placing. */
  placing: PlanPlacement | null;
  /** Called with the sites whenever they are (re)read. */
  onSites?: (sites: Site[]) => void;
}

/** Choose a site, see its floor plan with live markers; an admin uploads, replaces or removes it. */
export function FloorPlanPanel({ api, fleet, isAdmin, site, onSite, onClose, inventory, placing, onSites }: FloorPlanPanelProps) {
  const [sites, setSites] = useState<Site[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [served, setServed] = useState<Map<string, PlanPosition>>(new Map());
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmRemove, setConfirmRemove] = useState(false);

  const load = useCallback(async () => {
    try {
      const list = await api.sites();
      setSites(list);
      onSites?.(list);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
    setServed(await api.positions().catch(() => new Map<string, PlanPosition>()));
  }, [api, onSites]);

  useEffect(() => {
    void load();
  }, [load]);

  const chosen = sites?.find((s) => s.name === site) ?? null;

  const fromInventory = useMemo(() => {
    const out = new Map<string, PlanPosition>();
    for (const entry of inventory) {
      const p = planPosition(entry.plan_position);
      if (p) out.set(entry.id, p);
    }
    return out;
  }, [inventory]);

  const siteMachines = useMemo(
    () => [...fleet.machines.values()].filter((m) => m.site === site).sort((a, b) => a.name.localeCompare(b.name)),
    [fleet.machines, site],
  );

  const markers: PlanMarker[] = useMemo(() => {
    const out: PlanMarker[] = [];
    for (const m of siteMachines) {
      // The inventory an admin's editor read is the freshest; then the live machine (when the
      // page keeps `plan_position` from the wire), then the positions read on opening.
      const live = planPosition((m as unknown as { plan_position?: unknown }).plan_position);
      const position = fromInventory.get(m.id) ?? live ?? served.get(m.id);
      if (position) out.push({ id: m.id, name: m.name, status: m.status, reason: m.reason, position });
    }
    return out;
  }, [siteMachines, fromInventory, served]);

  const upload = async () => {
    if (file === null || site === null) return;
    const problem = planFileProblem(file);
    if (problem) {
      setNotice(problem);
      return;
    }
    setBusy(true);
    try {
      await api.upload(site, file);
      setNotice(`The floor plan of ${site} is uploaded.`);
      setFile(null);
      await load();
    } catch (e) {
      setNotice(`The upload failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (site === null) return;
    setBusy(true);
    try {
      await api.remove(site);
      setNotice(`The floor plan of ${site} is removed.`);
      await load();
    } catch (e) {
      setNotice(`The plan could not be removed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setBusy(false);
      setConfirmRemove(false);
    }
  };

  const placingHere = placing !== null && placing.site === site ? placing : null;

  return (
    <section className="mw-plans" aria-labelledby="mw-plans-title" data-testid="plans">
      <div className="mw-editor-bar">
        <h2 id="mw-plans-title">Floor plans</h2>
        <div className="mw-field">
          <label htmlFor="mw-plan-site">Site</label>
          <select id="mw-plan-site" value={site ?? ''} onChange={(e) => onSite(e.target.value === '' ? null : e.target.value)}>
            <option value="">Choose a site…</option>
            {sites?.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
                {s.plan ? '' : ' (no plan)'}
              </option>
            ))}
          </select>
        </div>
        <button type="button" onClick={onClose} aria-label="Close the floor plans">
          Close
        </button>
      </div>
      {error && (
        <p role="alert" className="mw-field-error">
          The sites could not be read: {error}
        </p>
      )}
      {notice && (
        <p role="status" className="mw-editor-status" data-testid="plans-notice">
          {notice}
        </p>
      )}
      {placingHere && (
        <p className="mw-editor-notice" role="status">
          Placing {placingHere.name}: click on the plan or drag its ✚ pin, then save the machine in the editor.
        </p>
      )}
      {site !== null && chosen?.plan && (
        <FloorPlanView site={site} plan={chosen.plan} imageUrl={planUrl(site, chosen.plan)} markers={markers} placing={placingHere} />
      )}
      {site !== null && sites !== null && !chosen?.plan && <p>{site} has no floor plan yet.</p>}
      {site !== null && (
        <details className="mw-plan-machines" open={!chosen?.plan}>
          <summary>
            Machines of {site} ({siteMachines.length})
          </summary>
          <ul>
            {siteMachines.map((m) => (
              <li key={m.id}>
                <StatusIcon status={m.status} size={16} /> {m.name} — {STATUS_META[m.status].label}
                {chosen?.plan && !markers.some((k) => k.id === m.id) ? ' (not placed on the plan)' : ''}
              </li>
            ))}
          </ul>
        </details>
      )}
      {isAdmin && site !== null && (
        <div className="mw-plan-admin">
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void upload();
            }}
          >
            <div className="mw-field">
              <label htmlFor="mw-plan-file">{chosen?.plan ? 'Replace the plan' : 'Upload a plan'} (PNG, JPEG or WebP, at most 5 MB)</label>
              <input id="mw-plan-file" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            </div>
            <button type="submit" className="mw-primary" disabled={file === null || busy}>
              Upload
            </button>
          </form>
          {chosen?.plan &&
            (confirmRemove ? (
              <div role="alertdialog" aria-label="Remove the floor plan?" className="mw-editor-actions">
                <span>Remove the floor plan of {site}? The machines' positions stay in machines.yaml.</span>
                <button type="button" className="mw-danger" onClick={() => void remove()} disabled={busy}>
                  Remove
                </button>
                <button type="button" autoFocus onClick={() => setConfirmRemove(false)}>
                  Keep it
                </button>
              </div>
            ) : (
              <button type="button" className="mw-danger" onClick={() => setConfirmRemove(true)}>
                Remove the plan…
              </button>
            ))}
        </div>
      )}
    </section>
  );
}
