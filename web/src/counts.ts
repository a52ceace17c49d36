import { STATUS_META, STATUSES_BY_SEVERITY } from './status';
import { STATUSES, type Status } from './types';

/** How many machines have each status. */
export type StatusCounts = Record<Status, number>;

/**
 * Per-status counts carried by supercluster points and clusters. Flat numeric keys on purpose:
 * supercluster copies cluster properties shallowly, so a nested counts object would be shared.
 */
export type ClusterCountProps = { [K in Status as `n_${K}`]: number };

export function emptyCounts(): StatusCounts {
  const counts = {} as StatusCounts;
  for (const s of STATUSES) counts[s] = 0;
  return counts;
}

/** Counts of each status among `machines`. */
export function countStatuses(machines: Iterable<{ status: Status }>): StatusCounts {
  const counts = emptyCounts();
  for (const m of machines) counts[m.status] += 1;
  return counts;
}

export function totalOf(counts: StatusCounts): number {
  let total = 0;
  for (const s of STATUSES) total += counts[s];
  return total;
}

/** The worst status with a non-zero count, or null when all counts are zero. */
export function worstInCounts(counts: StatusCounts): Status | null {
  for (const s of STATUSES_BY_SEVERITY) if (counts[s] > 0) return s;
  return null;
}

/** "Alarm 1, Warning 3, Up 8": non-zero counts, worst first. */
export function breakdownText(counts: StatusCounts): string {
  return STATUSES_BY_SEVERITY.filter((s) => counts[s] > 0)
    .map((s) => `${STATUS_META[s].label} ${counts[s]}`)
    .join(', ');
}

/** A cluster's title and aria-label: its size, its worst status and the breakdown. */
export function clusterTitle(counts: StatusCounts): string {
  const total = totalOf(counts);
  const worst = worstInCounts(counts);
  const noun = total === 1 ? 'machine' : 'machines';
  if (worst === null) return `${total} ${noun}`;
  return `${total} ${noun}, worst: ${STATUS_META[worst].label} (${breakdownText(counts)})`;
}

/** The cluster properties of one machine point (supercluster's `map`). */
export function pointCountProps(status: Status): ClusterCountProps {
  const props = {} as ClusterCountProps;
  for (const s of STATUSES) props[`n_${s}`] = s === status ? 1 : 0;
  return props;
}

/** Adds `props` into `acc` in place (supercluster's `reduce`). */
export function mergeCountProps(acc: ClusterCountProps, props: ClusterCountProps): void {
  for (const s of STATUSES) acc[`n_${s}`] += props[`n_${s}`];
}

export function countsFromProps(props: ClusterCountProps): StatusCounts {
  const counts = emptyCounts();
  for (const s of STATUSES) counts[s] = props[`n_${s}`];
  return counts;
}
