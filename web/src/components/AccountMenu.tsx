import type { Account } from '../auth';

export interface AccountMenuProps {
  account: Account;
  onLogout: () => void;
  onLogin: () => void;
}

/** Who the page is signed in as, with Log out; or, when anyone may read, a Log in button. */
export function AccountMenu({ account, onLogout, onLogin }: AccountMenuProps) {
  if (account.kind === 'anonymous') {
    return (
      <div className="mw-account" data-testid="account">
        <span className="mw-account-who">Read-only view</span>
        <button type="button" onClick={onLogin}>
          Log in
        </button>
      </div>
    );
  }
  return (
    <div className="mw-account" data-testid="account">
      <span className="mw-account-who">
        Signed in as <strong>{account.name}</strong> ({account.role})
      </span>
      <button type="button" onClick={onLogout}>
        Log out
      </button>
    </div>
  );
}
