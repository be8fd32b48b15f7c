/**
 * The history as the CLI's reading commands show it (`updater status | runs | run ID`): runs and
 * the unfinished one, read from a journal opened read-only, so that it works whether or not the
 * service runs (SQLite's WAL lets a reader in beside the service's writer). Built by the
 * composition root (`openHistory` in src/main.ts); the CLI knows no table or journal of its own.
 */
import type { Journal } from '../journal/journal.js';
import type { Run, RunsQuery } from '../contract/index.js';

export class History {
  constructor(private readonly journal: Journal) {}

  runs(query: Partial<RunsQuery> = {}): Run[] {
    return this.journal.listRuns({ component: query.component, limit: query.limit });
  }

  run(id: number): Run | undefined {
    return this.journal.getRun(id);
  }

  /** The run that has not ended, as journaled (the service may be running it, or recover it on boot). */
  unfinished(): { id: number; component: string; state: string } | null {
    return this.journal.activeRun() ?? null;
  }
}
