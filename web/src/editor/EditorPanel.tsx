import type L from 'leaflet';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { StatusIcon } from '../components/StatusIcon';
import type { FleetData } from '../fleet';
import { STATUS_META } from '../status';
import { type InventoryApi, type InventorySnapshot } from './api';
import { AuditView } from './AuditView';
import { ConflictView } from './ConflictView';
import { emptyForm, entryFromForm, fieldErrors, formFromEntry, type MachineForm } from './form';
import { ImportView } from './ImportView';
import { MachineFormView } from './MachineFormView';
import { MapPlacement } from './mapPlacement';
import { jsonEqual } from './mergePatch';
import { type Edit, reapply, saveEdit } from './session';
import type { FieldProblem, InventoryEntry, PlanPosition } from './types';

/** What the floor plan needs to place the machine being edited. */
export interface PlanPlacement {
  id: string;
  name: string;
  site: string;
  position: PlanPosition | null;
  onPlace: (position: PlanPosition) => void;
}

export interface EditorPanelProps {
  api: InventoryApi;
  fleet: FleetData;
  /** The fleet map, for placing a machine by clicking or dragging (null until it exists). */
  map: L.Map | null;
  onClose: () => void;
  /** The machine being edited, for the floor plan (null when none is). */
  onPlacing?: (placement: PlanPlacement | null) => void;
  /** Opens the floor plan of `site`. */
  onOpenPlan?: (site: string) => void;
  /** Sites that have a floor plan. */
  sitesWithPlan?: ReadonlySet<string>;
  /** Called with the inventory whenever it is (re)read, for the floor plans' positions. */
  onInventory?: (machines: InventoryEntry[]) => void;
}

type Tab = 'machines' | 'import' | 'audit';

interface Editing {
  base: InventoryEntry | null;
  etag: string;
  form: MachineForm;
  problems: FieldProblem[];
  conflict: { current: InventoryEntry | null; etag: string | null } | null;
  notice: string | null;
}

interface Deleting {
  entry: InventoryEntry;
  etag: string;
  conflict: { current: InventoryEntry | null; etag: string | null } | null;
}

const LIST_LIMIT = 200;

function parsePlace(lat: string, lon: string): { lat: number; lon: number } | null {
  const a = Number(lat);
  const b = Number(lon);
  return lat.trim() !== '' && lon.trim() !== '' && Number.isFinite(a) && Number.isFinite(b) ? { lat: a, lon: b } : null;
}

function displayName(entry: InventoryEntry): string {
  return typeof entry.name === 'string' && entry.name !== '' ? entry.name : entry.id;
}

/**
 * The admins' inventory editor: the machines of machines.yaml, a form per machine, import and
 * the audit log. Every write carries the version it was made on; see session.ts for 412s.
 */
export function EditorPanel({ api, fleet, map, onClose, onPlacing, onOpenPlan, sitesWithPlan, onInventory }: EditorPanelProps) {
  const [tab, setTab] = useState<Tab>('machines');
  const [snapshot, setSnapshot] = useState<InventorySnapshot | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<Deleting | null>(null);
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  const placementRef = useRef<MapPlacement | null>(null);

  const reload = useCallback(async (): Promise<string | null> => {
    try {
      const fresh = await api.list();
      setSnapshot(fresh);
      setLoadError(null);
      onInventory?.(fresh.machines);
      return fresh.etag;
    } catch (e) {
      setLoadError(e instanceof Error ? e.message : String(e));
      return null;
    }
  }, [api, onInventory]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const setForm = useCallback((update: (form: MachineForm) => MachineForm) => {
    setEditing((e) => (e === null ? e : { ...e, form: update(e.form) }));
  }, []);

  // The pin on the fleet map follows the form; dragging it or clicking while picking fills the form.
  useEffect(() => {
    if (map === null || editing === null) return;
    const placement = new MapPlacement(map, (lat, lon) => {
      setForm((f) => ({ ...f, lat: String(lat), lon: String(lon) }));
      setPicking(false);
    });
    placementRef.current = placement;
    return () => {
      placement.destroy();
      placementRef.current = null;
    };
  }, [map, editing === null, setForm]);

  const lat = editing?.form.lat ?? '';
  const lon = editing?.form.lon ?? '';
  const label = editing ? editing.form.name || editing.form.id || 'new machine' : '';
  useEffect(() => {
    placementRef.current?.setPosition(parsePlace(lat, lon), label);
  }, [lat, lon, label, map, editing === null]);

  useEffect(() => {
    placementRef.current?.setPicking(picking);
    if (!picking) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setPicking(false);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [picking, editing === null]);

  // The floor plan places the machine being edited.
  const planX = editing?.form.planX ?? '';
  const planY = editing?.form.planY ?? '';
  const site = editing?.form.site.trim() ?? '';
  const id = editing?.form.id ?? '';
  useEffect(() => {
    if (!onPlacing) return;
    if (editing === null) {
      onPlacing(null);
      return;
    }
    const x = Number(planX);
    const y = Number(planY);
    onPlacing({
      id,
      name: label,
      site,
      position: planX.trim() !== '' && planY.trim() !== '' && Number.isFinite(x) && Number.isFinite(y) ? { x, y } : null,
      onPlace: (p) => setForm((f) => ({ ...f, planX: String(p.x), planY: String(p.y) })),
    });
  }, [onPlacing, editing === null, id, label, site, planX, planY, setForm]);
  useEffect(() => () => onPlacing?.(null), [onPlacing]);

  const errors = useMemo(() => (editing ? fieldErrors(editing.problems, editing.form) : new Map()), [editing]);

  const startEdit = (entry: InventoryEntry | null) => {
    if (snapshot === null) return;
    setStatus(null);
    setPicking(false);
    setEditing({ base: entry, etag: snapshot.etag, form: entry ? formFromEntry(entry) : emptyForm(), problems: [], conflict: null, notice: null });
  };

  const closeEdit = (message: string | null) => {
    setEditing(null);
    setPicking(false);
    setStatus(message);
  };

  const save = async () => {
    if (editing === null) return;
    const edit: Edit = { base: editing.base, edited: entryFromForm(editing.form, editing.base ?? {}), etag: editing.etag };
    setBusy(true);
    try {
      const result = await saveEdit(api, edit);
      if (result.kind === 'unchanged') {
        setEditing({ ...editing, problems: [], notice: 'Nothing changed: nothing was written.' });
      } else if (result.kind === 'ok') {
        await reload();
        const what = edit.base === null ? 'Added' : 'Saved';
        closeEdit(
          `${what} ${edit.edited.id}.${result.retried ? ' (machines.yaml had changed elsewhere meanwhile; your change was applied on top.)' : ''}`,
        );
      } else if (result.kind === 'invalid') {
        setEditing({ ...editing, problems: result.problems, conflict: null, notice: null });
      } else if (result.kind === 'conflict') {
        setEditing({ ...editing, problems: [], conflict: { current: result.current, etag: result.etag }, notice: null });
      } else {
        setEditing({ ...editing, problems: [], notice: result.detail });
      }
    } finally {
      setBusy(false);
    }
  };

  const reapplyMine = async () => {
    if (editing?.conflict == null) return;
    const etag = editing.conflict.etag ?? (await reload());
    if (etag === null) return;
    const edit: Edit = { base: editing.base, edited: entryFromForm(editing.form, editing.base ?? {}), etag: editing.etag };
    const next = reapply(edit, editing.conflict.current, etag);
    void reload();
    setEditing({
      base: next.base,
      etag: next.etag,
      form: formFromEntry(next.edited),
      problems: [],
      conflict: null,
      notice: 'Your changes are now laid over the current version of the machine: check them and save again.',
    });
  };

  const discardMine = async () => {
    await reload();
    closeEdit('Your changes were discarded; the list shows machines.yaml as it is now.');
  };

  const remove = async (entry: InventoryEntry, etag: string) => {
    setBusy(true);
    try {
      let result = await api.remove(entry.id, etag);
      // The file changed elsewhere but this machine is as the admin saw it: delete on the new version.
      if (result.kind === 'conflict' && result.etag !== null && result.current !== null && jsonEqual(result.current, entry)) {
        result = await api.remove(entry.id, result.etag);
      }
      if (result.kind === 'ok') {
        await reload();
        setDeleting(null);
        closeEdit(`Deleted ${entry.id}.`);
      } else if (result.kind === 'conflict') {
        setDeleting({ entry, etag, conflict: { current: result.current, etag: result.etag } });
      } else {
        setDeleting(null);
        setStatus(result.kind === 'invalid' ? result.problems.map((p) => p.msg).join('; ') : result.detail);
      }
    } finally {
      setBusy(false);
    }
  };

  const toggleEnabled = async (entry: InventoryEntry) => {
    if (snapshot === null) return;
    setBusy(true);
    try {
      const enabled = entry.enabled === false;
      const result = await saveEdit(api, { base: entry, edited: { ...entry, enabled }, etag: snapshot.etag });
      await reload();
      if (result.kind === 'ok') setStatus(`${enabled ? 'Enabled' : 'Disabled'} ${entry.id}.`);
      else if (result.kind === 'conflict') setStatus(`${entry.id} was changed by someone else meanwhile: the list is reloaded, look and try again.`);
      else if (result.kind === 'invalid') setStatus(result.problems.map((p) => p.msg).join('; '));
      else if (result.kind === 'refused') setStatus(result.detail);
    } finally {
      setBusy(false);
    }
  };

  const machines = snapshot?.machines ?? [];
  const needle = filter.trim().toLowerCase();
  const matching = needle
    ? machines.filter((m) => [m.id, displayName(m), typeof m.site === 'string' ? m.site : ''].some((t) => t.toLowerCase().includes(needle)))
    : machines;

  return (
    <aside className="mw-editor" aria-labelledby="mw-editor-title" data-testid="editor">
      <div className="mw-editor-bar">
        <h2 id="mw-editor-title">Inventory editor</h2>
        <button type="button" onClick={onClose} aria-label="Close the inventory editor">
          Close
        </button>
      </div>
      <nav className="mw-editor-tabs" aria-label="Editor sections">
        {(
          [
            ['machines', 'Machines'],
            ['import', 'Import'],
            ['audit', 'Audit log'],
          ] as const
        ).map(([key, text]) => (
          <button key={key} type="button" aria-pressed={tab === key} onClick={() => setTab(key)}>
            {text}
          </button>
        ))}
      </nav>
      {loadError && (
        <p role="alert" className="mw-field-error">
          The inventory could not be read: {loadError}{' '}
          <button type="button" onClick={() => void reload()}>
            Retry
          </button>
        </p>
      )}
      {status && (
        <p role="status" className="mw-editor-status" data-testid="editor-status">
          {status}
        </p>
      )}

      {tab === 'import' && <ImportView api={api} etag={snapshot?.etag ?? null} onImported={reload} />}
      {tab === 'audit' && <AuditView api={api} />}

      {tab === 'machines' && deleting && (
        <div className="mw-confirm" role="alertdialog" aria-labelledby="mw-delete-title" data-testid="delete-confirm">
          {deleting.conflict ? (
            <ConflictView
              current={deleting.conflict.current}
              mine={deleting.entry}
              action="delete"
              onReapply={() => {
                const etag = deleting.conflict?.etag;
                if (deleting.conflict?.current === null) {
                  void reload().then(() => {
                    setDeleting(null);
                    closeEdit(`${deleting.entry.id} was already deleted.`);
                  });
                } else if (etag) void remove(deleting.entry, etag);
              }}
              onDiscard={() => {
                setDeleting(null);
                void reload();
              }}
            />
          ) : (
            <>
              <h3 id="mw-delete-title">Delete {displayName(deleting.entry)}?</h3>
              <p>
                The machine {deleting.entry.id} is removed from machines.yaml and from the map. Its stored history stays in the
                database.
              </p>
              <div className="mw-editor-actions">
                <button type="button" className="mw-danger" disabled={busy} onClick={() => void remove(deleting.entry, deleting.etag)}>
                  Delete
                </button>
                {/* The safe choice has the focus. */}
                <button type="button" autoFocus onClick={() => setDeleting(null)}>
                  Keep it
                </button>
              </div>
            </>
          )}
        </div>
      )}

      {tab === 'machines' && editing && !deleting && (
        <>
          {editing.notice && (
            <p role="status" className="mw-editor-notice" data-testid="editor-notice">
              {editing.notice}
            </p>
          )}
          {editing.conflict ? (
            <ConflictView
              current={editing.conflict.current}
              mine={entryFromForm(editing.form, editing.base ?? {})}
              action="save"
              onReapply={() => void reapplyMine()}
              onDiscard={() => void discardMine()}
            />
          ) : (
            <MachineFormView
              form={editing.form}
              onChange={setForm}
              errors={errors}
              refusal={editing.problems}
              isNew={editing.base === null}
              busy={busy}
              pickingOnMap={picking}
              onPickOnMap={setPicking}
              onPlaceOnPlan={site !== '' && onOpenPlan && sitesWithPlan?.has(site) ? () => onOpenPlan(site) : undefined}
              onSave={() => void save()}
              onCancel={() => closeEdit(null)}
              onDelete={editing.base ? () => setDeleting({ entry: editing.base!, etag: editing.etag, conflict: null }) : undefined}
            />
          )}
        </>
      )}

      {tab === 'machines' && !editing && !deleting && (
        <section aria-label="Machines of the inventory">
          <div className="mw-editor-bar">
            <div className="mw-field">
              <label htmlFor="mw-ed-filter">Find a machine</label>
              <input id="mw-ed-filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="name, id or site" />
            </div>
            <button type="button" className="mw-primary" onClick={() => startEdit(null)} disabled={snapshot === null}>
              Add machine
            </button>
          </div>
          {snapshot === null && !loadError && <p>Loading the inventory…</p>}
          {snapshot && (
            <p className="mw-field-hint">
              {matching.length} of {machines.length} machines
              {matching.length > LIST_LIMIT ? `; the first ${LIST_LIMIT} are listed, narrow the search` : ''}.
            </p>
          )}
          <ul className="mw-editor-list" data-testid="editor-list">
            {matching.slice(0, LIST_LIMIT).map((entry) => {
              const live = fleet.machines.get(entry.id);
              const disabled = entry.enabled === false;
              return (
                <li key={entry.id} data-machine-id={entry.id}>
                  <button type="button" className="mw-editor-pick" onClick={() => startEdit(entry)} aria-label={`Edit ${displayName(entry)} (${entry.id})`}>
                    <span className="mw-editor-name">{displayName(entry)}</span>
                    <span className="mw-editor-id">{entry.id}</span>
                  </button>
                  {live && (
                    <span className="mw-editor-state">
                      <StatusIcon status={live.status} size={16} />
                      {STATUS_META[live.status].label}
                    </span>
                  )}
                  <button type="button" disabled={busy} onClick={() => void toggleEnabled(entry)} aria-label={`${disabled ? 'Enable' : 'Disable'} ${displayName(entry)}`}>
                    {disabled ? 'Enable' : 'Disable'}
                  </button>
                </li>
              );
            })}
          </ul>
        </section>
      )}
    </aside>
  );
}
