import { describe, expect, it, vi } from 'vitest';
import { earlyLiveDeps, UNCLAIMED_CLOSE_MS } from '../src/earlySocket';
import { type LiveDeps, LiveConnection, type SocketLike } from '../src/live';
import type { LiveMessage } from '../src/types';

/** The part of a browser WebSocket the early socket uses; the test fires its events. */
class WireSocket {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closed = false;
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event('open'));
  }
  message(data: object): void {
    this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(data) }));
  }
  end(code: number): void {
    this.onclose?.(new CloseEvent('close', { code }));
  }
}

const URL = 'ws://plant.example/api/live';
const SNAPSHOT = { type: 'snapshot', machines: [{ id: 'press_14', status: 'up' }], time: 1 };

function setup() {
  const wire = new WireSocket();
  const opened: SocketLike[] = [];
  const timers: Array<{ fn: () => void; ms: number; cleared: boolean }> = [];
  const base: LiveDeps = {
    createSocket: () => {
      const s = new WireSocket();
      opened.push(s);
      return s;
    },
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      (t as { cleared: boolean }).cleared = true;
    },
    now: () => 0,
    random: () => 0.5,
  };
  const deps = earlyLiveDeps(URL, base, () => wire as unknown as WebSocket);
  return { wire, opened, timers, deps };
}

async function connect(deps: LiveDeps, onAuthRequired?: () => void) {
  const messages: LiveMessage[] = [];
  const states: string[] = [];
  const connection = new LiveConnection(
    URL,
    { onMessage: (m) => messages.push(m), onState: (s) => states.push(s.kind), onAuthRequired },
    deps,
  );
  connection.start();
  await Promise.resolve(); // the replay runs in a microtask
  return { messages, states, connection };
}

describe('earlyLiveDeps', () => {
  it('hands the page the snapshot that arrived before the live connection started', async () => {
    const { wire, opened, deps } = setup();
    wire.open();
    wire.message(SNAPSHOT);
    const { messages, states } = await connect(deps);
    expect(opened).toHaveLength(0); // no second socket: the early one was claimed
    expect(states).toEqual(['connecting', 'open']);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.type).toBe('snapshot');
    expect(messages[0]!.machines.map((m) => m.id)).toEqual(['press_14']);
    // Later messages go straight through.
    wire.message({ type: 'update', machines: [{ id: 'press_15', status: 'warn' }], removed: [], time: 2 });
    expect(messages.map((m) => m.type)).toEqual(['snapshot', 'update']);
  });

  it('opens a new socket after a login when the early one was refused for want of it', async () => {
    const { wire, opened, deps } = setup();
    wire.open();
    wire.end(4401);
    const onAuthRequired = vi.fn();
    await connect(deps, onAuthRequired);
    expect(opened).toHaveLength(1);
    expect(onAuthRequired).not.toHaveBeenCalled();
  });

  it('is claimed once: a reconnect opens its own socket', async () => {
    const { wire, opened, deps } = setup();
    const first = await connect(deps);
    first.connection.stop();
    expect(wire.closed).toBe(true);
    await connect(deps);
    expect(opened).toHaveLength(1);
  });

  it('closes an early socket nobody claimed (the page shows a login or an error)', () => {
    const { wire, timers } = setup();
    const timer = timers.find((t) => t.ms === UNCLAIMED_CLOSE_MS)!;
    timer.fn();
    expect(wire.closed).toBe(true);
  });

  it('stops waiting to close it once it is claimed', async () => {
    const { timers, deps } = setup();
    await connect(deps);
    expect(timers.find((t) => t.ms === UNCLAIMED_CLOSE_MS)!.cleared).toBe(true);
  });
});
