import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Account, fetchMe, logIn, logOut } from '../src/auth';
import { AccountMenu } from '../src/components/AccountMenu';
import { LoginForm } from '../src/components/LoginForm';
import { LiveConnection } from '../src/live';
import { Root } from '../src/Root';
import { waitUntil } from './helpers';
import { liveDeps } from './liveFake';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function answer(status: number, body: unknown = {}, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

const ADA: Account = { kind: 'session', name: 'ada', role: 'admin', csrfToken: 'c'.repeat(64) };

describe('the login API calls', () => {
  it('reads who the page is, or that a login is needed', async () => {
    expect(await fetchMe(async () => answer(401, { detail: 'authentication required' }))).toEqual({ kind: 'login-required' });
    expect(await fetchMe(async () => answer(200, { name: null, role: 'viewer', kind: 'anonymous' }))).toEqual({
      kind: 'account',
      account: { kind: 'anonymous' },
    });
    expect(await fetchMe(async () => answer(200, { name: 'ada', role: 'admin', kind: 'session', csrf_token: 'tok' }))).toEqual({
      kind: 'account',
      account: { kind: 'session', name: 'ada', role: 'admin', csrfToken: 'tok' },
    });
    expect(await fetchMe(async () => Promise.reject(new TypeError('offline')))).toEqual({
      kind: 'error',
      message: 'the server cannot be reached',
    });
  });

  it('posts the login as JSON and explains each refusal', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const ok = await logIn('ada', 'pw', async (url, init) => {
      calls.push([url, init]);
      return answer(200, { name: 'ada', role: 'admin', kind: 'session', csrf_token: 'tok' });
    });
    expect(ok).toEqual({ ok: true, account: { kind: 'session', name: 'ada', role: 'admin', csrfToken: 'tok' } });
    expect(calls[0]![0]).toBe('/api/auth/login');
    expect(calls[0]![1]!.method).toBe('POST');
    expect(JSON.parse(calls[0]![1]!.body as string)).toEqual({ name: 'ada', password: 'pw' });
    expect(await logIn('ada', 'x', async () => answer(401))).toEqual({ ok: false, message: 'Wrong name or password.' });
    expect(await logIn('ada', 'x', async () => answer(429, {}, { 'Retry-After': '42' }))).toEqual({
      ok: false,
      message: 'Too many failed logins. Try again in 42 s.',
    });
  });

  it('logs out with the CSRF token of the session', async () => {
    const seen: RequestInit[] = [];
    await logOut(ADA, async (_url, init) => {
      seen.push(init!);
      return new Response(null, { status: 204 });
    });
    expect(seen).toHaveLength(1);
    expect((seen[0]!.headers as Record<string, string>)['X-CSRF-Token']).toBe(ADA.kind === 'session' ? ADA.csrfToken : '');
    await logOut({ kind: 'anonymous' }, async () => {
      throw new Error('no request expected');
    });
  });
});

describe('the login form', () => {
  it('sends the name and password and hands the account on', async () => {
    const login = vi.fn(async () => ({ ok: true as const, account: ADA }));
    const onLoggedIn = vi.fn();
    render(<LoginForm onLoggedIn={onLoggedIn} login={login} />);
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: ' ada ' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'secret-pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await waitUntil(() => onLoggedIn.mock.calls.length === 1, 10_000, 'the login to finish');
    expect(login).toHaveBeenCalledWith('ada', 'secret-pw');
    expect(onLoggedIn).toHaveBeenCalledWith(ADA);
  });

  it('shows why a login failed and keeps the form', async () => {
    const login = async () => ({ ok: false as const, message: 'Wrong name or password.' });
    render(<LoginForm onLoggedIn={() => {}} login={login} notice="Your session has ended: log in again." />);
    expect(screen.getByText('Your session has ended: log in again.')).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'ada' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'nope' } });
    fireEvent.submit(screen.getByTestId('login-form'));
    await waitUntil(() => screen.queryByTestId('login-error') !== null, 10_000, 'the error');
    expect(screen.getByTestId('login-error').textContent).toBe('Wrong name or password.');
    expect((screen.getByLabelText('Password') as HTMLInputElement).type).toBe('password');
  });
});

describe('the account menu', () => {
  it('names the user and logs out', () => {
    const onLogout = vi.fn();
    render(<AccountMenu account={ADA} onLogout={onLogout} onLogin={() => {}} />);
    expect(screen.getByTestId('account').textContent).toContain('Signed in as ada (admin)');
    fireEvent.click(screen.getByRole('button', { name: 'Log out' }));
    expect(onLogout).toHaveBeenCalledOnce();
  });

  it('offers a login on a read-only page', () => {
    const onLogin = vi.fn();
    render(<AccountMenu account={{ kind: 'anonymous' }} onLogout={() => {}} onLogin={onLogin} />);
    expect(screen.getByTestId('account').textContent).toContain('Read-only view');
    fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    expect(onLogin).toHaveBeenCalledOnce();
  });
});

describe('the live connection refused for want of a login', () => {
  it('stops retrying and asks for a login on close code 4401', async () => {
    const { deps, sockets } = liveDeps();
    const onAuthRequired = vi.fn();
    const connection = new LiveConnection('ws://test/api/live', { onMessage: () => {}, onState: () => {}, onAuthRequired }, deps);
    connection.start();
    sockets[0]!.onclose?.(new CloseEvent('close', { code: 4401 }));
    expect(onAuthRequired).toHaveBeenCalledOnce();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sockets).toHaveLength(1); // no reconnect
  });
});

describe('the page root', () => {
  it('shows the login form on 401, then the map and who is signed in', async () => {
    const { deps } = liveDeps();
    vi.stubGlobal('fetch', async () => new Response('Not Found', { status: 404 }));
    let loggedIn = false;
    const me = async () => (loggedIn ? { kind: 'account' as const, account: ADA } : { kind: 'login-required' as const });
    render(<Root url="ws://test/api/live" deps={deps} me={me} />);
    await waitUntil(() => screen.queryByTestId('login-form') !== null, 10_000, 'the login form');
    expect(document.querySelector('.leaflet-container')).toBeNull();

    vi.stubGlobal('fetch', async (url: string) =>
      url === '/api/auth/login'
        ? answer(200, { name: 'ada', role: 'admin', kind: 'session', csrf_token: 'tok' })
        : new Response('Not Found', { status: 404 }),
    );
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'ada' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw-of-ada' } });
    loggedIn = true;
    fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await waitUntil(() => screen.queryByTestId('account') !== null, 10_000, 'the map with the account');
    expect(screen.getByTestId('account').textContent).toContain('Signed in as ada (admin)');
    expect(screen.queryByTestId('login-form')).toBeNull();

    const logout = vi.fn(async () => {
      loggedIn = false;
    });
    cleanup();
    render(<Root url="ws://test/api/live" deps={deps} me={me} logout={logout} />);
    await waitUntil(() => screen.queryByTestId('account') !== null, 10_000, 'the map');
    fireEvent.click(screen.getByRole('button', { name: 'Log out' }));
    await waitUntil(() => screen.queryByTestId('login-form') !== null, 10_000, 'the login form after logout');
    expect(logout).toHaveBeenCalledOnce();
  });
});
