import { useEffect, useReducer, useRef, useState } from 'react';
import { applyLiveMessage, EMPTY_FLEET, type FleetData } from './fleet';
import { type ConnectionState, type LiveDeps, browserDeps, LiveConnection } from './live';
import type { LiveMessage } from './types';

/** The local clock in milliseconds, refreshed every `intervalMs` (for "12 s ago" texts). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const handle = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(handle);
  }, [intervalMs]);
  return now;
}

export interface LiveFleet {
  fleet: FleetData;
  connection: ConnectionState;
  /** True from the first lost connection until a new snapshot has replaced the data. */
  disconnected: boolean;
}

interface LiveState extends LiveFleet {}

type Action = { type: 'message'; message: LiveMessage; now: number } | { type: 'state'; state: ConnectionState };

function reducer(state: LiveState, action: Action): LiveState {
  if (action.type === 'message') {
    const fleet = applyLiveMessage(state.fleet, action.message, action.now);
    return { ...state, fleet, disconnected: action.message.type === 'snapshot' ? false : state.disconnected };
  }
  return {
    ...state,
    connection: action.state,
    disconnected: state.disconnected || action.state.kind === 'waiting',
  };
}

/**
 * The live fleet from the `/api/live` WebSocket at `url`, reconnecting for as long as it is mounted;
 * `onAuthRequired` is called (and reconnecting stops) when the server wants a login first.
 */
export function useLiveFleet(url: string, deps: LiveDeps = browserDeps, onAuthRequired?: () => void): LiveFleet {
  const authRequired = useRef(onAuthRequired);
  authRequired.current = onAuthRequired;
  const [state, dispatch] = useReducer(reducer, {
    fleet: EMPTY_FLEET,
    connection: { kind: 'connecting' },
    disconnected: false,
  });
  useEffect(() => {
    const connection = new LiveConnection(
      url,
      {
        onMessage: (message) => dispatch({ type: 'message', message, now: deps.now() / 1000 }),
        onState: (s) => dispatch({ type: 'state', state: s }),
        onAuthRequired: () => authRequired.current?.(),
      },
      deps,
    );
    connection.start();
    return () => connection.stop();
  }, [url, deps]);
  return state;
}
