import { isStatus } from './status';
import type {
  LastScrape,
  LiveMessage,
  Location,
  Machine,
  Maintenance,
  PlanPosition,
  SnapshotMessage,
  SystemSummary,
  Threshold,
} from './types';

/** What the page knows about the fleet: the machines by id and when it last heard from the server. */
export interface FleetData {
  machines: ReadonlyMap<string, Machine>;
  /** Server time (Unix seconds) of the last message, or the local time when it sent none. */
  lastUpdate: number | null;
  /** Server clock minus local clock, in seconds, so that "12 s ago" is right on a PC with a bad clock. */
  clockOffset: number;
  /** How many snapshots have arrived (0 until the first one). */
  snapshots: number;
}

export const EMPTY_FLEET: FleetData = { machines: new Map(), lastUpdate: null, clockOffset: 0, snapshots: 0 };

type Json = Record<string, unknown>;

/*
 * The server's messages follow the generated types (web/src/api.gen.ts), and a contract test holds
 * its answers to the API's models. What is checked here is only what would break the page if a
 * message were malformed anyway (a proxy, a newer or older server): numbers it computes or draws
 * with must be finite, positions in range, strings strings; a bad field becomes its empty value.
 */

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finiteOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function parseLocation(value: unknown): Location | null {
  if (!isObject(value)) return null;
  const lat = finiteOrNull(value.lat);
  const lon = finiteOrNull(value.lon);
  if (lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { lat, lon };
}

function parsePlanPosition(value: unknown): PlanPosition | null {
  if (!isObject(value)) return null;
  const x = finiteOrNull(value.x);
  const y = finiteOrNull(value.y);
  if (x === null || y === null || x < 0 || x > 1 || y < 0 || y > 1) return null;
  return { x, y };
}

function parseLastScrape(value: unknown): LastScrape | null {
  if (!isObject(value)) return null;
  const time = finiteOrNull(value.time);
  if (time === null) return null;
  return {
    time,
    duration_seconds: finiteOrNull(value.duration_seconds) ?? 0,
    error: stringOrNull(value.error),
    samples: finiteOrNull(value.samples),
  };
}

function parseMaintenance(value: unknown): Maintenance | null {
  if (!isObject(value)) return null;
  const window = finiteOrNull(value.window);
  const until = finiteOrNull(value.until);
  if (window === null || until === null) return null;
  return { window, until, reason: stringOrNull(value.reason) ?? '' };
}

function parseSystem(value: unknown): SystemSummary {
  const v = isObject(value) ? value : {};
  return {
    uptime_seconds: finiteOrNull(v.uptime_seconds),
    cpu_usage_ratio: finiteOrNull(v.cpu_usage_ratio),
    memory_used_ratio: finiteOrNull(v.memory_used_ratio),
    disk_used_ratio: finiteOrNull(v.disk_used_ratio),
  };
}

/** The entries of an object whose values pass `parse` (non-null), the others left out. */
function parseRecord<T>(value: unknown, parse: (v: unknown) => T | null): Record<string, T> {
  const out: Record<string, T> = {};
  if (!isObject(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const parsed = parse(v);
    if (parsed !== null) out[k] = parsed;
  }
  return out;
}

function parseThreshold(value: unknown): Threshold | null {
  return isObject(value) ? { warn: finiteOrNull(value.warn), alarm: finiteOrNull(value.alarm) } : null;
}

/**
 * One machine from the wire, or null when it has no usable id. Missing or malformed fields
 * become their empty value (an unknown status becomes `unknown`), so one odd field never
 * hides a machine from the operator.
 */
export function parseMachine(value: unknown): Machine | null {
  if (!isObject(value) || typeof value.id !== 'string' || value.id === '') return null;
  return {
    id: value.id,
    name: typeof value.name === 'string' && value.name !== '' ? value.name : value.id,
    url: stringOrNull(value.url) ?? '',
    site: stringOrNull(value.site),
    location: parseLocation(value.location),
    plan_position: parsePlanPosition(value.plan_position),
    labels: parseRecord(value.labels, stringOrNull),
    enabled: value.enabled !== false,
    scrape_interval_seconds: finiteOrNull(value.scrape_interval_seconds) ?? 15,
    status: isStatus(value.status) ? value.status : 'unknown',
    reason: stringOrNull(value.reason),
    last_scrape: parseLastScrape(value.last_scrape),
    last_success_time: finiteOrNull(value.last_success_time),
    consecutive_failures: finiteOrNull(value.consecutive_failures) ?? 0,
    readings: parseRecord(value.readings, finiteOrNull),
    thresholds: parseRecord(value.thresholds, parseThreshold),
    system: parseSystem(value.system),
    mode: value.mode === 'push' ? 'push' : 'pull',
    stale_after_seconds: finiteOrNull(value.stale_after_seconds),
    maintenance: parseMaintenance(value.maintenance),
  };
}

function parseMachines(value: unknown): Machine[] {
  if (!Array.isArray(value)) return [];
  const out: Machine[] = [];
  for (const item of value) {
    const m = parseMachine(item);
    if (m !== null) out.push(m);
  }
  return out;
}

/**
 * A `/api/live` message from its text, or null when it is not JSON or not a snapshot/update
 * (such messages, pings among them, are ignored, never applied half-way).
 */
export function parseLiveMessage(text: string): LiveMessage | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(data) || !Array.isArray(data.machines)) return null;
  const time = finiteOrNull(data.time);
  if (data.type === 'snapshot') {
    const snapshot: SnapshotMessage = { type: 'snapshot', machines: parseMachines(data.machines), time };
    const pingInterval = finiteOrNull(data.ping_interval);
    if (pingInterval !== null && pingInterval > 0) snapshot.ping_interval = pingInterval;
    return snapshot;
  }
  if (data.type === 'update') {
    const removed = Array.isArray(data.removed)
      ? data.removed.filter((id): id is string => typeof id === 'string')
      : [];
    return { type: 'update', machines: parseMachines(data.machines), removed, time };
  }
  return null;
}

/**
 * The fleet after `message`: a snapshot replaces every machine, an update adds or replaces
 * the machines it carries (by id) and drops the removed ids. `nowSeconds` is the local clock.
 * Never mutates `fleet`.
 */
export function applyLiveMessage(fleet: FleetData, message: LiveMessage, nowSeconds: number): FleetData {
  let machines: Map<string, Machine>;
  if (message.type === 'snapshot') {
    machines = new Map(message.machines.map((m) => [m.id, m]));
  } else {
    machines = new Map(fleet.machines);
    for (const id of message.removed) machines.delete(id);
    for (const m of message.machines) machines.set(m.id, m);
  }
  return {
    machines,
    lastUpdate: message.time ?? nowSeconds,
    clockOffset: message.time === null ? fleet.clockOffset : message.time - nowSeconds,
    snapshots: fleet.snapshots + (message.type === 'snapshot' ? 1 : 0),
  };
}
