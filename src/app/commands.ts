/**
 * What a client may ask the updater to do, whatever the transport: check for releases, start a
 * run, update all components, restore the newest backup. Refusals are `CommandError`s with the
 * contract's codes. A check's result reaches every subscriber of the feed (the checker tells it),
 * not only the asker.
 */
import type { Engine } from '../engine/engine.js';
import type { UpdateChecker } from '../releases/checker.js';
import type { CheckResult, UpdateAllStarted } from '../contract/index.js';
import { updateFirstMessage, type Batches } from './batch.js';
import { CommandError, refusalOf } from './errors.js';
import type { Queries } from './queries.js';

export interface RunRequest {
  /** A version to install (`v` optional); null or absent: the latest. */
  version?: string | null;
  /** Stop after validate. */
  dryRun?: boolean;
  /**
   * A fleet rollout's id: at most one run per rollout and component on this device. A repeat
   * answers the run the rollout started (`existing: true`), whatever it is doing, and is never refused.
   */
  rollout?: string | null;
}

/** The run a request started, or (`existing`) the one its rollout had started already. */
export interface StartedRun {
  runId: number;
  existing?: true;
}

export class Commands {
  constructor(
    private readonly engine: Engine,
    private readonly checker: UpdateChecker,
    private readonly queries: Queries,
    private readonly batches: Batches,
  ) {}

  /** Checks every component (or one) now; a check under way is shared. */
  async check(component?: string): Promise<CheckResult> {
    if (component !== undefined && !this.queries.hasComponent(component)) throw new CommandError('not_found', `no component named "${component}"`);
    return this.queries.checkResult(await this.checker.check(component));
  }

  /**
   * Starts an update run; resolves with its id once it exists (the run goes on in the background).
   * Refused (`update_first`) while a component marked `updateFirst` that comes before this one has an
   * update available, unless it is a dry run (which changes nothing); `busy` during an update of all.
   */
  startRun(component: string, request: RunRequest = {}): Promise<StartedRun> {
    const dryRun = request.dryRun ?? false;
    // Asked after the engine's own refusals (404; 507, which wins over 409; busy), before the run exists.
    const admit = () => {
      this.refuseDuringBatch();
      const first = dryRun ? null : this.batches.mustGoFirst(component);
      if (first !== null) throw new CommandError('update_first', updateFirstMessage(component, first));
    };
    return refused(this.engine.startRun(component, { version: request.version ?? null, dryRun, admit, rollout: request.rollout ?? null }));
  }

  /**
   * Updates every component that has an update (checking first), one run after another, the
   * `updateFirst` ones first, stopping at the first run that does not succeed. Resolves once the
   * first run exists, or at once when there is nothing to update; the rest goes on in the
   * background, told through the feed (`update_batch`) and `Queries.batch()`.
   */
  updateAll(): Promise<UpdateAllStarted> {
    return refused(this.batches.start());
  }

  /** Restores the newest backup of a component, as a run of its own (never refused by `updateFirst`). */
  restore(component: string): Promise<{ runId: number }> {
    return refused(this.engine.startRun(component, { mode: 'restore', admit: () => this.refuseDuringBatch() }));
  }

  /** Between two runs of an update of all, no other run may slip in. */
  private refuseDuringBatch(): void {
    const busy = this.batches.busyReason();
    if (busy) throw new CommandError('busy', busy);
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
