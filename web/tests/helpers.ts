import type { Machine, Status } from '../src/types';

/** A machine in the API's JSON shape (the generated `Machine`), with `overrides` applied. */
export function machine(id: string, overrides: Partial<Machine> = {}): Machine {
  return {
    id,
    name: `Machine ${id}`,
    url: `http://127.0.0.1:9817/metrics`,
    site: 'Berlin',
    location: { lat: 52.52, lon: 13.405 },
    plan_position: null,
    labels: {},
    enabled: true,
    scrape_interval_seconds: 15,
    status: 'up' as Status,
    reason: null,
    last_scrape: { time: 1764136800, duration_seconds: 0.012, error: null, samples: 42 },
    last_success_time: 1764136800,
    consecutive_failures: 0,
    readings: {},
    thresholds: {},
    system: { uptime_seconds: null, cpu_usage_ratio: null, memory_used_ratio: null, disk_used_ratio: null },
    mode: 'pull',
    stale_after_seconds: null,
    maintenance: null,
    ...overrides,
  };
}

/** Polls `predicate` until it holds or `timeoutMs` passes (then throws): never a fixed sleep. */
export async function waitUntil(predicate: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
