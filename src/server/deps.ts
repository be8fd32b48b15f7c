/** What the HTTP transport (REST, /metrics, /ws, the dashboard) is given: built by src/main.ts, or by tests. */
import type { Logger } from 'pino';
import type { Application } from '../app/index.js';

export interface AppDeps {
  /** Commands, queries and the feed: all the transport knows of the updater. */
  application: Application;
  /** `server.token`: when set, mutations and /ws need it. */
  token: string | null;
  /** `server.allowedHosts` (default none): names a request may address besides the loopback, with no token. */
  allowedHosts?: string[];
  /** `server.allowedOrigins` (default none): sites besides the updater's own pages that may mutate and open /ws. */
  allowedOrigins?: string[];
  /** How long a request may take to arrive whole, head and body (default 30 s; tests shorten it). */
  requestTimeoutMs?: number;
  logger: Logger;
  /** WebSocket tuning (tests shorten these). */
  ws?: { pingIntervalMs?: number; maxBufferedBytes?: number };
}
