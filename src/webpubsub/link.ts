/**
 * The device's connection to an Azure Web PubSub hub, through the client library the frontend
 * itself uses (`@azure/web-pubsub-client`), made to hold for ever:
 * - the library does not retry a failed first `start()` (a hub that is down, a 401 at the
 *   upgrade): this loop does, with a delay doubling from 1 s up to 30 s, for ever, and it starts
 *   a new client whenever one stops for good;
 * - on every new connection (`connected`; a resumed one does not emit it) the group is joined
 *   again; only once that is acknowledged is the link `connected`;
 * - the library never times out a missing ack: every join and send here has a time limit;
 * - nothing secret reaches a log line: the URL (with its token) is never logged, and every error
 *   text of the library passes through `redact`.
 * Outbound: the connection is made from the device; no port is opened on it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { WebPubSubClient, WebPubSubJsonReliableProtocol, type JSONTypes } from '@azure/web-pubsub-client';
import { redact } from './token.js';
import { sessionsForever } from '../util/sessions.js';

export type LinkStatus = 'connected' | 'disconnected';

export interface LinkOptions {
  /** A fresh client access URL for each new connection (a signed token, or the configured URL). */
  clientUrl: () => Promise<string>;
  group: string;
  /** Each message of the group that is JSON data (another client's; the hub does not echo ours). */
  onMessage: (data: unknown) => void;
  onStatus?: (status: LinkStatus) => void;
  logger: Logger;
  /** Limit on a join's or a send's acknowledgement (default 10 s). */
  ackTimeoutMs?: number;
  /** Limit on a connection attempt (default 30 s). */
  connectTimeoutMs?: number;
  /** First retry delay (default 1 s); it doubles up to `maxRetryDelayMs` (default 30 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Messages that may wait for the connection (default 500), and for how long (default 60 s). */
  maxQueue?: number;
  maxQueueAgeMs?: number;
  /** The library's keep-alive (tests shorten it); default the library's. */
  keepAliveIntervalMs?: number;
  keepAliveTimeoutMs?: number;
}

/** Messages sent to the hub whose acks may be awaited at once. */
const SEND_WINDOW = 16;

const message = (error: unknown): string => redact(error instanceof Error ? error.message : String(error));

export class HubLink {
  private client: WebPubSubClient | null = null;
  private current: LinkStatus = 'disconnected';
  private closed = false;
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  /** Resolves the wait of the current client: it stopped for good (or the link closes). */
  private clientEnded: (() => void) | null = null;
  private lastFailure = '';
  private connections = 0;
  private readonly queue: Array<{ data: JSONTypes; at: number; seq: number }> = [];
  private nextSeq = 0;
  private pumping = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** A send found the connection away; the pump waits a little before it tries again. */
  private away = false;
  /** The current client has joined the group (a resumed connection keeps it). */
  private joinedOnce = false;

  constructor(private readonly o: LinkOptions) {}

  get status(): LinkStatus {
    return this.current;
  }

  /** How many times a new connection was made and the group joined (tests, health). */
  get connectionsMade(): number {
    return this.connections;
  }

  /** Starts connecting, in the background, for ever (until close). */
  start(): void {
    this.loop ??= this.run().catch((error: unknown) => this.o.logger.error({ err_message: message(error) }, `Web PubSub link stopped: ${message(error)}`));
  }

  /**
   * Sends one JSON message to the group (`noEcho`: not back to us), in order after those before
   * it, up to 16 awaiting their acks at once. Each waits for the hub's ack at most `ackTimeoutMs`;
   * one that is refused or not acked is dropped (logged). While the connection is away (the library resuming it, or a new one being
   * made) messages wait, and are sent once it is back, unless they are older than `maxQueueAgeMs`
   * (default 60 s) or more than `maxQueue` (default 500) wait: the oldest go first.
   */
  send(data: JSONTypes): void {
    if (this.closed) return;
    this.queue.push({ data, at: Date.now(), seq: this.nextSeq++ });
    const max = this.o.maxQueue ?? 500;
    if (this.queue.length > max) {
      this.queue.splice(0, this.queue.length - max);
      this.o.logger.warn(`Web PubSub: more than ${max} messages waiting for the hub; the oldest were dropped`);
    }
    void this.pump();
  }

  /** Resolves once every message sent so far has been acked or dropped (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.pumping && !this.closed) await sleep(20);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const pause = () => sleep(250, undefined, { signal: this.stop.signal }).catch(() => undefined);
    try {
      while (!this.closed && (this.queue.length > 0 || this.inFlight.size > 0)) {
        const head = this.queue[0];
        if (head && Date.now() - head.at > (this.o.maxQueueAgeMs ?? 60_000)) {
          this.queue.shift();
          this.o.logger.debug('Web PubSub: a message waited too long for the hub and was dropped');
          continue;
        }
        const client = this.client;
        if (!client || this.away || !head || this.inFlight.size >= SEND_WINDOW) {
          if (this.inFlight.size > 0) await Promise.race(this.inFlight);
          else if (!client || this.away) {
            await pause();
            this.away = false; // try again: a send fails at once while the connection is still away
          }
          continue;
        }
        // Sent without waiting for the ack of the one before: frames leave in the order of these
        // calls, and up to SEND_WINDOW await their acks at once (one round trip to the hub for a
        // burst, not one each).
        const item = this.queue.shift()!;
        const sent: Promise<void> = client
          .sendToGroup(this.o.group, item.data, 'json', { noEcho: true, abortSignal: AbortSignal.any([AbortSignal.timeout(this.o.ackTimeoutMs ?? 10_000), this.stop.signal]) })
          .then(
            () => {
              if (this.joinedOnce) this.setStatus('connected');
            },
            (error: unknown) => {
              if (this.closed) return;
              const why = message(error);
              // Refused by the hub (its ack carries an error) or not acked in time (it may have
              // arrived): dropped. Anything else is the connection going away under the send
              // ("not connected", "disconnected before…", the socket closing): kept and sent again.
              const refused = typeof error === 'object' && error !== null && (error as { errorDetail?: unknown }).errorDetail !== undefined;
              const timedOut = error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
              if (!refused && !timedOut) {
                // Away (resuming, or a new connection being made): kept, back in its place.
                this.away = true;
                this.setStatus('disconnected');
                this.queue.push(item);
                this.queue.sort((a, b) => a.seq - b.seq);
                return;
              }
              this.o.logger.debug(`Web PubSub: a message to the group was not acknowledged: ${why}`);
            },
          )
          .finally(() => this.inFlight.delete(sent));
        this.inFlight.add(sent);
      }
    } finally {
      this.pumping = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.clientEnded?.();
    this.setStatus('disconnected');
    await this.loop;
  }

  private setStatus(status: LinkStatus): void {
    if (this.current === status) return;
    this.current = status;
    this.o.onStatus?.(status);
  }

  private run(): Promise<void> {
    return sessionsForever({
      session: () => this.session(),
      isClosed: () => this.closed,
      signal: this.stop.signal,
      firstMs: this.o.retryDelayMs ?? 1000,
      maxMs: this.o.maxRetryDelayMs ?? 30_000,
      waiting: (delay) => this.o.logger.debug(`Web PubSub: connecting again in ${delay} ms`),
    });
  }

  /** One client, from its start until it stops for good; the library reconnects it meanwhile. */
  private async session(): Promise<void> {
    const client = new WebPubSubClient(
      { getClientAccessUrl: () => this.o.clientUrl() },
      {
        protocol: WebPubSubJsonReliableProtocol(),
        autoReconnect: true,
        // The group is joined here on each `connected`, with a time limit.
        autoRejoinGroups: false,
        // A refused send is not retried (the library would retry even a Forbidden ack).
        messageRetryOptions: { maxRetries: 0 },
        reconnectRetryOptions: { mode: 'Exponential', retryDelayInMs: this.o.retryDelayMs ?? 1000, maxRetryDelayInMs: this.o.maxRetryDelayMs ?? 30_000, maxRetries: Number.MAX_SAFE_INTEGER },
        ...(this.o.keepAliveIntervalMs ? { keepAliveIntervalInMs: this.o.keepAliveIntervalMs } : {}),
        ...(this.o.keepAliveTimeoutMs ? { keepAliveTimeoutInMs: this.o.keepAliveTimeoutMs } : {}),
      },
    );
    this.client = client;
    this.joinedOnce = false;
    const ended = new Promise<void>((resolve) => (this.clientEnded = resolve));
    client.on('connected', (e) => {
      void this.joined(client, e.connectionId);
    });
    client.on('disconnected', (e) => {
      this.setStatus('disconnected');
      const why = e.message?.message ? `: ${redact(e.message.message)}` : '';
      this.o.logger.info(`Web PubSub: disconnected${why}; the client library reconnects`);
    });
    client.on('stopped', () => this.clientEnded?.());
    client.on('group-message', (e) => {
      if (e.message.group !== this.o.group || e.message.dataType !== 'json') return;
      this.o.onMessage(e.message.data);
    });
    try {
      await client.start({ abortSignal: AbortSignal.any([AbortSignal.timeout(this.o.connectTimeoutMs ?? 30_000), this.stop.signal]) });
      await ended;
    } catch (error) {
      const why = message(error);
      // One line per new reason: a hub that stays down does not fill the log.
      if (why !== this.lastFailure) this.o.logger.warn(`Web PubSub: cannot connect: ${why}`);
      this.lastFailure = why;
    } finally {
      this.setStatus('disconnected');
      this.client = null;
      this.clientEnded = null;
      try {
        client.stop();
      } catch {
        // already stopped
      }
    }
  }

  private async joined(client: WebPubSubClient, connectionId: string): Promise<void> {
    try {
      await client.joinGroup(this.o.group, { abortSignal: AbortSignal.any([AbortSignal.timeout(this.o.ackTimeoutMs ?? 10_000), this.stop.signal]) });
    } catch (error) {
      if (this.closed || client !== this.client) return;
      this.o.logger.warn(`Web PubSub: cannot join the group ${this.o.group}: ${message(error)}; connecting again`);
      // A connection that is not in the group is of no use: start over with a new client.
      this.clientEnded?.();
      return;
    }
    if (this.closed || client !== this.client) return;
    this.connections++;
    this.joinedOnce = true;
    this.lastFailure = '';
    this.o.logger.info({ group: this.o.group, connection_id: connectionId }, `Web PubSub: connected, in the group ${this.o.group}`);
    this.setStatus('connected');
    void this.pump();
  }
}
