import { useEffect, useRef } from 'react';
import { conflictRows } from './session';
import type { InventoryEntry } from './types';

export interface ConflictViewProps {
  /** The machine as it is in the file now (null: someone deleted it). */
  current: InventoryEntry | null;
  /** The machine as this admin wants it (for a delete: as they last saw it). */
  mine: InventoryEntry;
  /** What this admin was doing, for the sentence at the top. */
  action: 'save' | 'delete';
  onReapply: () => void;
  onDiscard: () => void;
}

/**
 * A 412 explained: the file changed since this admin read it, and the machine differs. Their
 * version beside the other change, field by field, and the two ways on.
 */
export function ConflictView({ current, mine, action, onReapply, onDiscard }: ConflictViewProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const rows = conflictRows(current, mine);
  return (
    <section className="mw-conflict" role="alert" aria-labelledby="mw-conflict-title" data-testid="conflict">
      <h3 id="mw-conflict-title" tabIndex={-1} ref={heading}>
        Someone else changed this machine
      </h3>
      <p>
        {current === null
          ? `Since you opened it, ${mine.id} was deleted from machines.yaml (by another admin or on disk).`
          : `Since you opened it, ${mine.id} was changed in machines.yaml (by another admin or on disk). Nothing of yours was written.`}
      </p>
      <table className="mw-conflict-table">
        <caption>Fields that differ are marked ≠</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Now in the file</th>
            <th scope="col">{action === 'delete' ? 'As you saw it' : 'Yours'}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.field} className={row.differs ? 'mw-differs' : undefined} data-testid={`conflict-${row.field}`}>
              <th scope="row">
                {row.differs && <span aria-label="differs">≠ </span>}
                {row.field}
              </th>
              <td>
                <code>{row.theirs}</code>
              </td>
              <td>
                <code>{row.mine}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="mw-editor-actions">
        <button type="button" className="mw-primary" onClick={onReapply}>
          {action === 'delete' ? 'Delete it anyway' : current === null ? 'Re-create it with my version' : 'Reload and re-apply my changes'}
        </button>
        <button type="button" onClick={onDiscard}>
          {action === 'delete' ? 'Keep it' : 'Discard mine'}
        </button>
      </div>
    </section>
  );
}
