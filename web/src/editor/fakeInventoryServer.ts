/**
 * For the editor's tests only: an in-memory server that keeps the inventory contract
 * (ETag on reads, If-Match on writes, 428/412/409/422/403, merge patch), so that the tests drive
 * the editor through the same HTTP answers the real server gives.
 */
import { applyMergePatch, isObject } from './mergePatch';
import type { InventoryEntry, Json } from './types';

export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

export class FakeInventoryServer {
  machines: InventoryEntry[];
  version = 1;
  requests: Recorded[] = [];
  role: 'admin' | 'viewer' = 'admin';
  csrf = 'csrf-token';
  /** Validation the test wants: entry → problems (empty: valid). */
  validate: (entry: InventoryEntry) => { loc: (string | number)[]; msg: string }[] = () => [];

  constructor(machines: InventoryEntry[]) {
    this.machines = machines.map((m) => structuredClone(m));
  }

  get etag(): string {
    return `v${this.version}`;
  }

  /** Someone else's change (another admin, or an edit on disk). */
  changeBehindTheBack(id: string, patch: Record<string, Json>): void {
    const i = this.machines.findIndex((m) => m.id === id);
    if (i >= 0) this.machines[i] = applyMergePatch(this.machines[i], patch) as InventoryEntry;
    this.version += 1;
  }

  readonly fetch = async (input: string, init: RequestInit = {}): Promise<Response> => {
    const method = init.method ?? 'GET';
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>));
    const body = typeof init.body === 'string' && headers['Content-Type']?.includes('json') ? (JSON.parse(init.body) as unknown) : init.body;
    this.requests.push({ method, path: input, headers, body });
    const path = input.split('?')[0]!;
    if (!path.startsWith('/api/inventory/machines')) {
      if (path === '/api/audit') return json(200, { audit: [] });
      return json(404, { detail: 'Not Found' });
    }
    if (this.role !== 'admin') return json(403, { detail: 'admin role required' });
    if (method === 'GET') return json(200, { machines: this.machines, etag: this.etag }, { ETag: `"${this.etag}"` });
    if (headers['X-CSRF-Token'] !== this.csrf) return json(403, { detail: 'missing or wrong X-CSRF-Token header' });
    const id = decodeURIComponent(path.slice('/api/inventory/machines/'.length));
    const index = this.machines.findIndex((m) => m.id === id);
    const current = index >= 0 ? this.machines[index]! : null;
    const ifMatch = headers['If-Match'];
    if (ifMatch === undefined) return json(428, { detail: 'If-Match required' });
    if (ifMatch !== `"${this.etag}"`) {
      const target = method === 'POST' && isObject(body as Json) ? this.machines.find((m) => m.id === (body as InventoryEntry).id) ?? null : current;
      return json(412, { detail: 'machines.yaml changed since you read it', etag: this.etag, current: target });
    }
    if (method === 'POST') {
      const entry = body as InventoryEntry;
      if (this.machines.some((m) => m.id === entry.id)) return json(409, { detail: `a machine with id ${entry.id} exists` });
      const problems = this.validate(entry);
      if (problems.length) return json(422, { detail: problems.map((p) => ({ ...p, loc: ['body', ...p.loc] })) });
      this.machines.push(entry);
      this.version += 1;
      return json(201, { machine: entry, etag: this.etag }, { ETag: `"${this.etag}"` });
    }
    if (current === null) return json(404, { detail: `no machine ${id}` });
    if (method === 'DELETE') {
      this.machines.splice(index, 1);
      this.version += 1;
      return json(204, null, { ETag: `"${this.etag}"` });
    }
    const next = (method === 'PATCH' ? applyMergePatch(current, body as Json) : body) as InventoryEntry;
    const problems = this.validate(next);
    if (problems.length) return json(422, { detail: problems.map((p) => ({ ...p, loc: ['body', ...p.loc] })) });
    this.machines[index] = next;
    this.version += 1;
    return json(200, { machine: next, etag: this.etag }, { ETag: `"${this.etag}"` });
  };
}
