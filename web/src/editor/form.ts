/**
 * The edit form's state and its two-way mapping to an inventory entry. The form holds text as
 * typed; turning it back into an entry keeps every key the form has no field for, leaves absent
 * what was absent and still is at its default, and sends numbers as numbers. What is wrong with
 * a value is for the server to say (its 422, shown beside the field): one validator, the
 * server's, which is also `millwatch check`.
 */
import { isObject } from './mergePatch';
import type { FieldProblem, InventoryEntry, Json, JsonObject } from './types';

export interface LabelRow {
  key: string;
  value: string;
}

export interface ThresholdRow {
  metric: string;
  warn: string;
  alarm: string;
}

export type AuthKind = 'none' | 'bearer_token_file' | 'bearer_token_env' | 'basic';

export interface AuthForm {
  kind: AuthKind;
  /** The file path or variable name for the bearer kinds. */
  reference: string;
  username: string;
  passwordKind: 'password_file' | 'password_env';
  password: string;
}

export interface MachineForm {
  id: string;
  name: string;
  mode: 'pull' | 'push';
  url: string;
  site: string;
  lat: string;
  lon: string;
  enabled: boolean;
  scrapeInterval: string;
  scrapeTimeout: string;
  labels: LabelRow[];
  thresholds: ThresholdRow[];
  planX: string;
  planY: string;
  auth: AuthForm;
}

export const EMPTY_AUTH: AuthForm = { kind: 'none', reference: '', username: '', passwordKind: 'password_file', password: '' };

export function emptyForm(): MachineForm {
  return {
    id: '',
    name: '',
    mode: 'pull',
    url: '',
    site: '',
    lat: '',
    lon: '',
    enabled: true,
    scrapeInterval: '',
    scrapeTimeout: '',
    labels: [],
    thresholds: [],
    planX: '',
    planY: '',
    auth: { ...EMPTY_AUTH },
  };
}

function text(value: Json | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function authForm(value: Json | undefined): AuthForm {
  if (!isObject(value)) return { ...EMPTY_AUTH };
  for (const kind of ['bearer_token_file', 'bearer_token_env'] as const) {
    if (kind in value) return { ...EMPTY_AUTH, kind, reference: text(value[kind]) };
  }
  const basic = value.basic;
  if (isObject(basic)) {
    const passwordKind = 'password_env' in basic ? 'password_env' : 'password_file';
    return { kind: 'basic', reference: '', username: text(basic.username), passwordKind, password: text(basic[passwordKind]) };
  }
  return { ...EMPTY_AUTH };
}

export function formFromEntry(entry: InventoryEntry): MachineForm {
  const location = isObject(entry.location) ? entry.location : {};
  const plan = isObject(entry.plan_position) ? entry.plan_position : {};
  const labels = isObject(entry.labels) ? entry.labels : {};
  const thresholds = isObject(entry.thresholds) ? entry.thresholds : {};
  return {
    id: entry.id,
    name: text(entry.name),
    mode: entry.mode === 'push' ? 'push' : 'pull',
    url: text(entry.url),
    site: text(entry.site),
    lat: text(location.lat),
    lon: text(location.lon),
    enabled: entry.enabled !== false,
    scrapeInterval: text(entry.scrape_interval),
    scrapeTimeout: text(entry.scrape_timeout),
    labels: Object.entries(labels).map(([key, value]) => ({ key, value: text(value) })),
    thresholds: Object.entries(thresholds).map(([metric, limits]) => ({
      metric,
      warn: isObject(limits) ? text(limits.warn) : '',
      alarm: isObject(limits) ? text(limits.alarm) : '',
    })),
    planX: text(plan.x),
    planY: text(plan.y),
    auth: authForm(entry.auth),
  };
}

/** A number when the text is one; otherwise the text itself, for the server to refuse with its place. */
export function numberOrText(value: string): number | string {
  const trimmed = value.trim();
  if (trimmed === '') return trimmed;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : trimmed;
}

/** A duration as written: a bare number of seconds stays a number ("15" → 15), "15s" stays text. */
function duration(value: string): number | string {
  const trimmed = value.trim();
  return /^[0-9]+(\.[0-9]+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function pair(a: string, b: string, keys: [string, string]): JsonObject | null {
  if (a.trim() === '' && b.trim() === '') return null;
  const out: JsonObject = {};
  if (a.trim() !== '') out[keys[0]] = numberOrText(a);
  if (b.trim() !== '') out[keys[1]] = numberOrText(b);
  return out;
}

function sameAuth(a: AuthForm, b: AuthForm): boolean {
  return (Object.keys(a) as (keyof AuthForm)[]).every((k) => a[k] === b[k]);
}

function authEntry(form: AuthForm): JsonObject | null {
  if (form.kind === 'none') return null;
  if (form.kind === 'basic') {
    const basic: JsonObject = { username: form.username.trim() };
    basic[form.passwordKind] = form.password.trim();
    return { basic };
  }
  return { [form.kind]: form.reference.trim() };
}

/**
 * The entry the form describes, on top of `base` (the entry as read; `{}` for a new machine):
 * keys without a field are kept, a cleared field removes its key, and a key absent from `base`
 * whose field still holds its default (enabled, pull mode, no labels) stays absent.
 */
export function entryFromForm(form: MachineForm, base: JsonObject = {}): InventoryEntry {
  const out: JsonObject = { ...base };
  const set = (key: string, value: Json | null, isDefault = false) => {
    if (value === null || value === '' || (isDefault && !(key in base))) delete out[key];
    else out[key] = value;
  };
  set('id', form.id.trim());
  set('name', form.name.trim());
  set('mode', form.mode, form.mode === 'pull');
  set('url', form.mode === 'push' ? null : form.url.trim());
  set('site', form.site.trim());
  set('location', pair(form.lat, form.lon, ['lat', 'lon']));
  set('enabled', form.enabled, form.enabled);
  set('scrape_interval', form.mode === 'push' ? null : duration(form.scrapeInterval));
  set('scrape_timeout', form.mode === 'push' ? null : duration(form.scrapeTimeout));
  const labels: JsonObject = {};
  for (const row of form.labels) if (row.key.trim() !== '' || row.value !== '') labels[row.key.trim()] = row.value;
  set('labels', labels, Object.keys(labels).length === 0);
  const thresholds: JsonObject = {};
  for (const row of form.thresholds) {
    if (row.metric.trim() === '' && row.warn.trim() === '' && row.alarm.trim() === '') continue;
    thresholds[row.metric.trim()] = pair(row.warn, row.alarm, ['warn', 'alarm']) ?? {};
  }
  set('thresholds', thresholds, Object.keys(thresholds).length === 0);
  set('plan_position', pair(form.planX, form.planY, ['x', 'y']));
  const auth = authEntry(form.auth);
  // An unchanged auth keeps its masked "***" values as read: the patch then leaves it alone.
  set('auth', auth !== null && isObject(base.auth) && sameAuth(authForm(base.auth), form.auth) ? base.auth : auth);
  return { ...out, id: form.id.trim() } as InventoryEntry;
}

// --- the server's 422, next to the fields ---------------------------------------------------------

/** A form field a problem can be shown beside. Rows are named by their index in the form. */
export type FieldKey =
  | 'id'
  | 'name'
  | 'mode'
  | 'url'
  | 'site'
  | 'lat'
  | 'lon'
  | 'location'
  | 'enabled'
  | 'scrapeInterval'
  | 'scrapeTimeout'
  | 'labels'
  | `label.${number}.key`
  | `label.${number}.value`
  | 'thresholds'
  | `threshold.${number}.metric`
  | `threshold.${number}.warn`
  | `threshold.${number}.alarm`
  | 'planX'
  | 'planY'
  | 'plan'
  | 'auth'
  | 'general';

const TOP_LEVEL: Record<string, FieldKey> = {
  id: 'id',
  name: 'name',
  mode: 'mode',
  url: 'url',
  site: 'site',
  enabled: 'enabled',
  scrape_interval: 'scrapeInterval',
  scrape_timeout: 'scrapeTimeout',
  auth: 'auth',
};

/** The field a problem's `loc` (a path within the entry) belongs to; `general` when none fits. */
export function fieldOf(loc: FieldProblem['loc'], form: MachineForm): FieldKey {
  const [head, second, third] = loc;
  if (typeof head !== 'string') return 'general';
  if (head in TOP_LEVEL) return TOP_LEVEL[head]!;
  if (head === 'location') return second === 'lat' ? 'lat' : second === 'lon' ? 'lon' : 'location';
  if (head === 'plan_position') return second === 'x' ? 'planX' : second === 'y' ? 'planY' : 'plan';
  if (head === 'labels') {
    const row = form.labels.findIndex((r) => r.key.trim() === String(second));
    return row < 0 ? 'labels' : `label.${row}.key`;
  }
  if (head === 'thresholds') {
    const row = form.thresholds.findIndex((r) => r.metric.trim() === String(second));
    if (row < 0) return 'thresholds';
    return third === 'warn' ? `threshold.${row}.warn` : third === 'alarm' ? `threshold.${row}.alarm` : `threshold.${row}.metric`;
  }
  return 'general';
}

/** "row 3, labels.hall: message" style text for a problem shown away from its field. */
export function problemText(problem: FieldProblem): string {
  const path = problem.loc.map(String).join('.');
  const place = [
    problem.row !== undefined ? `row ${problem.row}` : null,
    problem.line !== undefined && problem.row === undefined ? `machines.yaml line ${problem.line}` : null,
    path || null,
  ].filter((p): p is string => p !== null);
  return place.length === 0 ? problem.msg : `${place.join(', ')}: ${problem.msg}`;
}

/** The server's problems grouped by the field they are shown beside. */
export function fieldErrors(problems: FieldProblem[], form: MachineForm): Map<FieldKey, string[]> {
  const out = new Map<FieldKey, string[]>();
  for (const problem of problems) {
    const key = fieldOf(problem.loc, form);
    // Away from its field, a message names the path it is about.
    const message = key === 'general' ? problemText(problem) : problem.msg;
    out.set(key, [...(out.get(key) ?? []), message]);
  }
  return out;
}
