/**
 * The journal: runs, their transitions and sub-step intents, in SQLite. Every write is
 * one small synchronous transaction, so it is on disk (synchronous=FULL) when the call
 * returns, before the caller goes on to do the work it describes.
 */
import type { Db } from './database.js';
import { JournalError, isStorageError } from './database.js';

export { isStorageError };


/** A journal write that failed for want of storage. `message` names the database's path. */
export class JournalUnwritableError extends JournalError {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super('journal_unwritable', `cannot write the journal at ${path}: ${(cause as Error).message ?? String(cause)}`, { cause });
    this.name = 'JournalUnwritableError';
  }
}

/** Whether the journal's last write went through, and if not, why (for `/healthz`). */
export interface JournalHealth {
  writable: boolean;
  /** The last failure's sentence, naming the path; null while writable. */
  error: string | null;
  /** When the journal became unwritable (ISO time); null while writable. */
  since: string | null;
}

export type Level = 'info' | 'warn' | 'error';

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

export interface TransitionRow {
  seq: number;
  run_id: number;
  from_state: string | null;
  to_state: string;
  event: string;
  message: string;
  level: Level;
  at: string;
}

/** A committed transition, as published to listeners. */
export interface Transition {
  seq: number;
  runId: number;
  component: string;
  from: string | null;
  to: string;
  event: string;
  message: string;
  level: Level;
  at: string;
}

export interface StepRow {
  run_id: number;
  n: number;
  phase: string;
  step: string;
  detail: string | null;
  at: string;
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
  transitions?: Array<{ seq: number; from: string | null; to: string; event: string; at: string; message: string; level: Level }>;
}

export class BusyError extends Error {
  readonly code = 'busy';
  constructor(readonly activeRun: { id: number; component: string; state: string }) {
    super(`another update is running: run ${activeRun.id} of ${activeRun.component} is in ${activeRun.state}`);
    this.name = 'BusyError';
  }
}

export interface NewRun {
  component: string;
  kind: string;
  mode: 'update' | 'restore';
  requestedVersion: string | null;
  fromVersion: string | null;
  dryRun: boolean;
  machineVersion: number;
  /** Builds the initial snapshot once the run id is known. */
  snapshot: (runId: number) => string;
}

export interface TransitionCommit {
  runId: number;
  to: string;
  event: string;
  message: string;
  level: Level;
  snapshot: string;
  fromVersion: string | null;
  toVersion: string | null;
  recoveries: number;
  /** Set when `to` is terminal. */
  result?: string | null;
  error?: { code: string; message: string } | null;
}

const now = () => new Date().toISOString();

export class Journal {
  private readonly stmts;
  private readonly createTx;
  private readonly commitTx;
  private readonly probeStmt;
  private state: JournalHealth = { writable: true, error: null, since: null };

  constructor(readonly db: Db) {
    const s = {
      active: db.prepare<[], { id: number; component: string; state: string }>(
        'SELECT id, component, state FROM runs WHERE result IS NULL ORDER BY id LIMIT 1',
      ),
      insertRun: db.prepare(
        `INSERT INTO runs (component, kind, mode, requested_version, from_version, dry_run, state, machine_version, snapshot, created_at, updated_at)
         VALUES (@component, @kind, @mode, @requestedVersion, @fromVersion, @dryRun, 'idle', @machineVersion, '{}', @at, @at)`,
      ),
      setSnapshot: db.prepare('UPDATE runs SET snapshot = ? WHERE id = ?'),
      runState: db.prepare<[number], { state: string; component: string; result: string | null }>(
        'SELECT state, component, result FROM runs WHERE id = ?',
      ),
      insertTransition: db.prepare(
        `INSERT INTO transitions (run_id, from_state, to_state, event, message, level, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateRun: db.prepare(
        `UPDATE runs SET state = @to, message = @message, snapshot = @snapshot, from_version = @fromVersion,
           to_version = @toVersion, recoveries = @recoveries, updated_at = @at,
           result = @result, finished_at = CASE WHEN @result IS NULL THEN NULL ELSE @at END,
           error_code = @errorCode, error = @error
         WHERE id = @runId`,
      ),
      getRun: db.prepare<[number], RunRow>('SELECT * FROM runs WHERE id = ?'),
      unfinished: db.prepare<[], RunRow>('SELECT * FROM runs WHERE result IS NULL ORDER BY id'),
      runTransitions: db.prepare<[number], TransitionRow>('SELECT * FROM transitions WHERE run_id = ? ORDER BY seq'),
      transitionsAfter: db.prepare<[number, number], TransitionRow & { component: string }>(
        `SELECT t.*, r.component FROM transitions t JOIN runs r ON r.id = t.run_id WHERE t.seq > ? ORDER BY t.seq LIMIT ?`,
      ),
      lastSeq: db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM transitions'),
      nextStep: db.prepare<[number], { n: number }>('SELECT COALESCE(MAX(n), 0) + 1 AS n FROM run_steps WHERE run_id = ?'),
      insertStep: db.prepare('INSERT INTO run_steps (run_id, n, phase, step, detail, at) VALUES (?, ?, ?, ?, ?, ?)'),
      steps: db.prepare<[number], StepRow>('SELECT * FROM run_steps WHERE run_id = ? ORDER BY n'),
      listAll: db.prepare<[number], RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
      listByComponent: db.prepare<[string, number], RunRow>('SELECT * FROM runs WHERE component = ? ORDER BY id DESC LIMIT ?'),
      runCounts: db.prepare<[], { component: string; result: string; n: number }>(
        'SELECT component, result, COUNT(*) AS n FROM runs WHERE result IS NOT NULL GROUP BY component, result',
      ),
    };
    this.stmts = s;
    this.probeStmt = db.prepare<[string]>('INSERT INTO journal_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');

    this.createTx = db.transaction((run: NewRun): number => {
      const active = s.active.get();
      if (active) throw new BusyError(active);
      const at = now();
      const id = Number(
        s.insertRun.run({
          component: run.component,
          kind: run.kind,
          mode: run.mode,
          requestedVersion: run.requestedVersion,
          fromVersion: run.fromVersion,
          dryRun: run.dryRun ? 1 : 0,
          machineVersion: run.machineVersion,
          at,
        }).lastInsertRowid,
      );
      s.setSnapshot.run(run.snapshot(id), id);
      return id;
    });

    this.commitTx = db.transaction((c: TransitionCommit): Transition => {
      const row = s.runState.get(c.runId);
      if (!row) throw new JournalError('no_run', `run ${c.runId} does not exist`);
      if (row.result !== null) throw new JournalError('run_finished', `run ${c.runId} already ended ${row.result}; refusing to record ${c.to}`);
      const at = now();
      const seq = Number(s.insertTransition.run(c.runId, row.state, c.to, c.event, c.message, c.level, at).lastInsertRowid);
      s.updateRun.run({
        runId: c.runId,
        to: c.to,
        message: c.message,
        snapshot: c.snapshot,
        fromVersion: c.fromVersion,
        toVersion: c.toVersion,
        recoveries: c.recoveries,
        at,
        result: c.result ?? null,
        errorCode: c.error?.code ?? null,
        error: c.error?.message ?? null,
      });
      return { seq, runId: c.runId, component: row.component, from: row.state, to: c.to, event: c.event, message: c.message, level: c.level, at };
    });
  }

  /** The database file. */
  get path(): string {
    return this.db.name;
  }

  /** Whether the last write went through. */
  get health(): JournalHealth {
    return this.state;
  }

  /**
   * Runs one write. A failure for want of storage becomes a JournalUnwritableError and marks
   * the journal unwritable; the next write that goes through marks it writable again.
   */
  write<T>(fn: () => T): T {
    let result: T;
    try {
      result = fn();
    } catch (error) {
      if (!isStorageError(error)) throw error;
      const failure = new JournalUnwritableError(this.path, error);
      this.state = { writable: false, error: failure.message, since: this.state.since ?? now() };
      throw failure;
    }
    if (!this.state.writable) this.state = { writable: true, error: null, since: null };
    return result;
  }

  /** A small real write (one row), to learn whether the journal can be written again. */
  probe(): void {
    this.write(() => this.probeStmt.run(now()));
  }

  /** Creates a run in state `idle`, unless one is already unfinished (BusyError). Atomic. */
  createRun(run: NewRun): number {
    return this.write(() => this.createTx.immediate(run));
  }

  /** Commits one transition and the run's new state and snapshot together. */
  commitTransition(c: TransitionCommit): Transition {
    return this.write(() => this.commitTx.immediate(c));
  }

  /** Writes the intent row of a sub-step before it is done. Returns its number within the run. */
  recordStep(runId: number, phase: string, step: string, detail?: unknown): number {
    return this.write(() =>
      this.db
        .transaction(() => {
          const n = this.stmts.nextStep.get(runId)!.n;
          this.stmts.insertStep.run(runId, n, phase, step, detail === undefined ? null : JSON.stringify(detail), now());
          return n;
        })
        .immediate(),
    );
  }

  steps(runId: number, phase?: string): StepRow[] {
    const all = this.stmts.steps.all(runId);
    return phase ? all.filter((s) => s.phase === phase) : all;
  }

  activeRun(): { id: number; component: string; state: string } | undefined {
    return this.stmts.active.get();
  }

  unfinishedRuns(): RunRow[] {
    return this.stmts.unfinished.all();
  }

  getRunRow(id: number): RunRow | undefined {
    return this.stmts.getRun.get(id);
  }

  transitionsOf(runId: number): TransitionRow[] {
    return this.stmts.runTransitions.all(runId);
  }

  /** Transitions with seq greater than `afterSeq`, oldest first (for replay). */
  transitionsAfter(afterSeq: number, limit = 1000): Transition[] {
    return this.stmts.transitionsAfter.all(afterSeq, limit).map((t) => ({
      seq: t.seq,
      runId: t.run_id,
      component: t.component,
      from: t.from_state,
      to: t.to_state,
      event: t.event,
      message: t.message,
      level: t.level,
      at: t.at,
    }));
  }

  lastSeq(): number {
    return this.stmts.lastSeq.get()?.seq ?? 0;
  }

  getRun(id: number): RunView | undefined {
    const row = this.getRunRow(id);
    if (!row) return undefined;
    return { ...toView(row), transitions: this.transitionsOf(id).map(toTransitionView) };
  }

  /** How many runs ended, by component and result (for /metrics). */
  runCounts(): Array<{ component: string; result: string; n: number }> {
    return this.stmts.runCounts.all();
  }

  listRuns(options: { component?: string; limit?: number } = {}): RunView[] {
    const limit = Math.max(1, Math.min(options.limit ?? 50, 1000));
    const rows = options.component ? this.stmts.listByComponent.all(options.component, limit) : this.stmts.listAll.all(limit);
    return rows.map(toView);
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

function toTransitionView(t: TransitionRow) {
  return { seq: t.seq, from: t.from_state, to: t.to_state, event: t.event, at: t.at, message: t.message, level: t.level };
}
