/**
 * The JSON shape of one machine, as `MachineView.to_dict()` in scraper/state.py produces it
 * for `GET /api/machines` and the `/api/live` WebSocket. Times are Unix seconds.
 */

export const STATUSES = ['up', 'warn', 'alarm', 'sensor_fault', 'down', 'stale', 'disabled', 'unknown'] as const;

export type Status = (typeof STATUSES)[number];

export interface Location {
  lat: number;
  lon: number;
}

export interface Threshold {
  warn: number | null;
  alarm: number | null;
}

export interface LastScrape {
  time: number;
  duration_seconds: number;
  error: string | null;
}

export interface SystemSummary {
  uptime_seconds: number | null;
  cpu_usage_ratio: number | null;
  memory_used_ratio: number | null;
  disk_used_ratio: number | null;
}

export interface Machine {
  id: string;
  name: string;
  url: string;
  site: string | null;
  location: Location | null;
  labels: Record<string, string>;
  enabled: boolean;
  scrape_interval_seconds: number;
  status: Status;
  reason: string | null;
  last_scrape: LastScrape | null;
  last_success_time: number | null;
  readings: Record<string, number>;
  thresholds: Record<string, Threshold>;
  system: SystemSummary;
  /** `push`: the machine sends its readings (POST /api/ingest); `last_scrape` is its last batch. */
  mode: 'pull' | 'push';
  /** The maintenance window the machine is in (docs/alerts.md); absent from older servers. */
  maintenance?: Maintenance | null;
}

export interface Maintenance {
  window: number;
  /** Unix seconds when this occurrence of the window ends. */
  until: number;
  reason: string;
}

export interface SnapshotMessage {
  type: 'snapshot';
  machines: Machine[];
  time: number | null;
  /** Seconds between the server's pings, when it said (a positive number). */
  ping_interval?: number;
}

export interface UpdateMessage {
  type: 'update';
  machines: Machine[];
  removed: string[];
  time: number | null;
}

export type LiveMessage = SnapshotMessage | UpdateMessage;
