import { describe, expect, it } from 'vitest';
import {
  ClusterIndex,
  type ClusterPoint,
  handleWorkerRequest,
  LocalClusterEngine,
  type WorkerRequest,
  WorkerClusterEngine,
} from '../src/map/clusterEngine';
import { waitUntil } from './helpers';

const WORLD: [number, number, number, number] = [-180, -85, 180, 85];

const PLANT: ClusterPoint[] = [
  { id: 'a', status: 'up', lon: 13.4, lat: 52.5 },
  { id: 'b', status: 'alarm', lon: 13.401, lat: 52.501 },
  { id: 'far', status: 'down', lon: -83, lat: 42.3 },
];

describe('ClusterIndex', () => {
  it('clusters near machines and keeps far ones apart', () => {
    const index = new ClusterIndex();
    index.load(PLANT);
    const items = index.query(WORLD, 4);
    expect(items).toHaveLength(2);
    const cluster = items.find((i) => i.kind === 'cluster');
    expect(cluster?.kind === 'cluster' && cluster.counts.n_alarm).toBe(1);
    expect(cluster?.kind === 'cluster' && cluster.counts.n_up).toBe(1);
    const far = items.find((i) => i.kind === 'machine');
    expect(far?.kind === 'machine' && far.id).toBe('far');
    expect(far?.lon).toBeCloseTo(-83, 4);
    expect(far?.lat).toBeCloseTo(42.3, 4);
  });

  it('says how far to zoom to split a cluster, or lists machines that share one place', () => {
    const index = new ClusterIndex();
    index.load([...PLANT, { id: 'twin', status: 'warn', lon: -83, lat: 42.3 }]);
    const items = index.query(WORLD, 4);
    const berlin = items.find((i) => i.kind === 'cluster' && i.lon > 0);
    const detroit = items.find((i) => i.kind === 'cluster' && i.lon < 0);
    expect(berlin?.kind).toBe('cluster');
    const split = index.expand(berlin?.kind === 'cluster' ? berlin.clusterId : -1);
    expect(split?.kind).toBe('zoom');
    expect(split?.kind === 'zoom' && split.zoom).toBeGreaterThan(4);
    const stack = index.expand(detroit?.kind === 'cluster' ? detroit.clusterId : -1);
    expect(stack?.kind === 'stack' && [...stack.ids].sort()).toEqual(['far', 'twin']);
  });

  it('answers null for a cluster id it does not know and nothing before a load', () => {
    const index = new ClusterIndex();
    expect(index.query(WORLD, 3)).toEqual([]);
    expect(index.expand(12345)).toBeNull();
    index.load(PLANT);
    expect(index.expand(987654321)).toBeNull();
  });
});

describe('handleWorkerRequest', () => {
  it('loads silently and answers queries with their sequence number', () => {
    const index = new ClusterIndex();
    expect(handleWorkerRequest(index, { type: 'load', points: PLANT })).toBeNull();
    const answer = handleWorkerRequest(index, { type: 'query', seq: 7, bbox: WORLD, zoom: 4 });
    expect(answer?.type).toBe('query');
    expect(answer?.seq).toBe(7);
  });
});

/** Runs the worker's handler asynchronously, as a real worker would; can be made to fail. */
class FakeWorker {
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  terminated = false;
  broken = false;
  private readonly index = new ClusterIndex();
  postMessage(message: WorkerRequest): void {
    if (this.broken) return; // a dead worker never answers
    setTimeout(() => {
      const response = handleWorkerRequest(this.index, structuredClone(message));
      if (response !== null) this.onmessage?.(new MessageEvent('message', { data: response }));
    }, 1);
  }
  terminate(): void {
    this.terminated = true;
  }
  fail(): void {
    this.broken = true;
    this.onerror?.(new ErrorEvent('error', { message: 'script failed to load', cancelable: true }));
  }
}

describe('cluster engines', () => {
  it('the local and the worker engine give the same answers', async () => {
    const local = new LocalClusterEngine();
    const worker = new WorkerClusterEngine(new FakeWorker() as unknown as Worker);
    for (const engine of [local, worker]) engine.load(PLANT);
    const [a, b] = await Promise.all([local.query(WORLD, 4), worker.query(WORLD, 4)]);
    expect(b).toEqual(a);
  });

  it('carries on in the page when the worker fails, even for requests already sent', async () => {
    const fake = new FakeWorker();
    fake.broken = true;
    const engine = new WorkerClusterEngine(fake as unknown as Worker);
    engine.load(PLANT);
    let items: unknown[] | null = null;
    void engine.query(WORLD, 4).then((r) => {
      items = r;
    });
    fake.fail();
    await waitUntil(() => items !== null, 1000, 'the pending query to be answered');
    expect(items).toHaveLength(2);
    expect(fake.terminated).toBe(true);
    expect(await engine.query(WORLD, 1)).toHaveLength(2);
  });
});
