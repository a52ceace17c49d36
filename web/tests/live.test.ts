import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_RETRY_MS, retryDelayMs } from '../src/backoff';
import {
  type ConnectionState,
  DEFAULT_SILENCE_MS,
  type LiveDeps,
  LiveConnection,
  liveUrl,
  type SocketLike,
} from '../src/live';
import type { LiveMessage } from '../src/types';

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {}
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event('open'));
  }
  receive(data: unknown): void {
    this.onmessage?.(new MessageEvent('message', { data: typeof data === 'string' ? data : JSON.stringify(data) }));
  }
  fail(): void {
    this.onerror?.(new Event('error'));
    this.onclose?.(new CloseEvent('close', { code: 1006 }));
  }
}

const START = 1_000_000;

/** Fake sockets on vitest's fake clock and timers: the test decides when time passes. */
class Harness implements LiveDeps {
  sockets: FakeSocket[] = [];
  randomValue = 0.5;
  messages: LiveMessage[] = [];
  states: ConnectionState[] = [];
  createSocket = (url: string) => {
    const s = new FakeSocket(url);
    this.sockets.push(s);
    return s;
  };
  setTimer = (fn: () => void, ms: number) => setTimeout(fn, ms);
  clearTimer = (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>);
  now = () => Date.now();
  random = () => this.randomValue;
  get socket(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }
  get lastState(): ConnectionState | undefined {
    return this.states[this.states.length - 1];
  }
  /** Runs the one pending retry (no other timer may be due before it); returns its delay in ms. */
  fireRetry(): number {
    const state = this.lastState;
    if (state?.kind !== 'waiting') throw new Error(`no retry pending (state ${state?.kind})`);
    const delay = state.retryAt - Date.now();
    const sockets = this.sockets.length;
    vi.advanceTimersByTime(delay);
    if (this.sockets.length !== sockets + 1) throw new Error('the retry did not open a socket');
    return delay;
  }
  connection(): LiveConnection {
    return new LiveConnection(
      'ws://host/api/live',
      { onMessage: (m) => this.messages.push(m), onState: (s) => this.states.push(s) },
      this,
    );
  }
}

const SNAPSHOT = { type: 'snapshot', machines: [{ id: 'm1', status: 'up' }], time: 5 };

describe('retryDelayMs', () => {
  it('starts near 1 s and doubles up to 30 s', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 10].map((a) => retryDelayMs(a, 0.5));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('adds jitter within ±20 % and never exceeds 30 s', () => {
    expect(retryDelayMs(0, 0)).toBe(800);
    expect(retryDelayMs(0, 0.999)).toBeLessThanOrEqual(1200);
    expect(retryDelayMs(2, 0)).toBe(3200);
    expect(retryDelayMs(8, 0.999)).toBe(MAX_RETRY_MS);
  });
});

describe('liveUrl', () => {
  it('uses the page host and ws/wss by page protocol', () => {
    expect(liveUrl({ protocol: 'http:', host: 'central:8000' })).toBe('ws://central:8000/api/live');
    expect(liveUrl({ protocol: 'https:', host: 'millwatch.plant' })).toBe('wss://millwatch.plant/api/live');
  });
});

describe('LiveConnection', () => {
  let h: Harness;
  beforeEach(() => {
    vi.useFakeTimers({ now: START });
    h = new Harness();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes valid messages on and ignores garbage and pings', () => {
    const c = h.connection();
    c.start();
    expect(h.socket.url).toBe('ws://host/api/live');
    h.socket.open();
    h.socket.receive('not json');
    h.socket.receive({ type: 'pong' });
    h.socket.receive({ type: 'ping', time: 6 });
    h.socket.receive(SNAPSHOT);
    expect(h.messages).toHaveLength(1);
    expect(h.messages[0]?.type).toBe('snapshot');
    expect(h.states.map((s) => s.kind)).toEqual(['connecting', 'open']);
  });

  it('after a loss waits with growing delays and says when it retries', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    expect(h.lastState).toEqual({ kind: 'waiting', attempt: 0, retryAt: START + 1000 });
    expect(vi.getTimerCount()).toBe(1); // error and close of one failure give one retry, no watchdog
    expect(h.fireRetry()).toBe(1000);
    expect(h.sockets).toHaveLength(2);
    h.socket.fail();
    expect(h.fireRetry()).toBe(2000);
    h.socket.fail();
    expect(h.fireRetry()).toBe(4000);
    expect(h.sockets).toHaveLength(4);
    expect(h.sockets.slice(0, 3).every((s) => s.closed)).toBe(true);
  });

  it('starts the backoff over once a message arrives, not merely on open', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    h.fireRetry();
    h.socket.open();
    h.socket.fail(); // accepted then dropped at once: keep backing off
    expect(h.fireRetry()).toBe(2000);
    h.socket.open();
    h.socket.receive(SNAPSHOT);
    h.socket.fail();
    expect(h.fireRetry()).toBe(1000);
  });

  it('stops cleanly: closes the socket, cancels the retry and the watchdog, reports nothing more', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    c.stop();
    expect(vi.getTimerCount()).toBe(0);
    const statesBefore = h.states.length;
    vi.advanceTimersByTime(10 * DEFAULT_SILENCE_MS);
    expect(h.sockets).toHaveLength(1);
    expect(h.states).toHaveLength(statesBefore);
    c.start();
    const live = h.socket;
    live.open();
    live.receive(SNAPSHOT);
    c.stop();
    expect(live.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    live.receive(SNAPSHOT);
    vi.advanceTimersByTime(10 * DEFAULT_SILENCE_MS);
    expect(h.messages).toHaveLength(1);
    expect(h.sockets).toHaveLength(2);
    expect(h.states).toHaveLength(statesBefore + 2);
  });

  it('retries when the socket cannot even be created', () => {
    let first = true;
    const create = h.createSocket;
    h.createSocket = (url: string) => {
      if (first) {
        first = false;
        throw new SyntaxError('bad url');
      }
      return create(url);
    };
    const c = h.connection();
    c.start();
    expect(h.lastState?.kind).toBe('waiting');
    expect(vi.getTimerCount()).toBe(1); // the retry alone: no watchdog for a socket that never was
    h.fireRetry();
    expect(h.sockets).toHaveLength(1);
  });
});

describe('LiveConnection on a connection that dies silently', () => {
  let h: Harness;
  beforeEach(() => {
    vi.useFakeTimers({ now: START });
    h = new Harness();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Started, open, with the server's snapshot naming its ping interval (seconds). */
  function liveConnection(pingInterval: number | undefined): LiveConnection {
    const c = h.connection();
    c.start();
    h.socket.open();
    h.socket.receive(pingInterval === undefined ? SNAPSHOT : { ...SNAPSHOT, ping_interval: pingInterval });
    return c;
  }

  it('gives up after three ping intervals of silence and reconnects through the backoff', () => {
    liveConnection(10);
    const silent = h.socket;
    vi.advanceTimersByTime(29_999);
    expect(silent.closed).toBe(false);
    expect(h.lastState?.kind).toBe('open');
    vi.advanceTimersByTime(1);
    expect(silent.closed).toBe(true);
    // The snapshot had arrived: the backoff starts over, and the page says it is reconnecting.
    expect(h.lastState).toEqual({ kind: 'waiting', attempt: 0, retryAt: Date.now() + 1000 });
    expect(h.fireRetry()).toBe(1000);
    expect(h.lastState?.kind).toBe('connecting');
    // The old socket's late events change nothing.
    silent.receive(SNAPSHOT);
    silent.fail();
    expect(h.messages).toHaveLength(1);
    expect(h.sockets).toHaveLength(2);
  });

  it('takes every message as a sign of life, pings and unreadable ones included', () => {
    liveConnection(10);
    const socket = h.socket;
    for (const message of [{ type: 'ping', time: 7 }, 'garbage', { type: 'update', machines: [], removed: [] }]) {
      vi.advanceTimersByTime(25_000);
      socket.receive(message);
    }
    vi.advanceTimersByTime(29_999); // 104 s after the snapshot, under 30 s after the last message
    expect(socket.closed).toBe(false);
    expect(h.messages.map((m) => m.type)).toEqual(['snapshot', 'update']);
    vi.advanceTimersByTime(1);
    expect(socket.closed).toBe(true);
  });

  it('derives the silence limit from the ping interval the server names, and keeps it', () => {
    liveConnection(2);
    vi.advanceTimersByTime(5_999);
    expect(h.socket.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(h.socket.closed).toBe(true);
    h.fireRetry();
    // The next connection to the same server is held to the same limit before its snapshot.
    const next = h.socket;
    vi.advanceTimersByTime(5_999);
    expect(next.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(next.closed).toBe(true);
  });

  it('waits 30 s when the server names no ping interval, or a bad one', () => {
    for (const bad of [undefined, 0, -5, 'ten', null]) {
      const c = h.connection();
      c.start();
      h.socket.open();
      h.socket.receive({ ...SNAPSHOT, ping_interval: bad });
      vi.advanceTimersByTime(DEFAULT_SILENCE_MS - 1);
      expect(h.socket.closed).toBe(false);
      vi.advanceTimersByTime(1);
      expect(h.socket.closed).toBe(true);
      c.stop();
    }
  });

  it('gives up on a handshake that never completes', () => {
    const c = h.connection();
    c.start();
    const hanging = h.socket;
    vi.advanceTimersByTime(DEFAULT_SILENCE_MS);
    expect(hanging.closed).toBe(true);
    expect(h.lastState).toEqual({ kind: 'waiting', attempt: 0, retryAt: Date.now() + 1000 });
    h.fireRetry();
    // Still nothing heard from the server: the backoff keeps growing.
    vi.advanceTimersByTime(DEFAULT_SILENCE_MS);
    expect(h.lastState).toMatchObject({ kind: 'waiting', attempt: 1 });
    expect(h.fireRetry()).toBe(2000);
    c.stop();
  });
});
