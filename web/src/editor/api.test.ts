import { describe, expect, it } from 'vitest';
import { ifMatch, InventoryApi, outcomeOf, problemsOf, sortAudit } from './api';
import { FakeInventoryServer } from './fakeInventoryServer';

const PRESS = { id: 'press_14', name: 'Press 14', url: 'http://10.0.0.14:9817/metrics' };

function setup() {
  const server = new FakeInventoryServer([PRESS]);
  const api = new InventoryApi({ csrfToken: server.csrf, fetchFn: server.fetch });
  return { server, api };
}

describe('ETag and If-Match', () => {
  it('reads the version from the ETag header and sends it back quoted with the CSRF token', async () => {
    const { server, api } = setup();
    const { machines, etag } = await api.list();
    expect(machines.map((m) => m.id)).toEqual(['press_14']);
    expect(etag).toBe('"v1"');
    const result = await api.patch('press_14', { name: 'Press 14b' }, etag);
    expect(result).toMatchObject({ kind: 'ok', entry: { name: 'Press 14b' }, etag: '"v2"' });
    const write = server.requests.at(-1)!;
    expect(write.method).toBe('PATCH');
    expect(write.headers['If-Match']).toBe('"v1"');
    expect(write.headers['X-CSRF-Token']).toBe('csrf-token');
    expect(write.headers['Content-Type']).toBe('application/merge-patch+json');
    expect(write.body).toEqual({ name: 'Press 14b' });
  });

  it('quotes a bare ETag (as a body may carry it) and keeps a quoted or weak one', () => {
    expect(ifMatch('v1')).toBe('"v1"');
    expect(ifMatch('"v1"')).toBe('"v1"');
    expect(ifMatch('W/"v1"')).toBe('W/"v1"');
  });

  it('falls back to the body etag when no header is sent', async () => {
    const api = new InventoryApi({ fetchFn: async () => new Response(JSON.stringify({ machines: [], etag: 'abc' }), { status: 200 }) });
    expect((await api.list()).etag).toBe('abc');
  });

  it('a stale version is a conflict carrying the current entry and the new ETag', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    server.changeBehindTheBack('press_14', { site: 'Lyon' });
    const result = await api.patch('press_14', { name: 'Mine' }, etag);
    expect(result).toEqual({
      kind: 'conflict',
      detail: 'machines.yaml changed since you read it',
      etag: 'v2',
      current: { ...PRESS, site: 'Lyon' },
    });
    expect(server.machines[0]!.name).toBe('Press 14'); // nothing of the stale write landed
  });

  it('a deleted machine is a conflict whose current entry is null', async () => {
    const response = new Response(JSON.stringify({ detail: 'changed', etag: 'v9', current: null }), { status: 412 });
    expect(await outcomeOf(response)).toMatchObject({ kind: 'conflict', current: null, etag: 'v9' });
  });
});

describe('refusals', () => {
  it('maps 422 field paths, dropping the leading "body"', async () => {
    const { server, api } = setup();
    server.validate = () => [{ loc: ['location', 'lat'], msg: 'Input should be less than or equal to 90' }];
    const { etag } = await api.list();
    const result = await api.create({ id: 'new_one', location: { lat: 100, lon: 0 } }, etag);
    expect(result).toEqual({ kind: 'invalid', problems: [{ loc: ['location', 'lat'], msg: 'Input should be less than or equal to 90' }] });
  });

  it('a 422 with a sentence, or with no usable body, is still one problem', () => {
    expect(problemsOf({ detail: 'row 3: url: not a URL' })).toEqual([{ loc: [], msg: 'row 3: url: not a URL' }]);
    expect(problemsOf(null)).toEqual([{ loc: [], msg: 'the server refused the entry' }]);
  });

  it('409 duplicate, 428 missing If-Match, 403 viewer and a network failure are refusals with a sentence', async () => {
    const { server, api } = setup();
    const { etag } = await api.list();
    expect(await api.create({ id: 'press_14' }, etag)).toMatchObject({ kind: 'refused', status: 409, detail: 'a machine with id press_14 exists' });
    expect(await outcomeOf(new Response('{}', { status: 428 }))).toMatchObject({ kind: 'refused', status: 428, detail: expect.stringContaining('If-Match') });
    server.role = 'viewer';
    expect(await api.remove('press_14', etag)).toMatchObject({ kind: 'refused', status: 403 });
    await expect(api.list()).rejects.toThrow('admin role required');
    const offline = new InventoryApi({ fetchFn: () => Promise.reject(new TypeError('Failed to fetch')) });
    expect(await offline.remove('press_14', etag)).toMatchObject({ kind: 'refused', status: 0, detail: expect.stringContaining('cannot be reached') });
  });

  it('a write without CSRF token is refused by the server, not sent blind', async () => {
    const { server } = setup();
    const api = new InventoryApi({ fetchFn: server.fetch });
    const { etag } = await api.list();
    expect(await api.remove('press_14', etag)).toMatchObject({ kind: 'refused', status: 403 });
    expect(server.machines).toHaveLength(1);
  });
});

describe('import and audit', () => {
  it('sends the file with its content type and If-Match', async () => {
    const calls: { path: string; init: RequestInit }[] = [];
    const api = new InventoryApi({
      csrfToken: 't',
      fetchFn: async (path, init = {}) => {
        calls.push({ path, init });
        return new Response(JSON.stringify({ detail: [{ loc: [3, 'url'], msg: 'not a URL' }] }), { status: 422 });
      },
    });
    const result = await api.importFile('id,url\nx,nope\n', 'csv', 'v4');
    expect(calls[0]!.path).toBe('/api/inventory/import');
    expect(calls[0]!.init.headers).toMatchObject({ 'Content-Type': 'text/csv', 'If-Match': '"v4"', 'X-CSRF-Token': 't' });
    expect(result).toEqual({ kind: 'invalid', problems: [{ loc: [3, 'url'], msg: 'not a URL' }] });
  });

  it('audit rows come newest first whatever the server order, times in seconds or ISO', async () => {
    const api = new InventoryApi({
      fetchFn: async () =>
        new Response(
          JSON.stringify({
            audit: [
              { time: 1764136800, actor: 'ada', action: 'add', target: 'a', diff: '+ id: a' },
              { time: '2025-11-26T05:00:00Z', actor: 'bob', action: 'update', target: 'b', diff: { name: ['x', 'y'] } },
              { time: 1764136900, actor: 'ada', action: 'delete', target: 'c', diff: '- id: c' },
            ],
          }),
        ),
    });
    const rows = await api.audit();
    expect(rows.map((r) => r.target)).toEqual(['c', 'a', 'b']);
    expect(rows[2]!.diff).toContain('"name"');
    expect(sortAudit([{ time: Number.NaN, actor: '', action: '', target: 'z', diff: '' }, rows[0]!]).map((r) => r.target)).toEqual(['c', 'z']);
  });

  it("reads the server's audit entries (diff in `detail`, the machine in `machine`) and pages back", async () => {
    const paths: string[] = [];
    const api = new InventoryApi({
      fetchFn: async (path) => {
        paths.push(path);
        return new Response(
          JSON.stringify({
            audit: [
              { id: 'inventory:2', source: 'inventory', time: 1764136900.5, actor: 'ada', action: 'machine.update', target: 'machines.yaml', machine: 'press_14', detail: '-name: A\n+name: B' },
            ],
            next_before: 1764136900.5,
          }),
        );
      },
    });
    const page = await api.auditPage(1);
    expect(page.rows).toEqual([{ time: 1764136900500, actor: 'ada', action: 'machine.update', target: 'press_14', diff: '-name: A\n+name: B' }]);
    expect(page.nextBefore).toBe(1764136900.5);
    await api.auditPage(1, page.nextBefore);
    expect(paths).toEqual(['/api/audit?limit=1', '/api/audit?limit=1&before=1764136900.5']);
  });
});
