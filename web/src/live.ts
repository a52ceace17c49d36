import { retryDelayMs } from './backoff';
import { parseLiveMessage } from './fleet';
import type { LiveMessage } from './types';

/** Where the live connection stands. `retryAt` is a local epoch time in milliseconds. */
export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'open' }
  | { kind: 'waiting'; attempt: number; retryAt: number };

/** The part of the browser's WebSocket that the connection uses (a test hands in a fake). */
export interface SocketLike {
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  close(): void;
}

export interface LiveDeps {
  createSocket: (url: string) => SocketLike;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (handle: unknown) => void;
  now: () => number;
  random: () => number;
}

/**
 * Silence (no message at all) after which a connection counts as dead, until a snapshot names the
 * server's ping interval.
 */
export const DEFAULT_SILENCE_MS = 30_000;

/** Pings in a row that may go missing before a connection counts as dead. */
export const MISSED_PINGS = 3;

export interface LiveHandlers {
  onMessage: (message: LiveMessage) => void;
  onState: (state: ConnectionState) => void;
  /** The server refused the connection for want of a login (close code 4401): no retry follows. */
  onAuthRequired?: () => void;
}

/** The close code with which the server refuses a connection that has no valid login. */
export const CLOSE_AUTH_REQUIRED = 4401;

/** `ws://host/api/live` or `wss://…` for a page loaded over https, on the page's own host. */
export function liveUrl(location: { protocol: string; host: string }): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/live`;
}

export const browserDeps: LiveDeps = {
  createSocket: (url) => new WebSocket(url),
  setTimer: (fn, ms) => window.setTimeout(fn, ms),
  clearTimer: (handle) => window.clearTimeout(handle as number),
  now: () => Date.now(),
  random: () => Math.random(),
};

/**
 * Keeps one WebSocket to `/api/live` open: passes each valid message on, and after a close or
 * an error waits (1 s doubling to 30 s, with jitter) and reconnects. The backoff starts over
 * only once a message has arrived, so a server that accepts and drops at once is not hammered.
 *
 * A connection that dies silently (server powered off, network cut) fires no close event, so
 * silence counts as a loss too: the server pings every `ping_interval` seconds (named in its
 * snapshot), and when nothing at all arrives for `MISSED_PINGS` intervals (30 s before the
 * first snapshot) the socket is closed and retried like any other loss.
 */
export class LiveConnection {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private watchdog: unknown = null;
  private silenceMs = DEFAULT_SILENCE_MS;
  private attempt = 0;
  private stopped = true;

  constructor(
    private readonly url: string,
    private readonly handlers: LiveHandlers,
    private readonly deps: LiveDeps = browserDeps,
  ) {}

  /** Opens the connection (no-op when already started). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the socket and cancels any pending retry; no handler is called afterwards. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.deps.clearTimer(this.timer);
    this.timer = null;
    this.disarmWatchdog();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      detach(socket);
      socket.close();
    }
  }

  private connect(): void {
    this.timer = null;
    this.handlers.onState({ kind: 'connecting' });
    let socket: SocketLike;
    try {
      socket = this.deps.createSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    // A handshake that hangs (no answer from a powered-off host) is silence too.
    this.armWatchdog(socket);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.armWatchdog(socket);
      this.handlers.onState({ kind: 'open' });
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      const message = typeof ev.data === 'string' ? parseLiveMessage(ev.data) : null;
      if (message?.type === 'snapshot' && message.ping_interval !== undefined) {
        this.silenceMs = MISSED_PINGS * message.ping_interval * 1000;
      }
      // Any message, a ping or one this page cannot read, shows that the connection is alive.
      this.armWatchdog(socket);
      if (message === null) return;
      this.attempt = 0;
      this.handlers.onMessage(message);
    };
    // A failed connection fires error then close; both lead to the same single retry.
    const lost = () => this.lose(socket);
    socket.onclose = (ev) => {
      if (this.socket === socket && ev.code === CLOSE_AUTH_REQUIRED && this.handlers.onAuthRequired) {
        // Retrying cannot help: the page has to log in first.
        const onAuthRequired = this.handlers.onAuthRequired;
        this.stop();
        onAuthRequired();
        return;
      }
      lost();
    };
    socket.onerror = lost;
  }

  private lose(socket: SocketLike): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.disarmWatchdog();
    detach(socket);
    socket.close();
    this.scheduleRetry();
  }

  private armWatchdog(socket: SocketLike): void {
    this.disarmWatchdog();
    this.watchdog = this.deps.setTimer(() => {
      this.watchdog = null;
      this.lose(socket);
    }, this.silenceMs);
  }

  private disarmWatchdog(): void {
    if (this.watchdog !== null) this.deps.clearTimer(this.watchdog);
    this.watchdog = null;
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = retryDelayMs(this.attempt, this.deps.random());
    const retryAt = this.deps.now() + delay;
    this.handlers.onState({ kind: 'waiting', attempt: this.attempt, retryAt });
    this.attempt += 1;
    this.timer = this.deps.setTimer(() => this.connect(), delay);
  }
}

function detach(socket: SocketLike): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = null;
}
