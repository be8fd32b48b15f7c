/** What the HTTP and WebSocket layers are given: built by server.ts, or by tests. */
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { Journal } from '../journal/journal.js';
import type { UpdateChecker } from '../releases/checker.js';
import type { ComponentConfig } from '../config/index.js';
import type { RunningProbe } from './views.js';

export interface AppDeps {
  engine: Engine;
  journal: Journal;
  checker: UpdateChecker;
  components: ComponentConfig[];
  /** `server.token`: when set, mutations and /ws need it. */
  token: string | null;
  /** `server.allowedHosts` (default none): names a request may address besides the loopback, with no token. */
  allowedHosts?: string[];
  /** `server.allowedOrigins` (default none): sites besides the updater's own pages that may mutate and open /ws. */
  allowedOrigins?: string[];
  /** How long a request may take to arrive whole, head and body (default 30 s; tests shorten it). */
  requestTimeoutMs?: number;
  logger: Logger;
  /** Tells whether a component's service runs (drivers supply it); absent → `running: null`. */
  running?: RunningProbe;
  /** WebSocket tuning (tests shorten these). */
  ws?: { pingIntervalMs?: number; maxBufferedBytes?: number };
}
