/**
 * Sites and their floor plans (`GET /api/sites`, `PUT|GET|DELETE /api/sites/{site}/plan`;
 * docs/editor.md). Anyone who may read sees the plans; only an admin uploads or removes one.
 */
import type { PlanPosition } from '../editor/types';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

const browserFetch: FetchLike = (input, init) => fetch(input, init);

export interface PlanInfo {
  width: number;
  height: number;
  etag: string;
}

export interface Site {
  name: string;
  /** How many machines the site has. */
  machines: number;
  plan: PlanInfo | null;
}

export const MAX_PLAN_BYTES = 5 * 1024 * 1024;
export const PLAN_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positive(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null;
}

function planOf(value: unknown): PlanInfo | null {
  if (!isRecord(value)) return null;
  const width = positive(value.width);
  const height = positive(value.height);
  if (width === null || height === null) return null;
  return { width, height, etag: typeof value.etag === 'string' ? value.etag : '' };
}

export function parseSites(body: unknown): Site[] {
  const list = isRecord(body) && Array.isArray(body.sites) ? body.sites : [];
  const out: Site[] = [];
  for (const item of list) {
    if (!isRecord(item) || typeof item.name !== 'string' || item.name === '') continue;
    const machines = Array.isArray(item.machines) ? item.machines.length : typeof item.machines === 'number' ? item.machines : 0;
    out.push({ name: item.name, machines, plan: planOf(item.plan) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function problem(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as unknown;
    if (isRecord(body) && typeof body.detail === 'string') return body.detail;
  } catch {
    // not JSON
  }
  return `the server answered ${response.status}`;
}

export function sitePath(site: string): string {
  return `/api/sites/${encodeURIComponent(site)}/plan`;
}

/** The plan image's URL; its ETag in the query so a new upload is never hidden by the cache. */
export function planUrl(site: string, plan: PlanInfo): string {
  return `${sitePath(site)}?v=${encodeURIComponent(plan.etag)}`;
}

/** Why a file cannot be a floor plan, or null when it may be uploaded. */
export function planFileProblem(file: { size: number; type: string }): string | null {
  if (!(PLAN_TYPES as readonly string[]).includes(file.type)) return 'A floor plan is a PNG, JPEG or WebP image.';
  if (file.size > MAX_PLAN_BYTES) return 'The image is larger than 5 MB.';
  if (file.size === 0) return 'The file is empty.';
  return null;
}

export class PlansApi {
  constructor(
    private readonly csrfToken = '',
    private readonly fetchFn: FetchLike = browserFetch,
  ) {}

  async sites(): Promise<Site[]> {
    const response = await this.fetchFn('/api/sites', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (!response.ok) throw new Error(await problem(response));
    return parseSites(await response.json());
  }

  /** Uploads (or replaces) a site's plan. Throws an Error with the server's words. */
  async upload(site: string, file: Blob): Promise<void> {
    await this.write('PUT', site, file, file.type);
  }

  async remove(site: string): Promise<void> {
    await this.write('DELETE', site);
  }

  /**
   * Where the machines sit on the plans, by machine id, when the viewer's machine list carries
   * them (`plan_position` of `GET /api/machines`); an admin's editor also has them from the inventory.
   */
  async positions(): Promise<Map<string, PlanPosition>> {
    const out = new Map<string, PlanPosition>();
    const response = await this.fetchFn('/api/machines', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (!response.ok) return out;
    const body = (await response.json()) as unknown;
    const list = isRecord(body) && Array.isArray(body.machines) ? body.machines : Array.isArray(body) ? body : [];
    for (const item of list) {
      if (!isRecord(item) || typeof item.id !== 'string') continue;
      const position = planPosition(item.plan_position);
      if (position) out.set(item.id, position);
    }
    return out;
  }

  private async write(method: string, site: string, body?: Blob, type?: string): Promise<void> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (type) headers['Content-Type'] = type;
    if (this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    const response = await this.fetchFn(sitePath(site), { method, headers, body, credentials: 'same-origin' });
    if (!response.ok) throw new Error(await problem(response));
  }
}

/** A plan position from JSON, or null unless both fractions are numbers in 0..1. */
export function planPosition(value: unknown): PlanPosition | null {
  if (!isRecord(value)) return null;
  const { x, y } = value;
  if (typeof x !== 'number' || typeof y !== 'number') return null;
  if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
  return { x, y };
}
