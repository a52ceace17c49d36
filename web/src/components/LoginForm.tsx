import { type FormEvent, useState } from 'react';
import { type Account, logIn, type LoginResult } from '../auth';

export interface LoginFormProps {
  onLoggedIn: (account: Account) => void;
  /** Shown above the form, e.g. why it appeared ("Your session has ended."). */
  notice?: string | null;
  /** Offered when the server lets anyone read: back to the map without logging in. */
  onCancel?: () => void;
  login?: (name: string, password: string) => Promise<LoginResult>;
}

/** Name and password for the server's login; says in words why a login failed. */
export function LoginForm({ onLoggedIn, notice = null, onCancel, login = logIn }: LoginFormProps) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    const result = await login(name.trim(), password);
    setBusy(false);
    if (result.ok) {
      setPassword('');
      onLoggedIn(result.account);
    } else {
      setError(result.message);
    }
  }

  return (
    <div className="mw-login-screen">
      <form className="mw-login" aria-labelledby="mw-login-title" onSubmit={(e) => void submit(e)} data-testid="login-form">
        <h1 id="mw-login-title" className="mw-brand">
          millwatch
        </h1>
        <p className="mw-login-intro">Log in to see the fleet.</p>
        {notice !== null && <p className="mw-login-notice">{notice}</p>}
        <label>
          Name
          <input name="username" autoComplete="username" value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error !== null && (
          <p className="mw-login-error" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <div className="mw-login-actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Logging in…' : 'Log in'}
          </button>
          {onCancel !== undefined && (
            <button type="button" className="mw-link-button" onClick={onCancel}>
              Back to the map
            </button>
          )}
        </div>
      </form>
    </div>
  );
}
