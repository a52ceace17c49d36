import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_RETRY_MS, retryDelayMs } from '../src/backoff';
import { type ConnectionState, type LiveDeps, LiveConnection, liveUrl, type SocketLike } from '../src/live';
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

/** Manual clock and timers: the test decides when a retry fires. */
class Harness implements LiveDeps {
  sockets: FakeSocket[] = [];
  timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  clock = 1_000_000;
  randomValue = 0.5;
  messages: LiveMessage[] = [];
  states: ConnectionState[] = [];
  createSocket = (url: string) => {
    const s = new FakeSocket(url);
    this.sockets.push(s);
    return s;
  };
  setTimer = (fn: () => void, ms: number) => {
    const t = { fn, ms, cancelled: false };
    this.timers.push(t);
    return t;
  };
  clearTimer = (handle: unknown) => {
    (handle as { cancelled: boolean }).cancelled = true;
  };
  now = () => this.clock;
  random = () => this.randomValue;
  get socket(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }
  fireTimer(): number {
    const t = this.timers.shift();
    if (t === undefined) throw new Error('no timer pending');
    this.clock += t.ms;
    if (!t.cancelled) t.fn();
    return t.ms;
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
    h = new Harness();
  });

  it('passes valid messages on and ignores garbage', () => {
    const c = h.connection();
    c.start();
    expect(h.socket.url).toBe('ws://host/api/live');
    h.socket.open();
    h.socket.receive('not json');
    h.socket.receive({ type: 'pong' });
    h.socket.receive(SNAPSHOT);
    expect(h.messages).toHaveLength(1);
    expect(h.messages[0]?.type).toBe('snapshot');
    expect(h.states.map((s) => s.kind)).toEqual(['connecting', 'open']);
  });

  it('after a loss waits with growing delays and says when it retries', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    const waiting = h.states[h.states.length - 1];
    expect(waiting).toEqual({ kind: 'waiting', attempt: 0, retryAt: 1_000_000 + 1000 });
    expect(h.timers).toHaveLength(1); // error and close of one failure give one retry
    expect(h.fireTimer()).toBe(1000);
    expect(h.sockets).toHaveLength(2);
    h.socket.fail();
    expect(h.fireTimer()).toBe(2000);
    h.socket.fail();
    expect(h.fireTimer()).toBe(4000);
    expect(h.sockets).toHaveLength(4);
    expect(h.sockets.slice(0, 3).every((s) => s.closed)).toBe(true);
  });

  it('starts the backoff over once a message arrives, not merely on open', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    h.fireTimer();
    h.socket.open();
    h.socket.fail(); // accepted then dropped at once: keep backing off
    expect(h.fireTimer()).toBe(2000);
    h.socket.open();
    h.socket.receive(SNAPSHOT);
    h.socket.fail();
    expect(h.fireTimer()).toBe(1000);
  });

  it('stops cleanly: closes the socket, cancels the retry, reports nothing more', () => {
    const c = h.connection();
    c.start();
    h.socket.fail();
    c.stop();
    const statesBefore = h.states.length;
    h.fireTimer();
    expect(h.sockets).toHaveLength(1);
    expect(h.states).toHaveLength(statesBefore);
    c.start();
    const live = h.socket;
    c.stop();
    expect(live.closed).toBe(true);
    live.receive(SNAPSHOT);
    expect(h.messages).toHaveLength(0);
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
    expect(h.states[h.states.length - 1]?.kind).toBe('waiting');
    h.fireTimer();
    expect(h.sockets).toHaveLength(1);
  });
});
