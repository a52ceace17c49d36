/** Search and order of the machine list (and of the markers the map shows). */
import { STATUS_META } from './status';
import type { Machine, Status } from './types';

/** The search text as lower-case words; a machine matches when it matches every word. */
export function searchTerms(query: string): string[] {
  return query.toLowerCase().split(/\s+/).filter((t) => t !== '');
}

/** Lower-case text a machine is found by: name, id, site and label values (and `key=value`). */
export function searchText(machine: Machine): string {
  const labels = Object.entries(machine.labels).map(([k, v]) => `${v} ${k}=${v}`);
  return [machine.name, machine.id, machine.site ?? '', ...labels].join('\n').toLowerCase();
}

export function matchesSearch(machine: Machine, terms: readonly string[]): boolean {
  if (terms.length === 0) return true;
  const text = searchText(machine);
  return terms.every((t) => text.includes(t));
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Worst status first (status.ts' severity), then by name as people sort ("press 2" before "press 10"), then id. */
export function compareMachines(a: Machine, b: Machine): number {
  return (
    STATUS_META[b.status].severity - STATUS_META[a.status].severity ||
    collator.compare(a.name, b.name) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/** The machines that pass the status filter (empty: all) and the search, sorted by `compareMachines`. */
export function visibleMachines(machines: Iterable<Machine>, statuses: readonly Status[], query: string): Machine[] {
  const terms = searchTerms(query);
  const wanted = statuses.length === 0 ? null : new Set(statuses);
  const out: Machine[] = [];
  for (const m of machines) {
    if (wanted !== null && !wanted.has(m.status)) continue;
    if (!matchesSearch(m, terms)) continue;
    out.push(m);
  }
  return out.sort(compareMachines);
}
