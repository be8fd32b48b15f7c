/**
 * The application layer: commands (what a client may ask the updater to do, an update of all
 * components included), queries (the read model of everything shown), and the feed (every
 * outbound message, with replay). Every transport
 * is an adapter over this, and imports nothing else of the updater but the contract.
 */
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { Journal } from '../journal/journal.js';
import type { UpdateChecker } from '../releases/checker.js';
import type { ComponentConfig } from '../config/index.js';
import { Batches } from './batch.js';
import { Commands } from './commands.js';
import { Feed } from './feed.js';
import { Queries, type RunningProbe } from './queries.js';

export { Commands, type RunRequest, type StartedRun } from './commands.js';
export { Queries, type CheckSummary, type RunningProbe } from './queries.js';
export { Feed, type FeedSink, type Subscription } from './feed.js';
export { CommandError, refusalOf, type CommandErrorCode } from './errors.js';
export { mustGoFirst, updateFirstMessage, updateOrder } from './batch.js';
export { handleMessage, handleText, MAX_MESSAGE_BYTES, type Session } from './protocol.js';

export interface Application {
  readonly commands: Commands;
  readonly queries: Queries;
  readonly feed: Feed;
}

export interface ApplicationOptions {
  engine: Engine;
  journal: Journal;
  checker: UpdateChecker;
  components: readonly ComponentConfig[];
  running?: RunningProbe | undefined;
  /** The component kinds this updater knows. */
  kinds: readonly string[];
  /** `system_info`'s device_id. */
  deviceId: string;
  logger: Logger;
}

/** Built by the composition root (src/main.ts), which also tells the feed of every check. */
export function createApplication(o: ApplicationOptions): Application {
  const batches = new Batches(o);
  const queries = new Queries({ ...o, batches });
  return {
    queries,
    commands: new Commands(o.engine, o.checker, queries, batches),
    feed: new Feed(queries, o.engine, o.logger.child({ module: 'feed' }), batches),
  };
}
