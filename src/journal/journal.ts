/**
 * The journal: the one owner of the database. Each table has its module (runs.ts,
 * transitions.ts for transitions and steps, components.ts, http-cache.ts, probe.ts) and no SQL is
 * written anywhere else. A run's writes are small synchronous transactions, on disk
 * (synchronous=FULL) when the call returns, before the caller goes on to do the work they
 * describe; the check results and the HTTP cache are derived data, written without waiting for the
 * disk (relaxed.ts).
 */
import type { Db } from './database.js';
import { JournalError, isStorageError } from './database.js';
import { ComponentsTable } from './components.js';
import { HttpCacheTable } from './http-cache.js';
import { ProbeTable } from './probe.js';
import { RolloutRunsTable } from './rollouts.js';
import { RunsTable, toView, type ActiveRun, type NewRunRow, type RunRow, type RunView } from './runs.js';
import { TransitionsTable, type Level, type StepRow, type Transition, type TransitionRow } from './transitions.js';

export { isStorageError, toView };
export type { ActiveRun, Level, RunRow, RunView, StepRow, Transition, TransitionRow };

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

export class BusyError extends Error {
  readonly code = 'busy';
  constructor(readonly activeRun: ActiveRun) {
    super(`another update is running: run ${activeRun.id} of ${activeRun.component} is in ${activeRun.state}`);
    this.name = 'BusyError';
  }
}

/** A fleet rollout already started a run of this component: that run, instead of a new one. */
export class RolloutRunExistsError extends Error {
  readonly code = 'rollout_run_exists';
  constructor(
    readonly rollout: string,
    readonly component: string,
    readonly runId: number,
  ) {
    super(`rollout ${rollout} already started run ${runId} of ${component}`);
    this.name = 'RolloutRunExistsError';
  }
}

/** A run to create: its row (the time is the journal's) and its first snapshot. */
export interface NewRun extends Omit<NewRunRow, 'at'> {
  /** Builds the initial snapshot once the run id is known. */
  snapshot: (runId: number) => string;
  /**
   * A fleet rollout's id: the run is recorded as this rollout's run of the component, in the same
   * transaction; when the rollout already has one, nothing is created (RolloutRunExistsError).
   */
  rollout?: string | null | undefined;
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
  readonly runs: RunsTable;
  readonly transitions: TransitionsTable;
  /** What the last check found per component (the checker's store). */
  readonly components: ComponentsTable;
  /** GitHub's answers for conditional requests (the GitHub client's store). */
  readonly httpCache: HttpCacheTable;
  /** The run each fleet rollout started, per component. */
  readonly rollouts: RolloutRunsTable;
  private readonly probeTable: ProbeTable;
  private readonly createTx;
  private readonly commitTx;
  private readonly stepTx;
  private state: JournalHealth = { writable: true, error: null, since: null };

  constructor(readonly db: Db) {
    const runs = (this.runs = new RunsTable(db));
    const transitions = (this.transitions = new TransitionsTable(db));
    this.components = new ComponentsTable(db);
    this.httpCache = new HttpCacheTable(db);
    this.probeTable = new ProbeTable(db);
    const rollouts = (this.rollouts = new RolloutRunsTable(db));

    this.createTx = db.transaction((run: NewRun): number => {
      if (run.rollout) {
        const existing = rollouts.runOf(run.rollout, run.component);
        if (existing !== undefined) throw new RolloutRunExistsError(run.rollout, run.component, existing);
      }
      const active = runs.active();
      if (active) throw new BusyError(active);
      const id = runs.insert({ ...run, at: now() });
      runs.setSnapshot(id, run.snapshot(id));
      if (run.rollout) rollouts.insert(run.rollout, run.component, id);
      return id;
    });

    this.commitTx = db.transaction((c: TransitionCommit): Transition => {
      const row = runs.stateOf(c.runId);
      if (!row) throw new JournalError('no_run', `run ${c.runId} does not exist`);
      if (row.result !== null) throw new JournalError('run_finished', `run ${c.runId} already ended ${row.result}; refusing to record ${c.to}`);
      const at = now();
      const seq = transitions.insert({ runId: c.runId, from: row.state, to: c.to, event: c.event, message: c.message, level: c.level, at });
      runs.update({
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

    this.stepTx = db.transaction((runId: number, phase: string, step: string, detail: string | null) => transitions.insertStep(runId, phase, step, detail, now()));
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
    this.write(() => this.probeTable.write(now()));
  }

  /**
   * Creates a run in state `idle`, unless one is already unfinished (BusyError), or its rollout
   * already started a run of this component (RolloutRunExistsError). Atomic.
   */
  createRun(run: NewRun): number {
    return this.write(() => this.createTx.immediate(run));
  }

  /** Commits one transition and the run's new state and snapshot together. */
  commitTransition(c: TransitionCommit): Transition {
    return this.write(() => this.commitTx.immediate(c));
  }

  /** Writes the intent row of a sub-step before it is done. Returns its number within the run. */
  recordStep(runId: number, phase: string, step: string, detail?: unknown): number {
    return this.write(() => this.stepTx.immediate(runId, phase, step, detail === undefined ? null : JSON.stringify(detail)));
  }

  steps(runId: number, phase?: string): StepRow[] {
    const all = this.transitions.steps(runId);
    return phase ? all.filter((s) => s.phase === phase) : all;
  }

  /** The run a fleet rollout started for a component, if any. */
  runOfRollout(rollout: string, component: string): number | undefined {
    return this.rollouts.runOf(rollout, component);
  }

  activeRun(): ActiveRun | undefined {
    return this.runs.active();
  }

  unfinishedRuns(): RunRow[] {
    return this.runs.unfinished();
  }

  getRunRow(id: number): RunRow | undefined {
    return this.runs.get(id);
  }

  transitionsOf(runId: number): TransitionRow[] {
    return this.transitions.ofRun(runId);
  }

  /** Transitions with seq greater than `afterSeq`, oldest first (for replay). */
  transitionsAfter(afterSeq: number, limit = 1000): Transition[] {
    return this.transitions.after(afterSeq, limit);
  }

  lastSeq(): number {
    return this.transitions.lastSeq();
  }

  getRun(id: number): RunView | undefined {
    const row = this.getRunRow(id);
    if (!row) return undefined;
    return { ...toView(row), transitions: this.transitionsOf(id).map(toTransitionView) };
  }

  listRuns(options: { component?: string; limit?: number } = {}): RunView[] {
    const limit = Math.max(1, Math.min(options.limit ?? 50, 1000));
    return this.runs.list({ component: options.component, limit }).map(toView);
  }
}

function toTransitionView(t: TransitionRow) {
  return { seq: t.seq, from: t.from_state, to: t.to_state, event: t.event, at: t.at, message: t.message, level: t.level };
}
