/** The page's side of the server's login (`/api/auth/*`, see docs/security.md). */

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

const browserFetch: FetchLike = (input, init) => fetch(input, init);

/** Who the page is signed in as. `csrfToken` goes with every unsafe request of a session. */
export type Account =
  | { kind: 'session'; name: string; role: 'viewer' | 'admin'; csrfToken: string }
  | { kind: 'anonymous' };

/** What `GET /api/auth/me` says: an account, "log in first", or the server is unreachable. */
export type MeResult = { kind: 'account'; account: Account } | { kind: 'login-required' } | { kind: 'error'; message: string };

function accountFrom(body: unknown): Account | null {
  if (typeof body !== 'object' || body === null) return null;
  const { kind, name, role, csrf_token: csrfToken } = body as Record<string, unknown>;
  if (kind === 'anonymous') return { kind: 'anonymous' };
  if (typeof name !== 'string' || (role !== 'viewer' && role !== 'admin')) return null;
  // A token's holder (not a page) has no CSRF token; the page itself always logs in by session.
  return { kind: 'session', name, role, csrfToken: typeof csrfToken === 'string' ? csrfToken : '' };
}

export async function fetchMe(fetchFn: FetchLike = browserFetch): Promise<MeResult> {
  try {
    const response = await fetchFn('/api/auth/me', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (response.status === 401) return { kind: 'login-required' };
    if (!response.ok) return { kind: 'error', message: `the server answered ${response.status}` };
    const account = accountFrom(await response.json());
    return account === null ? { kind: 'error', message: 'unexpected answer from the server' } : { kind: 'account', account };
  } catch {
    return { kind: 'error', message: 'the server cannot be reached' };
  }
}

/** The outcome of a login attempt, with the sentence the form shows when it failed. */
export type LoginResult = { ok: true; account: Account } | { ok: false; message: string };

export async function logIn(name: string, password: string, fetchFn: FetchLike = browserFetch): Promise<LoginResult> {
  let response: Response;
  try {
    response = await fetchFn('/api/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ name, password }),
    });
  } catch {
    return { ok: false, message: 'The server cannot be reached. Try again in a moment.' };
  }
  if (response.status === 401) return { ok: false, message: 'Wrong name or password.' };
  if (response.status === 429) {
    const wait = Number(response.headers.get('Retry-After'));
    const when = Number.isFinite(wait) && wait > 0 ? ` Try again in ${wait} s.` : ' Try again later.';
    return { ok: false, message: `Too many failed logins.${when}` };
  }
  if (response.status === 422) return { ok: false, message: 'Enter a name and a password.' };
  if (!response.ok) return { ok: false, message: `Login failed: the server answered ${response.status}.` };
  const account = accountFrom(await response.json().catch(() => null));
  return account === null ? { ok: false, message: 'Unexpected answer from the server.' } : { ok: true, account };
}

/** Ends the session on the server (its cookie with it). Resolves even when the server is gone. */
export async function logOut(account: Account, fetchFn: FetchLike = browserFetch): Promise<void> {
  if (account.kind !== 'session') return;
  try {
    await fetchFn('/api/auth/logout', {
      method: 'POST',
      headers: { 'X-CSRF-Token': account.csrfToken },
      credentials: 'same-origin',
    });
  } catch {
    // Nothing to do: the page forgets the account either way, and the session expires by itself.
  }
}
