import { act, cleanup, configure, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Account } from '../auth';
import { EMPTY_FLEET, type FleetData } from '../fleet';
import { InventoryApi } from './api';
import { EditorPanel } from './EditorPanel';
import { FakeInventoryServer } from './fakeInventoryServer';
import { usePageTools } from './PageTools';
import type { InventoryEntry } from './types';

const XSS = '<img src=x onerror=alert(1)>';
const PRESS: InventoryEntry = { id: 'press_14', name: 'Press 14', url: 'http://10.0.0.14:9817/metrics', site: 'Berlin' };
const EVIL: InventoryEntry = { id: 'evil', name: XSS, url: 'http://10.0.0.66:9817/metrics' };

afterEach(cleanup);
// A loaded 2-core CI host: conditions get seconds, never a fixed sleep.
configure({ asyncUtilTimeout: 5000 });

function renderEditor(machines: InventoryEntry[] = [PRESS, EVIL]) {
  const server = new FakeInventoryServer(machines);
  const api = new InventoryApi({ csrfToken: server.csrf, fetchFn: server.fetch });
  render(<EditorPanel api={api} fleet={EMPTY_FLEET} map={null} onClose={() => undefined} />);
  return server;
}

async function openMachine(name: RegExp) {
  fireEvent.click(await screen.findByRole('button', { name }));
  return screen.findByTestId('machine-form');
}

function field(label: string | RegExp): HTMLInputElement {
  return screen.getByLabelText(label) as HTMLInputElement;
}

describe('the inventory editor', { timeout: 30_000 }, () => {
  it('shows a machine named like markup as text, never as markup', async () => {
    renderEditor();
    const list = await screen.findByTestId('editor-list');
    await waitFor(() => expect(within(list).getByText(XSS)).toBeTruthy());
    expect(document.querySelector('img')).toBeNull();
    await openMachine(/Edit <img/);
    expect(field('Name').value).toBe(XSS);
    expect(document.querySelector('img')).toBeNull();
  });

  it("adds a machine; the server's 422 is shown beside the field it is about", async () => {
    const server = renderEditor();
    server.validate = (e) => (typeof e.url === 'string' && e.url.startsWith('http') ? [] : [{ loc: ['url'], msg: 'must start with http:// or https://' }]);
    // The button waits for the inventory (and its version) to be read.
    const add = await screen.findByRole('button', { name: 'Add machine' });
    await waitFor(() => expect((add as HTMLButtonElement).disabled).toBe(false));
    fireEvent.click(add);
    await screen.findByTestId('machine-form');
    fireEvent.change(field('Id'), { target: { value: 'lathe_2' } });
    fireEvent.change(field('URL'), { target: { value: 'ftp://10.0.0.2' } });
    fireEvent.change(field('Latitude'), { target: { value: '48.1' } });
    fireEvent.change(field('Longitude'), { target: { value: '11.5' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add label' }));
    fireEvent.change(screen.getAllByLabelText('Name')[1]!, { target: { value: 'line' } });
    fireEvent.change(screen.getByLabelText('Value'), { target: { value: 'turning' } });
    fireEvent.click(within(screen.getByTestId('machine-form')).getByRole('button', { name: 'Add machine' }));

    const error = await screen.findByTestId('mw-ed-url-error');
    expect(error.textContent).toBe('must start with http:// or https://');
    expect(field('URL').getAttribute('aria-invalid')).toBe('true');
    expect(field('URL').getAttribute('aria-describedby')).toContain('mw-ed-url-error');
    await waitFor(() => expect(document.activeElement).toBe(field('URL'))); // the focus goes to the refused field
    fireEvent.change(field('Site'), { target: { value: 'Munich' } });
    expect(document.activeElement).toBe(field('URL')); // and typing elsewhere does not pull it back
    expect(server.machines).toHaveLength(2);

    fireEvent.change(field('URL'), { target: { value: 'http://10.0.0.2:9817/metrics' } });
    fireEvent.click(within(screen.getByTestId('machine-form')).getByRole('button', { name: 'Add machine' }));
    expect((await screen.findByTestId('editor-status')).textContent).toBe('Added lathe_2.');
    expect(server.machines[2]).toEqual({
      id: 'lathe_2',
      url: 'http://10.0.0.2:9817/metrics',
      site: 'Munich',
      location: { lat: 48.1, lon: 11.5 },
      labels: { line: 'turning' },
    });
    const post = server.requests.filter((r) => r.method === 'POST').at(-1)!;
    expect(post.headers['If-Match']).toBe('"v1"');
  });

  it('explains a 412 with the other change beside mine, and re-applies mine on top of it', async () => {
    const server = renderEditor();
    await openMachine(/Edit Press 14/);
    fireEvent.change(field('Name'), { target: { value: 'Press 14 (mine)' } });
    server.changeBehindTheBack('press_14', { name: 'Press 14 (theirs)', site: 'Lyon' });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));

    const conflict = await screen.findByTestId('conflict');
    expect(conflict.textContent).toContain('Someone else changed this machine');
    const nameRow = within(conflict).getByTestId('conflict-name');
    expect(nameRow.textContent).toContain('≠');
    expect(nameRow.textContent).toContain('Press 14 (theirs)');
    expect(nameRow.textContent).toContain('Press 14 (mine)');
    expect(within(conflict).getByTestId('conflict-site').textContent).toContain('Lyon');
    expect(server.machines[0]!.name).toBe('Press 14 (theirs)');

    fireEvent.click(within(conflict).getByRole('button', { name: 'Reload and re-apply my changes' }));
    await screen.findByTestId('machine-form');
    expect(screen.getByTestId('editor-notice').textContent).toContain('check them and save again');
    expect(field('Name').value).toBe('Press 14 (mine)');
    expect(field('Site').value).toBe('Lyon');
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect((await screen.findByTestId('editor-status')).textContent).toBe('Saved press_14.');
    expect(server.machines[0]).toEqual({ ...PRESS, name: 'Press 14 (mine)', site: 'Lyon' });
  });

  it('"Discard mine" keeps the other change and closes the form', async () => {
    const server = renderEditor();
    await openMachine(/Edit Press 14/);
    fireEvent.change(field('Name'), { target: { value: 'Mine' } });
    server.changeBehindTheBack('press_14', { name: 'Theirs' });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    fireEvent.click(await screen.findByRole('button', { name: 'Discard mine' }));
    expect((await screen.findByTestId('editor-status')).textContent).toContain('discarded');
    expect(screen.queryByTestId('machine-form')).toBeNull();
    expect(server.machines[0]!.name).toBe('Theirs');
  });

  it('deletes only after confirmation, the safe choice focused', async () => {
    const server = renderEditor();
    await openMachine(/Edit Press 14/);
    fireEvent.click(screen.getByRole('button', { name: 'Delete…' }));
    const dialog = await screen.findByTestId('delete-confirm');
    expect(document.activeElement?.textContent).toBe('Keep it');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Keep it' }));
    expect(server.machines).toHaveLength(2);
    fireEvent.click(screen.getByRole('button', { name: 'Delete…' }));
    fireEvent.click(within(await screen.findByTestId('delete-confirm')).getByRole('button', { name: 'Delete' }));
    expect((await screen.findByTestId('editor-status')).textContent).toBe('Deleted press_14.');
    expect(server.machines.map((m) => m.id)).toEqual(['evil']);
    expect(server.requests.find((r) => r.method === 'DELETE')?.headers['If-Match']).toBe('"v1"');
  });

  it('disables and enables a machine from the list', async () => {
    const server = renderEditor();
    fireEvent.click(await screen.findByRole('button', { name: 'Disable Press 14' }));
    expect((await screen.findByTestId('editor-status')).textContent).toBe('Disabled press_14.');
    expect(server.machines[0]!.enabled).toBe(false);
    expect(server.requests.filter((r) => r.method === 'PATCH').at(-1)!.body).toEqual({ enabled: false });
    fireEvent.click(await screen.findByRole('button', { name: 'Enable Press 14' }));
    await waitFor(() => expect(server.machines[0]!.enabled).toBe(true));
  });
});

function Tools({ account, fleet }: { account: Account; fleet: FleetData }) {
  const tools = usePageTools({ account, fleet, map: null });
  return (
    <>
      <header>{tools.buttons}</header>
      <main>{tools.panels}</main>
    </>
  );
}

describe('who sees the editor', { timeout: 30_000 }, () => {
  it('a viewer has no editor button; an admin has one that opens the editor', async () => {
    const fetchCalls: string[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (input: RequestInfo | URL) => {
      fetchCalls.push(String(input));
      return new Response(JSON.stringify({ machines: [], sites: [], etag: 'v1' }), { headers: { ETag: '"v1"' } });
    }) as typeof fetch;
    try {
      const { rerender } = render(<Tools account={{ kind: 'session', name: 'vic', role: 'viewer', csrfToken: 'c' }} fleet={EMPTY_FLEET} />);
      expect(screen.queryByTestId('open-editor')).toBeNull();
      expect(screen.getByTestId('open-plans')).toBeTruthy();
      rerender(<Tools account={{ kind: 'anonymous' }} fleet={EMPTY_FLEET} />);
      expect(screen.queryByTestId('open-editor')).toBeNull();
      expect(fetchCalls.filter((c) => c.startsWith('/api/inventory'))).toEqual([]);

      rerender(<Tools account={{ kind: 'session', name: 'ada', role: 'admin', csrfToken: 'c' }} fleet={EMPTY_FLEET} />);
      await act(async () => fireEvent.click(screen.getByTestId('open-editor')));
      expect(await screen.findByTestId('editor')).toBeTruthy();
      await waitFor(() => expect(fetchCalls).toContain('/api/inventory/machines'));
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
