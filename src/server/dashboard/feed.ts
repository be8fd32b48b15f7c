/**
 * The live feed over `/ws` (docs/websocket.md): on every (re)connect it sends
 * `updater.subscribe {after_seq}` with the newest seq it has seen, so the server replays what was
 * missed, then goes live. Transitions are deduplicated by seq (the server sends them in seq order);
 * transient progress is passed through. Reconnects with exponential back-off (0.5 s … 10 s).
 */
import type { ProgressBody, ResultBody, UpdateBatch } from '../../contract/shapes.js';
import { token } from './api.js';

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized';

export type Progress = ProgressBody;
export type Result = ResultBody;

export interface FeedHandlers {
  state(state: ConnState, retryInMs: number | null): void;
  /** The socket is open (first connect and every reconnect); the subscribe is sent when this settles. */
  opened(): Promise<void> | void;
  transition(p: Progress): void;
  transient(p: Progress): void;
  result(r: Result): void;
  /** An update of all components: a run of it started, or it ended. */
  batch(b: UpdateBatch): void;
}

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export class Feed {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: number | undefined;
  private lastSeq = 0;

  constructor(private readonly on: FeedHandlers) {
    addEventListener('online', () => this.reconnectNow());
    addEventListener('offline', () => {
      if (this.socket?.readyState !== WebSocket.OPEN) this.on.state('offline', null);
    });
  }

  /** The newest transition seq the page knows (from REST or the socket). */
  get seq(): number {
    return this.lastSeq;
  }

  /** Records a seq seen elsewhere (REST), so a reconnect does not replay it. */
  seen(seq: number): void {
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  connect(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const t = token.get();
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (t) url.searchParams.set('token', t);
    this.on.state(this.attempt === 0 ? 'connecting' : 'reconnecting', null);
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.on.state('connected', null);
      // Reload first (the page learns the newest seq), then replay from there: nothing missed, nothing twice.
      void Promise.resolve()
        .then(() => this.on.opened())
        .catch(() => undefined)
        .then(() => {
          if (this.socket === socket && socket.readyState === WebSocket.OPEN) {
            socket.send(JSON.stringify({ subject: 'updater.subscribe', body: { after_seq: this.lastSeq } }));
          }
        });
    };
    socket.onmessage = (e: MessageEvent) => this.receive(e.data);
    socket.onclose = (e: CloseEvent) => {
      if (this.socket !== socket) return; // replaced by a newer connection
      this.socket = null;
      if (e.code === 4401) return this.on.state('unauthorized', null);
      if (!opened) void this.refusedOrDown();
      else this.retry();
    };
  }

  /** Closes the current socket (if any) and connects again at once, e.g. after a new token. */
  reconnectNow(): void {
    const old = this.socket;
    this.socket = null;
    old?.close();
    this.attempt = 0;
    this.connect();
  }

  /**
   * A browser does not tell why an upgrade failed. Ask /ws over plain HTTP: 401 means the token is
   * missing or wrong (the upgrade's own check runs first); anything else, the service is down.
   */
  private async refusedOrDown(): Promise<void> {
    try {
      const t = token.get();
      const res = await fetch(t ? `/ws?token=${encodeURIComponent(t)}` : '/ws', { cache: 'no-store' });
      if (res.status === 401) return this.on.state('unauthorized', null);
    } catch {
      // unreachable: retry below
    }
    this.retry();
  }

  private retry(): void {
    const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.on.state(navigator.onLine === false ? 'offline' : 'reconnecting', delay);
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.connect(), delay);
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: { subject?: unknown; body?: unknown };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return;
    }
    const body = message.body;
    if (typeof body !== 'object' || body === null) return;
    switch (message.subject) {
      case 'updater_progress': {
        const p = body as Progress;
        if (p.transient) return this.on.transient(p);
        if (p.seq <= this.lastSeq) return; // already shown (replayed twice, or loaded over REST)
        this.lastSeq = p.seq;
        return this.on.transition(p);
      }
      case 'update_result':
        return this.on.result(body as Result);
      case 'update_batch':
        return this.on.batch(body as UpdateBatch);
      default:
        // `error` and replies to commands this page does not send: nothing to show.
        return;
    }
  }
}
