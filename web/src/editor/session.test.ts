import { describe, expect, it } from 'vitest';
import { InventoryApi } from './api';
import { FakeInventoryServer } from './fakeInventoryServer';
import { conflictRows, reapply, saveEdit } from './session';
import type { InventoryEntry } from './types';

const PRESS: InventoryEntry = { id: 'press_14', name: 'Press 14', url: 'http://10.0.0.14:9817/metrics', labels: { line: 'a' } };
const LATHE: InventoryEntry = { id: 'lathe_2', name: 'Lathe 2', url: 'http://10.0.0.2:9817/metrics' };

function setup() {
  const server = new FakeInventoryServer([PRESS, LATHE]);
  return { server, api: new InventoryApi({ csrfToken: server.csrf, fetchFn: server.fetch }) };
}

describe('saveEdit', () => {
  it('sends nothing when nothing changed', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    expect(await saveEdit(api, { base: PRESS, edited: { ...PRESS }, etag })).toEqual({ kind: 'unchanged' });
    expect(server.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('creates a new machine with POST and edits one with a merge patch of the change only', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    const created = await saveEdit(api, { base: null, edited: { id: 'new_1', url: 'http://x:1/metrics' }, etag });
    expect(created).toMatchObject({ kind: 'ok', retried: false });
    const after = await api.list();
    await saveEdit(api, { base: PRESS, edited: { ...PRESS, labels: { line: 'b' } }, etag: after.etag });
    expect(server.requests.at(-1)).toMatchObject({ method: 'PATCH', body: { labels: { line: 'b' } } });
    expect(server.machines.find((m) => m.id === 'press_14')!.labels).toEqual({ line: 'b' });
  });

  it('a change elsewhere in the file is no conflict: the edit is sent again on the new version', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    server.changeBehindTheBack('lathe_2', { site: 'Lyon' });
    const result = await saveEdit(api, { base: PRESS, edited: { ...PRESS, name: 'Press 14b' }, etag });
    expect(result).toMatchObject({ kind: 'ok', retried: true });
    expect(server.machines.map((m) => m.name)).toEqual(['Press 14b', 'Lathe 2']);
    expect(server.machines[1]!.site).toBe('Lyon'); // the other admin's change stays
    const writes = server.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['If-Match']);
    expect(writes).toEqual(['"v1"', '"v2"']);
  });

  it('a change to the same machine is a conflict shown to the admin, nothing overwritten', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    server.changeBehindTheBack('press_14', { name: 'Theirs' });
    const result = await saveEdit(api, { base: PRESS, edited: { ...PRESS, name: 'Mine' }, etag });
    expect(result).toMatchObject({ kind: 'conflict', retried: false, current: { name: 'Theirs' } });
    expect(server.machines[0]!.name).toBe('Theirs');
  });

  it('a new machine whose id someone else added meanwhile is a conflict, not a silent retry', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    server.machines.push({ id: 'new_1', name: 'Theirs' });
    server.version += 1;
    const result = await saveEdit(api, { base: null, edited: { id: 'new_1', name: 'Mine' }, etag });
    expect(result).toMatchObject({ kind: 'conflict', current: { id: 'new_1', name: 'Theirs' } });
  });
});

describe('reapply', () => {
  it('lays my changes over theirs: both survive, mine win on the keys I changed', () => {
    const theirs = { ...PRESS, name: 'Theirs', site: 'Lyon' };
    const mine = { ...PRESS, name: 'Mine', labels: { line: 'a', hall: '3' } };
    const next = reapply({ base: PRESS, edited: mine, etag: 'v1' }, theirs, 'v2');
    expect(next).toEqual({ base: theirs, edited: { ...PRESS, name: 'Mine', site: 'Lyon', labels: { line: 'a', hall: '3' } }, etag: 'v2' });
  });

  it('a machine deleted meanwhile becomes a new machine with my version', () => {
    const mine = { ...PRESS, name: 'Mine' };
    expect(reapply({ base: PRESS, edited: mine, etag: 'v1' }, null, 'v2')).toEqual({ base: null, edited: mine, etag: 'v2' });
  });
});

describe('conflictRows', () => {
  it('lists every field of both sides and marks those that differ', () => {
    const rows = conflictRows({ ...PRESS, site: 'Lyon' }, { ...PRESS, name: 'Mine' });
    expect(rows.filter((r) => r.differs).map((r) => r.field)).toEqual(['name', 'site']);
    expect(rows.find((r) => r.field === 'site')).toEqual({ field: 'site', theirs: 'Lyon', mine: '(not set)', differs: true });
    expect(conflictRows(null, PRESS).every((r) => r.differs && r.theirs === '(deleted)')).toBe(true);
  });
});
