/**
 * The inventory API (docs/editor.md): reads give an ETag, every write sends it back in
 * `If-Match`, so that two admins (or an admin and someone editing machines.yaml on disk) never
 * overwrite each other. Each answer is turned into one `WriteOutcome` the editor can show.
 */
import type { FieldProblem, InventoryEntry, Json, JsonObject } from './types';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

const browserFetch: FetchLike = (input, init) => fetch(input, init);

export const MACHINES_PATH = '/api/inventory/machines';

/** The inventory as read: its entries and the version (ETag) they belong to. */
export interface InventorySnapshot {
  machines: InventoryEntry[];
  etag: string;
}

/** What a write came to, in the terms the editor shows it. */
export type WriteOutcome =
  /** Done. `entry` is the machine as now in the file (null after a delete); `etag` the file's new version when the server said. */
  | { kind: 'ok'; entry: InventoryEntry | null; etag: string | null }
  /** 412: someone changed the file since it was read. `current` is the machine as it is now (null: not there). */
  | { kind: 'conflict'; detail: string; etag: string | null; current: InventoryEntry | null }
  /** 422: the entry (or import) is not valid; each problem with its field path. */
  | { kind: 'invalid'; problems: FieldProblem[] }
  /** Anything else refused (409 duplicate id, 403, 404, 428, 5xx, network): one sentence. */
  | { kind: 'refused'; status: number; detail: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** An ETag as `If-Match` wants it: quoted (the body may carry it bare, the header quoted). */
export function ifMatch(etag: string): string {
  const trimmed = etag.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) return trimmed;
  return `"${trimmed}"`;
}

/** The version of an answer: its ETag header, else the `etag` of its body. */
function etagOf(response: Response, body: unknown): string | null {
  const header = response.headers.get('ETag');
  if (header) return header;
  if (isRecord(body) && typeof body.etag === 'string' && body.etag !== '') return body.etag;
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asEntry(value: unknown): InventoryEntry | null {
  return isRecord(value) && typeof value.id === 'string' ? (value as InventoryEntry) : null;
}

async function bodyOf(response: Response): Promise<unknown> {
  if (response.status === 204) return null;
  try {
    return (await response.json()) as unknown;
  } catch {
    return null;
  }
}

/** FastAPI's `{"detail": [{"loc": [...], "msg": ...}]}`, with a leading "body" dropped. */
export function problemsOf(body: unknown): FieldProblem[] {
  const detail = isRecord(body) ? body.detail : undefined;
  if (typeof detail === 'string') return [{ loc: [], msg: detail }];
  if (!Array.isArray(detail)) return [{ loc: [], msg: 'the server refused the entry' }];
  const out: FieldProblem[] = [];
  for (const item of detail) {
    if (!isRecord(item)) continue;
    const rawLoc = Array.isArray(item.loc) ? item.loc : [];
    const loc = rawLoc.filter((p): p is string | number => typeof p === 'string' || typeof p === 'number');
    if (loc[0] === 'body') loc.shift();
    const problem: FieldProblem = { loc, msg: typeof item.msg === 'string' ? item.msg : String(item.msg ?? 'invalid') };
    if (typeof item.row === 'number') problem.row = item.row;
    if (typeof item.line === 'number') problem.line = item.line;
    out.push(problem);
  }
  return out.length > 0 ? out : [{ loc: [], msg: 'the server refused the entry' }];
}

function detailText(body: unknown, status: number): string {
  if (isRecord(body) && typeof body.detail === 'string') return body.detail;
  return `the server answered ${status}`;
}

const REFUSALS: Record<number, string> = {
  401: 'Your session has ended: log in again.',
  403: 'Only an admin may change the inventory.',
  428: 'The server wants the version you edited (If-Match): reload the inventory.',
};

/** Turns a write's answer into a `WriteOutcome`. */
export async function outcomeOf(response: Response): Promise<WriteOutcome> {
  const body = await bodyOf(response);
  if (response.ok) {
    const entry = isRecord(body) ? asEntry(body.machine) : null;
    return { kind: 'ok', entry, etag: etagOf(response, body) };
  }
  if (response.status === 412) {
    const current = isRecord(body) ? asEntry(body.current) : null;
    return {
      kind: 'conflict',
      detail: detailText(body, 412),
      etag: isRecord(body) && typeof body.etag === 'string' ? body.etag : response.headers.get('ETag'),
      current,
    };
  }
  if (response.status === 422) return { kind: 'invalid', problems: problemsOf(body) };
  const known = REFUSALS[response.status];
  const detail = isRecord(body) && typeof body.detail === 'string' ? body.detail : known;
  return { kind: 'refused', status: response.status, detail: detail ?? `the server answered ${response.status}` };
}

export interface InventoryApiOptions {
  /** The session's CSRF token (Account.csrfToken): the server refuses a session's write without it. */
  csrfToken?: string;
  fetchFn?: FetchLike;
}

/** The admin API of the inventory, audit and site plans, with the session's CSRF token. */
export class InventoryApi {
  private readonly fetchFn: FetchLike;
  private readonly csrfToken: string;

  constructor({ csrfToken = '', fetchFn = browserFetch }: InventoryApiOptions = {}) {
    this.fetchFn = fetchFn;
    this.csrfToken = csrfToken;
  }

  /** The whole inventory and its ETag. Throws `ApiError` with the server's words. */
  async list(): Promise<InventorySnapshot> {
    const response = await this.get(MACHINES_PATH);
    const body = await bodyOf(response);
    if (!response.ok) throw new ApiError(response.status, detailText(body, response.status));
    const machines = isRecord(body) && Array.isArray(body.machines) ? body.machines : [];
    const etag = etagOf(response, body);
    if (etag === null) throw new ApiError(response.status, 'the server sent no ETag with the inventory');
    return { machines: machines.map(asEntry).filter((m): m is InventoryEntry => m !== null), etag };
  }

  create(entry: InventoryEntry, etag: string): Promise<WriteOutcome> {
    return this.write('POST', MACHINES_PATH, etag, entry);
  }

  replace(id: string, entry: InventoryEntry, etag: string): Promise<WriteOutcome> {
    return this.write('PUT', machinePath(id), etag, entry);
  }

  /** Sends only what changed (`buildMergePatch`), as `application/merge-patch+json`. */
  patch(id: string, patch: JsonObject, etag: string): Promise<WriteOutcome> {
    return this.write('PATCH', machinePath(id), etag, patch, 'application/merge-patch+json');
  }

  remove(id: string, etag: string): Promise<WriteOutcome> {
    return this.write('DELETE', machinePath(id), etag);
  }

  /** Adds or replaces machines from a YAML or CSV file's text. */
  importFile(text: string, format: 'yaml' | 'csv', etag: string): Promise<WriteOutcome> {
    return this.send('POST', '/api/inventory/import', etag, text, format === 'csv' ? 'text/csv' : 'application/yaml');
  }

  /** The newest audit rows (who changed what, when). Throws `ApiError`. */
  async audit(limit = 200): Promise<AuditRow[]> {
    return (await this.auditPage(limit)).rows;
  }

  /** One page of the audit, newest first; `nextBefore` asks for the older page (null: no more). */
  async auditPage(limit = 200, before: number | null = null): Promise<AuditPage> {
    const query = before === null ? `limit=${limit}` : `limit=${limit}&before=${before}`;
    const response = await this.get(`/api/audit?${query}`);
    const body = await bodyOf(response);
    if (!response.ok) throw new ApiError(response.status, detailText(body, response.status));
    const rows = isRecord(body) && Array.isArray(body.audit) ? body.audit : [];
    const next = isRecord(body) && typeof body.next_before === 'number' ? body.next_before : null;
    return { rows: sortAudit(rows.map(auditRow).filter((r): r is AuditRow => r !== null)), nextBefore: next };
  }

  private get(path: string): Promise<Response> {
    return this.fetchFn(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  }

  private write(method: string, path: string, etag: string, body?: Json, type = 'application/json'): Promise<WriteOutcome> {
    return this.send(method, path, etag, body === undefined ? undefined : JSON.stringify(body), type);
  }

  private async send(method: string, path: string, etag: string, body: string | undefined, type: string): Promise<WriteOutcome> {
    const headers: Record<string, string> = { Accept: 'application/json', 'If-Match': ifMatch(etag) };
    if (body !== undefined) headers['Content-Type'] = type;
    if (this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    let response: Response;
    try {
      response = await this.fetchFn(path, { method, headers, credentials: 'same-origin', body });
    } catch {
      return { kind: 'refused', status: 0, detail: 'The server cannot be reached. Try again in a moment.' };
    }
    return outcomeOf(response);
  }
}

export function machinePath(id: string): string {
  return `${MACHINES_PATH}/${encodeURIComponent(id)}`;
}

/** One audit row: who did what to which machine, and the diff (secrets masked by the server). */
export interface AuditRow {
  /** Unix milliseconds (the server may send seconds or an ISO time). */
  time: number;
  actor: string;
  action: string;
  target: string;
  diff: string;
}

export interface AuditPage {
  rows: AuditRow[];
  nextBefore: number | null;
}

function auditRow(value: unknown): AuditRow | null {
  if (!isRecord(value)) return null;
  const time = timeOf(value.time);
  const text = (v: unknown) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v, null, 2));
  // The server names the change `detail` (a unified diff) and the machine `machine`; `diff` and
  // `target` are the older names.
  const target = typeof value.machine === 'string' && value.machine !== '' ? value.machine : text(value.target);
  const diff = text(value.detail ?? value.diff);
  return { time, actor: text(value.actor), action: text(value.action), target, diff };
}

function timeOf(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1e11 ? value * 1000 : value;
  if (typeof value === 'string') {
    const parsed = Date.parse(value);
    if (Number.isFinite(parsed)) return parsed;
  }
  return Number.NaN;
}

/** Newest first, whatever order the server sent. */
export function sortAudit(rows: AuditRow[]): AuditRow[] {
  const key = (row: AuditRow) => (Number.isNaN(row.time) ? -Infinity : row.time);
  return [...rows].sort((a, b) => (key(a) === key(b) ? 0 : key(a) < key(b) ? 1 : -1));
}
