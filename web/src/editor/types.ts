/**
 * The inventory editor's side of the server's admin API (`/api/inventory/*`, `/api/audit`):
 * one machine as machines.yaml writes it. This is the file's shape, not the live view's
 * (`Machine` in ../types.ts): durations stay as written ("15s"), absent keys stay absent, and
 * secret references come back masked as "***".
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface PlanPosition {
  /** Fraction of the floor plan's width from its left edge, 0..1. */
  x: number;
  /** Fraction of the floor plan's height from its top edge, 0..1. */
  y: number;
}

/**
 * One entry of `machines:`. Keys the editor has no field for (limits, alerts, push settings)
 * are carried unchanged: an edit only ever sends what the admin changed (a merge patch).
 */
export type InventoryEntry = JsonObject & { id: string };

/** Where a server-side validation problem is: the field path within the entry, and its text. */
export interface FieldProblem {
  loc: (string | number)[];
  msg: string;
  /** Import: the row of the file (CSV: its line; YAML: the list item from 1). */
  row?: number;
  /** A problem elsewhere in machines.yaml: its line there. */
  line?: number;
}

/** The value the server puts in place of a secret it never sends. */
export const MASKED = '***';
