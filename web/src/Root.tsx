import { useCallback, useEffect, useState } from 'react';
import { App, type AppProps } from './App';
import { type Account, fetchMe, logOut, type MeResult } from './auth';
import { AccountMenu } from './components/AccountMenu';
import { LoginForm } from './components/LoginForm';

type Screen =
  | { kind: 'checking' }
  | { kind: 'error'; message: string }
  | { kind: 'login'; notice: string | null; anonymousAllowed: boolean }
  | { kind: 'map'; account: Account };

export interface RootProps extends AppProps {
  me?: () => Promise<MeResult>;
  logout?: (account: Account) => Promise<void>;
}

/**
 * Asks the server who the page is (`/api/auth/me`): the login form when it answers 401, the map
 * otherwise. The map goes back to the login form when the live connection is refused for want
 * of a login (a session that ended while the page was open).
 */
export function Root({ me = fetchMe, logout = logOut, ...appProps }: RootProps) {
  const [screen, setScreen] = useState<Screen>({ kind: 'checking' });

  const check = useCallback(
    async (notice: string | null) => {
      const result = await me();
      if (result.kind === 'account') setScreen({ kind: 'map', account: result.account });
      else if (result.kind === 'login-required') setScreen({ kind: 'login', notice, anonymousAllowed: false });
      else setScreen({ kind: 'error', message: result.message });
    },
    [me],
  );

  useEffect(() => {
    void check(null);
  }, [check]);

  const authRequired = useCallback(() => void check('Your session has ended: log in again.'), [check]);

  if (screen.kind === 'checking') return <p className="mw-login-screen">Loading…</p>;
  if (screen.kind === 'error') {
    return (
      <div className="mw-login-screen" role="alert">
        <p>
          millwatch: {screen.message}.{' '}
          <button type="button" onClick={() => void check(null)}>
            Retry
          </button>
        </p>
      </div>
    );
  }
  if (screen.kind === 'login') {
    return (
      <LoginForm
        notice={screen.notice}
        onLoggedIn={(account) => setScreen({ kind: 'map', account })}
        onCancel={screen.anonymousAllowed ? () => void check(null) : undefined}
      />
    );
  }
  const account = screen.account;
  return (
    <App
      {...appProps}
      onAuthRequired={authRequired}
      session={account}
      account={
        <AccountMenu
          account={account}
          onLogin={() => setScreen({ kind: 'login', notice: null, anonymousAllowed: true })}
          onLogout={() => {
            void logout(account).then(() => check(null));
          }}
        />
      }
    />
  );
}
