import { browserDeps, type LiveDeps, type SocketLike } from './live';

/** An early socket nobody took by then (the page shows a login or an error) is closed. */
export const UNCLAIMED_CLOSE_MS = 15_000;

type Queued =
  | { kind: 'open'; event: Event }
  | { kind: 'message'; event: MessageEvent }
  | { kind: 'error'; event: Event }
  | { kind: 'close'; event: CloseEvent };

/**
 * A WebSocket whose events are kept until someone claims it, then replayed in order to the
 * handlers set on it (a socket's events are lost when no handler is set when they fire).
 */
class HeldSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  private queued: Queued[] | null = [];
  closed = false;

  constructor(private readonly socket: WebSocket) {
    socket.onopen = (event) => this.deliver({ kind: 'open', event });
    socket.onmessage = (event) => this.deliver({ kind: 'message', event });
    socket.onerror = (event) => this.deliver({ kind: 'error', event });
    socket.onclose = (event) => {
      this.closed = true;
      this.deliver({ kind: 'close', event });
    };
  }

  /** From the next microtask on, events go to the handlers (set them right after claiming). */
  claim(): void {
    queueMicrotask(() => {
      const queued = this.queued ?? [];
      this.queued = null;
      for (const item of queued) this.dispatch(item);
    });
  }

  close(): void {
    this.socket.close();
  }

  private deliver(item: Queued): void {
    if (this.queued !== null) this.queued.push(item);
    else this.dispatch(item);
  }

  private dispatch(item: Queued): void {
    if (item.kind === 'open') this.onopen?.(item.event);
    else if (item.kind === 'message') this.onmessage?.(item.event);
    else if (item.kind === 'error') this.onerror?.(item.event);
    else this.onclose?.(item.event);
  }
}

/**
 * Live connection dependencies whose first socket for `url` is opened now, as the page's script
 * starts, instead of after the login check and the first render: with a large fleet the server
 * takes a few hundred milliseconds to send its snapshot, and that now overlaps the page's own
 * start. The first connection to `url` claims that socket unless it has already closed (say,
 * refused for want of a login: a new one is opened after the login); every later one opens its
 * own. Not claimed within `UNCLAIMED_CLOSE_MS`, it is closed.
 */
export function earlyLiveDeps(
  url: string,
  base: LiveDeps = browserDeps,
  open: (url: string) => WebSocket = (u) => new WebSocket(u),
): LiveDeps {
  let early: HeldSocket | null;
  try {
    early = new HeldSocket(open(url));
  } catch {
    early = null; // the connection proper will try again and report
  }
  const unclaimed = base.setTimer(() => {
    early?.close();
    early = null;
  }, UNCLAIMED_CLOSE_MS);
  return {
    ...base,
    createSocket: (wanted) => {
      const socket = early;
      early = null;
      base.clearTimer(unclaimed);
      if (socket === null || wanted !== url || socket.closed) {
        socket?.close();
        return base.createSocket(wanted);
      }
      socket.claim();
      return socket;
    },
  };
}
