/**
 * The loop of a transport that keeps its own connection (Web PubSub, NATS): one session after
 * another for as long as the transport is open, waiting between two from `firstMs`, doubling up to
 * `maxMs`; a session that held longer than `maxMs` starts the waits over from `firstMs`.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface SessionLoop {
  /** One connection, from connect until it has ended for good; never throws. */
  session(): Promise<void>;
  isClosed(): boolean;
  /** Aborted when the transport closes: cuts a wait short. */
  signal: AbortSignal;
  firstMs: number;
  maxMs: number;
  /** Told each wait before the next session. */
  waiting?(delayMs: number): void;
}

export async function sessionsForever(o: SessionLoop): Promise<void> {
  let delay = o.firstMs;
  while (!o.isClosed()) {
    const began = Date.now();
    await o.session();
    if (o.isClosed()) break;
    if (Date.now() - began > o.maxMs) delay = o.firstMs;
    o.waiting?.(delay);
    await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
    delay = Math.min(delay * 2, o.maxMs);
  }
}
