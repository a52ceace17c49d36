import Supercluster from 'supercluster';
import { describe, expect, it } from 'vitest';
import {
  breakdownText,
  type ClusterCountProps,
  clusterTitle,
  countsFromProps,
  countStatuses,
  emptyCounts,
  mergeCountProps,
  pointCountProps,
  totalOf,
  worstInCounts,
} from '../src/counts';
import type { Status } from '../src/types';

describe('status counts', () => {
  it('counts machines per status', () => {
    const counts = countStatuses([{ status: 'up' }, { status: 'up' }, { status: 'alarm' }, { status: 'disabled' }]);
    expect(counts.up).toBe(2);
    expect(counts.alarm).toBe(1);
    expect(counts.disabled).toBe(1);
    expect(counts.warn).toBe(0);
    expect(totalOf(counts)).toBe(4);
  });

  it('finds the worst non-empty status', () => {
    expect(worstInCounts({ ...emptyCounts(), up: 5, stale: 1 })).toBe('stale');
    expect(worstInCounts({ ...emptyCounts(), disabled: 2, unknown: 1 })).toBe('unknown');
    expect(worstInCounts(emptyCounts())).toBeNull();
  });

  it('writes the breakdown worst first without empty statuses', () => {
    const counts = { ...emptyCounts(), up: 8, warn: 3, alarm: 1 };
    expect(breakdownText(counts)).toBe('Alarm 1, Warning 3, Up 8');
    expect(clusterTitle(counts)).toBe('12 machines, worst: Alarm (Alarm 1, Warning 3, Up 8)');
    expect(clusterTitle({ ...emptyCounts(), down: 1 })).toBe('1 machine, worst: Down (Down 1)');
  });
});

describe('cluster properties', () => {
  it('merges point properties into cluster counts', () => {
    const acc = pointCountProps('up');
    mergeCountProps(acc, pointCountProps('warn'));
    mergeCountProps(acc, pointCountProps('up'));
    expect(countsFromProps(acc)).toEqual({ ...emptyCounts(), up: 2, warn: 1 });
  });

  it('gives supercluster clusters the worst status inside and a correct breakdown', () => {
    const statuses: Status[] = ['up', 'up', 'warn', 'alarm', 'disabled', 'up'];
    const index = new Supercluster<{ status: Status }, ClusterCountProps>({
      radius: 60,
      maxZoom: 18,
      map: (p) => pointCountProps(p.status),
      reduce: mergeCountProps,
    });
    // Five machines in Berlin, one far away in Lyon.
    index.load(
      statuses.map((status, i) => ({
        type: 'Feature' as const,
        geometry: { type: 'Point' as const, coordinates: i === 5 ? [4.8, 45.7] : [13.4 + i * 0.001, 52.5] },
        properties: { status },
      })),
    );
    const features = index.getClusters([-180, -85, 180, 85], 5);
    const clusters = features.filter((f) => 'cluster' in f.properties);
    expect(clusters).toHaveLength(1);
    const counts = countsFromProps(clusters[0]!.properties as ClusterCountProps);
    expect(totalOf(counts)).toBe(5);
    expect(worstInCounts(counts)).toBe('alarm');
    expect(counts).toEqual({ ...emptyCounts(), up: 2, warn: 1, alarm: 1, disabled: 1 });
    // The nested clusters of other zooms were not disturbed by the shallow property copies.
    const zoomedOut = index.getClusters([-180, -85, 180, 85], 0);
    expect(zoomedOut).toHaveLength(1);
    expect(totalOf(countsFromProps(zoomedOut[0]!.properties as ClusterCountProps))).toBe(6);
  });
});
