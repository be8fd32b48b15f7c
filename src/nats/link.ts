/**
 * The device's connection to the NATS bus, through nats.js, made to hold for ever:
 * - the first connection waits for a server (`waitOnFirstConnect`) and a lost one is reconnected
 *   without limit (`maxReconnectAttempts: -1`), by the library; should a connect still fail (a
 *   credentials file that cannot be read, the library giving up on repeated authorization errors),
 *   this loop starts a new one, with a delay doubling from 1 s up to 30 s, for ever;
 * - `onConnected` is told on every connection and every reconnection (the transport then writes
 *   the device's record again); the status is what /healthz shows;
 * - nothing secret reaches a log line: the options are never logged, a server URL's `user:pass@`
 *   is redacted, and every error text of the library passes through `redact`.
 * Outbound: the connection is made from the device; no port is opened on it.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { connect, credsAuthenticator, Events, type ConnectionOptions, type NatsConnection } from 'nats';
import type { NatsConfig } from '../config/index.js';
import { sessionsForever } from '../util/sessions.js';

export type LinkStatus = 'connected' | 'disconnected';

export interface NatsLinkOptions {
  config: NatsConfig;
  logger: Logger;
  /** Each new connection, and the same connection back after a reconnect. */
  onConnected?: (nc: NatsConnection, reconnected: boolean) => void;
  onStatus?: (status: LinkStatus) => void;
  /** The library's wait between attempts on one server (default 2 s; tests shorten it). */
  reconnectWaitMs?: number;
  /** The library's ping, which notices a dead server (default 2 min; tests shorten it). */
  pingIntervalMs?: number;
  /** First delay of this loop's own retries (default 1 s), doubling up to `maxRetryDelayMs` (default 30 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/** `nats://user:pass@host` → `nats://[redacted]@host`; the configured password and token → `[redacted]`. */
export function redactor(config: Pick<NatsConfig, 'password' | 'token'>): (text: string) => string {
  const secrets = [config.password, config.token].filter((s): s is string => typeof s === 'string' && s.length > 0);
  return (text) => {
    let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1[redacted]@');
    for (const s of secrets) out = out.split(s).join('[redacted]');
    return out;
  };
}

/** The client's options: servers, reconnect for ever, and one way to authenticate. */
function clientOptions(config: NatsConfig, o: NatsLinkOptions & { onWaiting?: () => void }, stopped: () => boolean): ConnectionOptions {
  const wait = o.reconnectWaitMs ?? 2000;
  let attempts = 0;
  const options: ConnectionOptions = {
    servers: config.servers,
    name: `dune-updater ${config.device}`,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: wait,
    // Asked before each attempt, the first connection's included: the only way to stop a
    // connect that is still waiting for a server (connect() returns no handle until then).
    reconnectDelayHandler: () => {
      if (stopped()) throw new Error('the NATS transport is closing');
      if (++attempts === 2) o.onWaiting?.();
      return wait + Math.floor(Math.random() * Math.min(wait, 1000));
    },
    // The same authorization error twice in a row ends the connect (or the connection) with that
    // error: the loop below logs why and starts over, with its own backoff.
    ...(o.pingIntervalMs !== undefined ? { pingInterval: o.pingIntervalMs } : {}),
  };
  if (config.credentials) {
    const file = config.credentials;
    // Read at each connection: a renewed file is picked up without a restart.
    options.authenticator = (nonce?: string) => credsAuthenticator(readFileSync(file))(nonce);
  } else if (config.user !== undefined) {
    options.user = config.user;
    options.pass = config.password;
  } else if (config.token !== undefined) {
    options.token = config.token;
  }
  const tls = config.tls;
  if (tls) options.tls = { ...(tls.ca ? { caFile: tls.ca } : {}), ...(tls.cert ? { certFile: tls.cert } : {}), ...(tls.key ? { keyFile: tls.key } : {}) };
  else if (config.servers.some((s) => s.startsWith('tls://'))) options.tls = {};
  return options;
}

/** A status event's data (a server, a count, an error) as text. */
function text(data: unknown): string {
  if (data instanceof Error) return data.message;
  return typeof data === 'string' || typeof data === 'number' ? String(data) : JSON.stringify(data);
}

export class NatsLink {
  private current: LinkStatus = 'disconnected';
  private closed = false;
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  private nc: NatsConnection | null = null;
  private lastFailure = '';
  readonly redact: (text: string) => string;

  constructor(private readonly o: NatsLinkOptions) {
    this.redact = redactor(o.config);
  }

  get status(): LinkStatus {
    return this.current;
  }

  /** The connection, while there is one (it may be reconnecting). */
  get connection(): NatsConnection | null {
    return this.nc;
  }

  /** Starts connecting, in the background, for ever (until close). */
  start(): void {
    this.loop ??= this.run().catch((error: unknown) => this.o.logger.error(`NATS link stopped: ${this.why(error)}`));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    const nc = this.nc;
    this.setStatus('disconnected');
    if (nc) {
      // Sends what is buffered (the last events, the record) when it can; never waits long.
      await Promise.race([nc.drain().catch(() => nc.close()), sleep(2000)]).catch(() => undefined);
      await nc.close().catch(() => undefined);
    }
    await this.loop;
  }

  private why(error: unknown): string {
    return this.redact(error instanceof Error ? error.message || error.name : String(error));
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
      waiting: (delay) => this.o.logger.debug(`NATS: connecting again in ${delay} ms`),
    });
  }

  /** One connection, from connect() until it closes for good; the library reconnects it meanwhile. */
  private async session(): Promise<void> {
    let nc: NatsConnection;
    try {
      const waiting = () => this.o.logger.info({ servers: this.o.config.servers.map(this.redact) }, 'NATS: no server answers yet; still trying');
      nc = await connect(clientOptions(this.o.config, { ...this.o, onWaiting: waiting }, () => this.closed));
    } catch (error) {
      if (this.closed) return;
      const why = this.why(error);
      // One line per new reason: a bus that stays away does not fill the log.
      if (why !== this.lastFailure) this.o.logger.warn(`NATS: cannot connect: ${why}`);
      this.lastFailure = why;
      return;
    }
    if (this.closed) {
      await nc.close().catch(() => undefined);
      return;
    }
    this.nc = nc;
    this.lastFailure = '';
    void this.watch(nc);
    this.o.logger.info({ server: this.redact(nc.getServer()), device: this.o.config.device }, `NATS: connected to ${this.redact(nc.getServer())} as ${this.o.config.device}`);
    this.setStatus('connected');
    this.o.onConnected?.(nc, false);
    const err = await nc.closed();
    if (this.nc === nc) this.nc = null;
    this.setStatus('disconnected');
    if (!this.closed) this.o.logger.warn(`NATS: the connection closed${err ? `: ${this.why(err)}` : ''}; connecting again`);
  }

  /** The library's status events: disconnected, reconnected, errors. */
  private async watch(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (this.closed) break;
        switch (s.type) {
          case Events.Disconnect:
            this.setStatus('disconnected');
            this.o.logger.info(`NATS: disconnected from ${this.redact(text(s.data))}; the client reconnects`);
            break;
          case Events.Reconnect:
            this.o.logger.info(`NATS: reconnected to ${this.redact(text(s.data))}`);
            this.setStatus('connected');
            this.o.onConnected?.(nc, true);
            break;
          case Events.Error:
            this.o.logger.warn(`NATS: ${this.redact(text(s.data))}`);
            break;
          default:
            break;
        }
      }
    } catch {
      // the iterator ends with the connection
    }
  }
}
