/**
 * The `runs` table: one row per update run, its machine state, latest sentence, versions and the
 * snapshot recovery needs. Written only inside the journal's transactions (journal.ts), which
 * also write the transition that moved the run.
 */
import type { Db } from './database.js';

export interface RunRow {
  id: number;
  component: string;
  kind: string;
  mode: 'update' | 'restore';
  requested_version: string | null;
  from_version: string | null;
  to_version: string | null;
  dry_run: 0 | 1;
  state: string;
  result: string | null;
  message: string | null;
  error_code: string | null;
  error: string | null;
  recoveries: number;
  machine_version: number;
  snapshot: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

/** The run as REST shows it (CONTRACT.md, GET /api/runs/:id). */
export interface RunView {
  run_id: number;
  component: string;
  kind: string;
  mode: 'update' | 'restore';
  from_version: string | null;
  to_version: string | null;
  dry_run: boolean;
  state: string;
  result: string | null;
  message: string | null;
  error: { code: string; message: string } | null;
  recoveries: number;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  transitions?: Array<{ seq: number; from: string | null; to: string; event: string; at: string; message: string; level: 'info' | 'warn' | 'error' }>;
}

export interface ActiveRun {
  id: number;
  component: string;
  state: string;
}

export interface NewRunRow {
  component: string;
  kind: string;
  mode: 'update' | 'restore';
  requestedVersion: string | null;
  fromVersion: string | null;
  dryRun: boolean;
  machineVersion: number;
  at: string;
}

export interface RunUpdate {
  runId: number;
  to: string;
  message: string;
  snapshot: string;
  fromVersion: string | null;
  toVersion: string | null;
  recoveries: number;
  at: string;
  result: string | null;
  errorCode: string | null;
  error: string | null;
}

/** How many runs ended with each result, per component (for /metrics). */
export interface RunCount {
  component: string;
  result: string;
  n: number;
}

export class RunsTable {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      active: db.prepare<[], ActiveRun>('SELECT id, component, state FROM runs WHERE result IS NULL ORDER BY id LIMIT 1'),
      insert: db.prepare(
        `INSERT INTO runs (component, kind, mode, requested_version, from_version, dry_run, state, machine_version, snapshot, created_at, updated_at)
         VALUES (@component, @kind, @mode, @requestedVersion, @fromVersion, @dryRun, 'idle', @machineVersion, '{}', @at, @at)`,
      ),
      setSnapshot: db.prepare<[string, number]>('UPDATE runs SET snapshot = ? WHERE id = ?'),
      state: db.prepare<[number], { state: string; component: string; result: string | null }>('SELECT state, component, result FROM runs WHERE id = ?'),
      update: db.prepare(
        `UPDATE runs SET state = @to, message = @message, snapshot = @snapshot, from_version = @fromVersion,
           to_version = @toVersion, recoveries = @recoveries, updated_at = @at,
           result = @result, finished_at = CASE WHEN @result IS NULL THEN NULL ELSE @at END,
           error_code = @errorCode, error = @error
         WHERE id = @runId`,
      ),
      get: db.prepare<[number], RunRow>('SELECT * FROM runs WHERE id = ?'),
      unfinished: db.prepare<[], RunRow>('SELECT * FROM runs WHERE result IS NULL ORDER BY id'),
      listAll: db.prepare<[number], RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
      listByComponent: db.prepare<[string, number], RunRow>('SELECT * FROM runs WHERE component = ? ORDER BY id DESC LIMIT ?'),
      counts: db.prepare<[], RunCount>('SELECT component, result, COUNT(*) AS n FROM runs WHERE result IS NOT NULL GROUP BY component, result'),
    };
  }

  /** The unfinished run, if any (there is at most one). */
  active(): ActiveRun | undefined {
    return this.s.active.get();
  }

  /** Inserts a run in state `idle`; returns its id. Call inside the journal's transaction. */
  insert(run: NewRunRow): number {
    const { component, kind, mode, requestedVersion, fromVersion, machineVersion, at } = run;
    return Number(this.s.insert.run({ component, kind, mode, requestedVersion, fromVersion, dryRun: run.dryRun ? 1 : 0, machineVersion, at }).lastInsertRowid);
  }

  setSnapshot(runId: number, snapshot: string): void {
    this.s.setSnapshot.run(snapshot, runId);
  }

  stateOf(runId: number): { state: string; component: string; result: string | null } | undefined {
    return this.s.state.get(runId);
  }

  update(u: RunUpdate): void {
    this.s.update.run(u);
  }

  get(id: number): RunRow | undefined {
    return this.s.get.get(id);
  }

  unfinished(): RunRow[] {
    return this.s.unfinished.all();
  }

  /** Newest first. */
  list(options: { component?: string; limit: number }): RunRow[] {
    return options.component ? this.s.listByComponent.all(options.component, options.limit) : this.s.listAll.all(options.limit);
  }

  /** Runs that ended, counted per component and result. */
  countsByResult(): RunCount[] {
    return this.s.counts.all();
  }
}

export function toView(row: RunRow): RunView {
  return {
    run_id: row.id,
    component: row.component,
    kind: row.kind,
    mode: row.mode,
    from_version: row.from_version,
    to_version: row.to_version,
    dry_run: row.dry_run === 1,
    state: row.state,
    result: row.result,
    message: row.message,
    error: row.error_code ? { code: row.error_code, message: row.error ?? '' } : null,
    recoveries: row.recoveries,
    created_at: row.created_at,
    updated_at: row.updated_at,
    finished_at: row.finished_at,
  };
}
