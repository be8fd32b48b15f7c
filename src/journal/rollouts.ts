/**
 * The `rollout_runs` table: the run a fleet rollout started, per component. Written only inside the
 * journal's run-creating transaction (journal.ts), so the key and its run are one commit.
 */
import type { Db } from './database.js';

export class RolloutRunsTable {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      get: db.prepare<[string, string], { run_id: number }>('SELECT run_id FROM rollout_runs WHERE rollout = ? AND component = ?'),
      insert: db.prepare<[string, string, number]>('INSERT INTO rollout_runs (rollout, component, run_id) VALUES (?, ?, ?)'),
    };
  }

  /** The run `rollout` started for `component`, if any. */
  runOf(rollout: string, component: string): number | undefined {
    return this.s.get.get(rollout, component)?.run_id;
  }

  /** Call inside the journal's transaction that creates the run. */
  insert(rollout: string, component: string, runId: number): void {
    this.s.insert.run(rollout, component, runId);
  }
}
