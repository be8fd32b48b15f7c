/**
 * What a client may ask the updater to do, whatever the transport: check for releases, start a
 * run, restore the newest backup. Refusals are `CommandError`s with the contract's codes.
 * A check's result reaches every subscriber of the feed (the checker tells it), not only the asker.
 */
import type { Engine } from '../engine/engine.js';
import type { UpdateChecker } from '../releases/checker.js';
import type { CheckResult } from '../contract/index.js';
import { CommandError, refusalOf } from './errors.js';
import type { Queries } from './queries.js';

export interface RunRequest {
  /** A version to install (`v` optional); null or absent: the latest. */
  version?: string | null;
  /** Stop after validate. */
  dryRun?: boolean;
}

export class Commands {
  constructor(
    private readonly engine: Engine,
    private readonly checker: UpdateChecker,
    private readonly queries: Queries,
  ) {}

  /** Checks every component (or one) now; a check under way is shared. */
  async check(component?: string): Promise<CheckResult> {
    if (component !== undefined && !this.queries.hasComponent(component)) throw new CommandError('not_found', `no component named "${component}"`);
    return this.queries.checkResult(await this.checker.check(component));
  }

  /** Starts an update run; resolves with its id once it exists (the run goes on in the background). */
  startRun(component: string, request: RunRequest = {}): Promise<{ runId: number }> {
    return refused(this.engine.startRun(component, { version: request.version ?? null, dryRun: request.dryRun ?? false }));
  }

  /** Restores the newest backup of a component, as a run of its own. */
  restore(component: string): Promise<{ runId: number }> {
    return refused(this.engine.startRun(component, { mode: 'restore' }));
  }
}

/** The engine's refusals (and a full disk) as CommandErrors; anything else is a bug and passes as is. */
async function refused<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw refusalOf(error) ?? error;
  }
}
