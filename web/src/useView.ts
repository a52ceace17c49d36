import { useCallback, useEffect, useRef, useState } from 'react';
import { formatView, parseView, searchWithoutWall, type ViewState } from './viewState';

/** How a change goes into the browser's history: its own entry (Back undoes it) or in place. */
export type HistoryMode = 'push' | 'replace';

export interface ViewControl {
  view: ViewState;
  setView: (patch: Partial<ViewState>, mode?: HistoryMode) => void;
}

function urlWith(hash: string): string {
  return `${window.location.pathname}${window.location.search}${hash}`;
}

/**
 * The page's view (viewState.ts) kept in the URL: read at start, written on every change, and
 * read again when the operator goes back or forward or edits the address. Selecting, filtering
 * and switching wall mode push a history entry; typing in the search box replaces it.
 */
export function useView(): ViewControl {
  const [view, setState] = useState<ViewState>(() => parseView(window.location.hash, window.location.search));
  const current = useRef(view);
  current.current = view;

  useEffect(() => {
    // `?wall=1` of a start-up URL moves into the hash, so that leaving wall mode can drop it.
    const search = window.location.search;
    const cleaned = searchWithoutWall(search);
    if (cleaned !== search) {
      const hash = formatView(current.current, window.location.hash);
      window.history.replaceState(window.history.state, '', `${window.location.pathname}${cleaned}${hash}`);
    }
    const reread = () => {
      const next = parseView(window.location.hash, window.location.search);
      if (formatView(next) !== formatView(current.current)) setState(next);
    };
    window.addEventListener('popstate', reread);
    window.addEventListener('hashchange', reread);
    return () => {
      window.removeEventListener('popstate', reread);
      window.removeEventListener('hashchange', reread);
    };
  }, []);

  const setView = useCallback((patch: Partial<ViewState>, mode: HistoryMode = 'push') => {
    const next = { ...current.current, ...patch };
    const hash = formatView(next, window.location.hash);
    if (hash !== window.location.hash) {
      if (mode === 'push') window.history.pushState(null, '', urlWith(hash));
      else window.history.replaceState(window.history.state, '', urlWith(hash));
    }
    current.current = next;
    setState(next);
  }, []);

  return { view, setView };
}
