import { useCallback, useEffect, useState } from 'react';
import type { AuditRow, InventoryApi } from './api';

const PAGE = 100;

function when(ms: number): string {
  // In the viewer's own locale and time zone.
  return Number.isNaN(ms) ? '?' : new Date(ms).toLocaleString();
}

/** The audit log: who changed the inventory, when, and how (newest first). */
export function AuditView({ api }: { api: InventoryApi }) {
  const [rows, setRows] = useState<AuditRow[] | null>(null);
  const [older, setOlder] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const fail = (e: unknown) => setError(e instanceof Error ? e.message : String(e));
  const load = useCallback(() => {
    setError(null);
    api.auditPage(PAGE).then((page) => {
      setRows(page.rows);
      setOlder(page.nextBefore);
    }, fail);
  }, [api]);

  const loadOlder = () => {
    if (older === null) return;
    api.auditPage(PAGE, older).then((page) => {
      setRows((r) => [...(r ?? []), ...page.rows]);
      setOlder(page.nextBefore);
    }, fail);
  };

  useEffect(load, [load]);

  return (
    <section aria-labelledby="mw-audit-title" className="mw-audit">
      <div className="mw-editor-bar">
        <h3 id="mw-audit-title">Audit log</h3>
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      {error && (
        <p role="alert" className="mw-field-error">
          The audit log could not be read: {error}
        </p>
      )}
      {rows === null && !error && <p>Loading…</p>}
      {rows?.length === 0 && <p>No changes recorded yet.</p>}
      {rows && rows.length > 0 && (
        <table className="mw-audit-table" data-testid="audit-table">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Machine</th>
              <th scope="col">Change</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => (
              <tr key={`${row.time}-${i}`}>
                <td>{when(row.time)}</td>
                <td>{row.actor}</td>
                <td>{row.action}</td>
                <td>{row.target}</td>
                <td>
                  <pre className="mw-diff">{row.diff}</pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {older !== null && (
        <button type="button" onClick={loadOlder}>
          Show older changes
        </button>
      )}
    </section>
  );
}
