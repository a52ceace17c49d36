import { act } from '@testing-library/react';
import { DEFAULT_SILENCE_MS, type LiveDeps, type SocketLike } from '../src/live';

/** A WebSocket the test drives: `send` delivers a message as the server would. */
export class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closed = false;
  close(): void {
    this.closed = true;
  }
  send(message: object): void {
    act(() => {
      this.onopen?.(new Event('open'));
      this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(message) }));
    });
  }
  drop(): void {
    act(() => {
      this.onclose?.(new CloseEvent('close', { code: 1006 }));
    });
  }
}

/** Real timers, fake sockets; retries come fast (the backoff itself is tested in live.test.ts). */
export function liveDeps() {
  const sockets: FakeSocket[] = [];
  const deps: LiveDeps = {
    createSocket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    setTimer: (fn, ms) => window.setTimeout(fn, ms < DEFAULT_SILENCE_MS ? Math.min(ms, 20) : ms),
    clearTimer: (h) => window.clearTimeout(h as number),
    now: () => Date.now(),
    random: () => 0.5,
  };
  return { deps, sockets, last: () => sockets[sockets.length - 1]! };
}
