/**
 * Saving one edit, and what to do when the file changed under it (412). The ETag covers the
 * whole machines.yaml, so a 412 may come from a change to another machine: when the machine
 * being edited is still exactly as the admin read it, the edit is sent again on the new version
 * (a rebase without conflict). Otherwise the admin sees the other change beside theirs and
 * chooses: re-apply their changes on top of it, or discard them.
 */
import type { InventoryApi, WriteOutcome } from './api';
import { applyMergePatch, buildMergePatch, isEmptyPatch, isObject, jsonEqual } from './mergePatch';
import type { InventoryEntry, Json } from './types';

export interface Edit {
  /** The machine as read when editing began; null for a new machine. */
  base: InventoryEntry | null;
  /** The machine as the admin wants it. */
  edited: InventoryEntry;
  /** The file's version `base` was read from. */
  etag: string;
}

export type SaveResult =
  | (WriteOutcome & { retried: boolean })
  /** Nothing differs from what was read: nothing was sent. */
  | { kind: 'unchanged' };

function send(api: InventoryApi, edit: Edit, etag: string): Promise<WriteOutcome> {
  if (edit.base === null) return api.create(edit.edited, etag);
  return api.patch(edit.base.id, buildMergePatch(edit.base, edit.edited), etag);
}

/** Whether a 412's `current` leaves the edit free of conflict (the other change was elsewhere). */
export function conflictFree(edit: Edit, current: InventoryEntry | null): boolean {
  return edit.base === null ? current === null : current !== null && jsonEqual(current, edit.base);
}

/** Saves an edit: a POST for a new machine, else a merge patch of what changed, with If-Match. */
export async function saveEdit(api: InventoryApi, edit: Edit): Promise<SaveResult> {
  if (edit.base !== null && isEmptyPatch(buildMergePatch(edit.base, edit.edited))) return { kind: 'unchanged' };
  const first = await send(api, edit, edit.etag);
  if (first.kind === 'conflict' && first.etag !== null && conflictFree(edit, first.current)) {
    return { ...(await send(api, edit, first.etag)), retried: true };
  }
  return { ...first, retried: false };
}

/**
 * "Reload and re-apply": the admin's changes (the merge patch from what they read to what they
 * want) laid over the machine as it is now. The result is a new edit to review and save; when
 * the machine is gone, saving it creates it again.
 */
export function reapply(edit: Edit, current: InventoryEntry | null, etag: string): Edit {
  if (current === null) return { base: null, edited: edit.edited, etag };
  if (edit.base === null) return { base: current, edited: { ...edit.edited, id: current.id }, etag };
  const patch = buildMergePatch(edit.base, edit.edited);
  const edited = applyMergePatch(current, patch);
  return { base: current, edited: (isObject(edited) ? edited : current) as InventoryEntry, etag };
}

/** One line of the side-by-side view of a conflict: a top-level key, theirs and mine. */
export interface ConflictRow {
  field: string;
  theirs: string;
  mine: string;
  differs: boolean;
}

function shown(value: Json | undefined): string {
  if (value === undefined) return '(not set)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Every key of either entry, in a stable order (id first, then theirs, then mine). */
export function conflictRows(theirs: InventoryEntry | null, mine: InventoryEntry): ConflictRow[] {
  const keys = [...new Set(['id', ...Object.keys(theirs ?? {}), ...Object.keys(mine)])];
  return keys.map((field) => {
    const a = theirs?.[field];
    const b = mine[field];
    return { field, theirs: theirs === null ? '(deleted)' : shown(a), mine: shown(b), differs: theirs === null || !jsonEqual(a, b) };
  });
}
