/** Search and order of the machine list (and of the markers the map shows). */
import { STATUS_META } from './status';
import type { Machine, Status } from './types';

/** The search text as lower-case words; a machine matches when it matches every word. */
export function searchTerms(query: string): string[] {
  return query.toLowerCase().split(/\s+/).filter((t) => t !== '');
}

// Per machine object (a live update brings a new object, so these never go stale): with 10,000
// machines the list is re-sorted and re-searched on every update, and this keeps that a few ms.
const textCache = new WeakMap<Machine, string>();
const nameKeyCache = new WeakMap<Machine, string>();

/** Lower-case text a machine is found by: name, id, site and label values (and `key=value`). */
export function searchText(machine: Machine): string {
  let text = textCache.get(machine);
  if (text === undefined) {
    const labels = Object.entries(machine.labels).map(([k, v]) => `${v} ${k}=${v}`);
    text = [machine.name, machine.id, machine.site ?? '', ...labels].join('\n').toLowerCase();
    textCache.set(machine, text);
  }
  return text;
}

/**
 * The name as people sort it, as a plain string: lower case, accents off, numbers padded
 * ("press 2" before "press 10"). String comparison of these keys is far cheaper than a collator.
 */
export function nameKey(machine: Machine): string {
  let key = nameKeyCache.get(machine);
  if (key === undefined) {
    key = machine.name
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/\d+/g, (digits) => digits.replace(/^0+(?=\d)/, '').padStart(12, '0'));
    nameKeyCache.set(machine, key);
  }
  return key;
}

export function matchesSearch(machine: Machine, terms: readonly string[]): boolean {
  if (terms.length === 0) return true;
  const text = searchText(machine);
  return terms.every((t) => text.includes(t));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Worst status first (status.ts' severity), then by name as people sort ("press 2" before "press 10"), then id. */
export function compareMachines(a: Machine, b: Machine): number {
  return (
    STATUS_META[b.status].severity - STATUS_META[a.status].severity ||
    compareStrings(nameKey(a), nameKey(b)) ||
    compareStrings(a.id, b.id)
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
