import Supercluster, { type PointFeature } from 'supercluster';
import { type ClusterCountProps, mergeCountProps, pointCountProps } from '../counts';
import type { Status } from '../types';
import { MAX_ZOOM } from '../viewHash';

/** One machine to cluster: id, status and position. */
export interface ClusterPoint {
  id: string;
  status: Status;
  lon: number;
  lat: number;
}

/** What is drawn for one place on the map: a single machine or a cluster of them. */
export type ClusterItem =
  | { kind: 'machine'; id: string; lon: number; lat: number }
  | { kind: 'cluster'; clusterId: number; lon: number; lat: number; counts: ClusterCountProps };

/** What clicking a cluster does: zoom in to split it, or list machines that share one place. */
export type ClusterExpansion = { kind: 'zoom'; zoom: number } | { kind: 'stack'; ids: string[] } | null;

/** [west, south, east, north] in degrees. */
export type BBox = [number, number, number, number];

// At the map's own maximum zoom, machines that share a place stay one cluster, which opens as
// a list instead of markers piled on each other.
export const CLUSTER_MAX_ZOOM = MAX_ZOOM;

/**
 * The clustering of the fleet. Every call answers for the points of the latest `load`; a call
 * about a cluster of an older load answers null (its id no longer means anything).
 */
export interface ClusterEngine {
  load(points: ClusterPoint[]): void;
  query(bbox: BBox, zoom: number): Promise<ClusterItem[]>;
  expand(clusterId: number): Promise<ClusterExpansion>;
  destroy(): void;
}

interface PointProps {
  id: string;
  status: Status;
}

/** Supercluster itself: the index of the points of the last `load`. */
export class ClusterIndex {
  private index: Supercluster<PointProps, ClusterCountProps> | null = null;

  load(points: ClusterPoint[]): void {
    const features: Array<PointFeature<PointProps>> = points.map((p) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [p.lon, p.lat] },
      properties: { id: p.id, status: p.status },
    }));
    const index = new Supercluster<PointProps, ClusterCountProps>({
      radius: 60,
      maxZoom: CLUSTER_MAX_ZOOM,
      map: (p) => pointCountProps(p.status),
      reduce: mergeCountProps,
    });
    index.load(features);
    this.index = index;
  }

  query(bbox: BBox, zoom: number): ClusterItem[] {
    if (this.index === null) return [];
    return this.index.getClusters(bbox, zoom).map((f) => {
      const [lon, lat] = f.geometry.coordinates as [number, number];
      const props = f.properties;
      if ('cluster' in props && props.cluster) {
        const counts = {} as ClusterCountProps;
        for (const key of Object.keys(props) as Array<keyof ClusterCountProps>) {
          if (key.startsWith('n_')) counts[key] = props[key];
        }
        return { kind: 'cluster', clusterId: props.cluster_id, lon, lat, counts };
      }
      return { kind: 'machine', id: (props as PointProps).id, lon, lat };
    });
  }

  expand(clusterId: number): ClusterExpansion {
    if (this.index === null) return null;
    try {
      const zoom = this.index.getClusterExpansionZoom(clusterId);
      if (zoom <= CLUSTER_MAX_ZOOM) return { kind: 'zoom', zoom };
      return { kind: 'stack', ids: this.index.getLeaves(clusterId, Infinity).map((leaf) => leaf.properties.id) };
    } catch {
      return null; // a cluster id of an older load
    }
  }
}

/** The engine in the page's own thread (used where Web Workers are not available, e.g. tests). */
export class LocalClusterEngine implements ClusterEngine {
  private readonly index = new ClusterIndex();
  load(points: ClusterPoint[]): void {
    this.index.load(points);
  }
  async query(bbox: BBox, zoom: number): Promise<ClusterItem[]> {
    return this.index.query(bbox, zoom);
  }
  async expand(clusterId: number): Promise<ClusterExpansion> {
    return this.index.expand(clusterId);
  }
  destroy(): void {}
}

/** Messages to the worker. */
export type WorkerRequest =
  | { type: 'load'; points: ClusterPoint[] }
  | { type: 'query'; seq: number; bbox: BBox; zoom: number }
  | { type: 'expand'; seq: number; clusterId: number };

/** Messages from the worker. */
export type WorkerResponse =
  | { type: 'query'; seq: number; items: ClusterItem[] }
  | { type: 'expand'; seq: number; expansion: ClusterExpansion };

/** Answers one request with the index it keeps (the worker's whole job, testable without a worker). */
export function handleWorkerRequest(index: ClusterIndex, request: WorkerRequest): WorkerResponse | null {
  switch (request.type) {
    case 'load':
      index.load(request.points);
      return null;
    case 'query':
      return { type: 'query', seq: request.seq, items: index.query(request.bbox, request.zoom) };
    case 'expand':
      return { type: 'expand', seq: request.seq, expansion: index.expand(request.clusterId) };
  }
}

/**
 * The engine in a Web Worker: indexing 10,000 machines takes about a hundred milliseconds,
 * which would otherwise stall panning every time the fleet changes. The worker handles
 * requests in order, so a query sent after a load answers for that load. Should the worker
 * fail (its script cannot load, say), the engine carries on in the page's thread.
 */
export class WorkerClusterEngine implements ClusterEngine {
  private seq = 0;
  private readonly waiting = new Map<number, { message: WorkerRequest; resolve: (r: WorkerResponse) => void }>();
  private lastPoints: ClusterPoint[] = [];
  private fallback: ClusterIndex | null = null;

  constructor(private readonly worker: Worker) {
    worker.onmessage = (ev: MessageEvent<WorkerResponse>) => {
      const pending = this.waiting.get(ev.data.seq);
      this.waiting.delete(ev.data.seq);
      pending?.resolve(ev.data);
    };
    worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      console.error('millwatch: the clustering worker failed; clustering in the page instead', ev.message);
      this.useFallback();
    };
  }

  load(points: ClusterPoint[]): void {
    this.lastPoints = points;
    this.send({ type: 'load', points });
  }

  async query(bbox: BBox, zoom: number): Promise<ClusterItem[]> {
    const seq = ++this.seq;
    const response = await this.request({ type: 'query', seq, bbox, zoom });
    return response?.type === 'query' ? response.items : [];
  }

  async expand(clusterId: number): Promise<ClusterExpansion> {
    const seq = ++this.seq;
    const response = await this.request({ type: 'expand', seq, clusterId });
    return response?.type === 'expand' ? response.expansion : null;
  }

  destroy(): void {
    this.worker.terminate();
    this.waiting.clear();
  }

  private request(message: WorkerRequest & { seq: number }): Promise<WorkerResponse | null> {
    if (this.fallback !== null) return Promise.resolve(handleWorkerRequest(this.fallback, message));
    return new Promise((resolve) => {
      this.waiting.set(message.seq, { message, resolve });
      this.worker.postMessage(message);
    });
  }

  private send(message: WorkerRequest): void {
    if (this.fallback !== null) handleWorkerRequest(this.fallback, message);
    else this.worker.postMessage(message);
  }

  private useFallback(): void {
    if (this.fallback !== null) return;
    this.worker.terminate();
    const index = new ClusterIndex();
    index.load(this.lastPoints);
    this.fallback = index;
    for (const { message, resolve } of this.waiting.values()) {
      const response = handleWorkerRequest(index, message);
      if (response !== null) resolve(response);
    }
    this.waiting.clear();
  }
}

/** A worker-backed engine where the browser has workers, the in-thread one otherwise. */
export function createClusterEngine(): ClusterEngine {
  if (typeof Worker === 'undefined') return new LocalClusterEngine();
  try {
    const worker = new Worker(new URL('./clusterWorker.ts', import.meta.url), { type: 'module' });
    return new WorkerClusterEngine(worker);
  } catch {
    return new LocalClusterEngine();
  }
}
