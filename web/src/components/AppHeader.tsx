import type { ReactNode } from 'react';
import type { Site } from '../wall';

export interface AppHeaderProps {
  /** "12 machines", or "Connecting…" before the first snapshot. */
  total: string;
  /** Who is signed in (Root's AccountMenu); hidden in wall mode. */
  account?: ReactNode;
  wall: boolean;
  onWall: (on: boolean) => void;
  onFullscreen: () => void;
  /** The site wall mode shows now, when it tours the sites. */
  tour: { site: Site; index: number; count: number } | null;
}

/** The top bar: brand, fleet size, wall-mode switch and the account. */
export function AppHeader({ total, account, wall, onWall, onFullscreen, tour }: AppHeaderProps) {
  return (
    <header className="mw-header">
      <h1 className="mw-brand">millwatch</h1>
      <p className="mw-header-total" data-testid="header-total">
        {total}
      </p>
      {tour !== null && (
        <p className="mw-header-site" data-testid="wall-site">
          Site: {tour.site.name} ({tour.index + 1}/{tour.count})
        </p>
      )}
      <div className="mw-header-actions">
        {wall && (
          <button type="button" onClick={onFullscreen} data-testid="wall-fullscreen">
            Full screen
          </button>
        )}
        <button type="button" aria-pressed={wall} onClick={() => onWall(!wall)} data-testid="wall-toggle">
          {wall ? 'Leave wall mode' : 'Wall mode'}
        </button>
      </div>
      {!wall && account}
    </header>
  );
}
