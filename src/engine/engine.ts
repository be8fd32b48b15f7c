/**
 * The engine: the only place that runs update machines, persists them and recovers them.
 *
 * - A run is one actor of the update machine, provided with a `journal` entry action that
 *   commits each transition (run state + snapshot + transition row, one SQLite transaction)
 *   before the entered state's work starts, and with actors that call the component's driver.
 * - One run at a time per device: the journal refuses a second unfinished run atomically.
 * - On boot, `recover()` takes every unfinished run and starts a fresh actor from its saved
 *   context (snapshots of effectful states are never restored) and sends BOOT; the machine's
 *   `recovering` state applies the recovery table. New runs are refused until it is done.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createActor, fromPromise, type AnyActorRef } from 'xstate';
import type { Logger } from 'pino';
import {
  MACHINE_VERSION,
  isTerminal,
  newRunContext,
  updateMachine,
  type ApplyOutput,
  type BackupOutput,
  type DiscoverOutput,
  type Phase,
  type PhaseInput,
  type RunMode,
  type UpdateContext,
  type WorkPhase,
} from '../../machines/update-machine.js';
import { describe } from '../../machines/messages.js';
import { parseStoredRun, upgradeStoredRun } from '../../machines/stored-run.js';
import { BusyError, JournalUnwritableError, RolloutRunExistsError, type Journal, type RunRow, type RunView, type Transition, type TransitionCommit } from '../journal/journal.js';
import type { Driver, Outcome, StepContext, StepRecord } from '../core/driver.js';
import { stepRecord } from '../journal/transitions.js';
import { FaultPoints } from './faults.js';
import { Hub } from './hub.js';

export interface EngineComponent {
  name: string;
  kind: string;
  /** Health timeout: the verify phase may take this plus a margin. */
  health?: { timeoutSeconds?: number } | undefined;
  /** Recoveries a run of this component may go through (its kind's; default MAX_RECOVERIES). */
  maxRecoveries?: number | undefined;
}

export interface ProgressEvent {
  runId: number;
  component: string;
  phase: WorkPhase;
  message: string;
  percent?: number;
  bytes?: number;
  total?: number;
  at: string;
}

export interface RunResult {
  runId: number;
  component: string;
  success: boolean;
  state: Outcome;
  message: string;
}

export class EngineError extends Error {
  constructor(
    readonly code: 'busy' | 'not_found' | 'bad_request' | 'no_backup' | 'closed' | 'insufficient_storage',
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface StartOptions {
  version?: string | null;
  dryRun?: boolean;
  mode?: RunMode;
  /**
   * The caller's own rule (the application's `updateFirst`), asked after the engine's refusals
   * (unknown component, a full disk, busy) and before the run is created: it throws to refuse.
   */
  admit?: () => void;
  /** Told the run's id once the run exists, before its first transition is committed and published. */
  created?: (runId: number) => void;
  /**
   * A fleet rollout's id: at most one run per rollout and component. When the rollout already
   * started one, that run is answered (`existing: true`) whatever it is doing, and nothing starts.
   */
  rollout?: string | null;
}

/** A run started, or (`existing`) the one its rollout had started already. */
export interface StartedRun {
  runId: number;
  existing?: true;
}

interface Snapshot {
  machineVersion: number;
  state: Phase;
  context: UpdateContext;
}

export interface EngineOptions {
  journal: Journal;
  components: EngineComponent[];
  driverFor: (component: EngineComponent) => Driver;
  logger: Logger;
  faults?: FaultPoints;
  /** Overrides of the machine's per-phase time limits (ms), e.g. for tests. */
  phaseTimeoutsMs?: Partial<Record<WorkPhase, number>>;
  /** First pause before a journal write that failed for want of storage is tried again (doubles up to 2 s). */
  storageRetryMs?: number;
}

/** At most one log line per this long about a journal that cannot be written. */
const UNWRITABLE_LOG_EVERY_MS = 10_000;
const MAX_STORAGE_RETRY_MS = 2_000;

const eventName = (type: string): string => {
  if (type === 'START') return 'start';
  if (type === 'BOOT') return 'recover';
  let m = /^xstate\.done\.actor\.(\w+)/.exec(type);
  if (m) return `${m[1]}.done`;
  m = /^xstate\.error\.actor\.(\w+)/.exec(type);
  if (m) return `${m[1]}.failed`;
  if (type.startsWith('xstate.after')) return 'timeout';
  return type;
};

export class Engine {
  readonly transitions = new Hub<Transition>();
  readonly progress = new Hub<ProgressEvent>();
  readonly results = new Hub<RunResult>();

  private readonly journal: Journal;
  private readonly log: Logger;
  private readonly faults: FaultPoints;
  private readonly components: Map<string, EngineComponent>;
  private readonly running = new Map<number, { actor: AnyActorRef; done: Promise<RunView>; settled: () => Promise<unknown> }>();
  private recovering = false;
  private closed = false;
  /** Aborted by close(): a journal write that keeps failing is then left to recovery. */
  private readonly stopping = new AbortController();
  /**
   * Per run, the transitions that could not be committed yet (a full disk), in order: the
   * promise settles when the newest of them is on disk. The run's next work waits for it.
   */
  private readonly unflushed = new Map<number, Promise<void>>();
  private lastUnwritableLog = 0;

  constructor(private readonly options: EngineOptions) {
    this.journal = options.journal;
    this.log = options.logger;
    this.faults = options.faults ?? new FaultPoints();
    this.components = new Map(options.components.map((c) => [c.name, c]));
  }

  get isRecovering(): boolean {
    return this.recovering;
  }

  component(name: string): EngineComponent | undefined {
    return this.components.get(name);
  }

  /** Starts a run; resolves with its id once the run exists (its phases go on in the background). */
  async startRun(name: string, options: StartOptions = {}): Promise<StartedRun> {
    if (this.closed) throw new EngineError('closed', 'the updater is shutting down');
    const component = this.components.get(name);
    if (!component) throw new EngineError('not_found', `no component named "${name}"`);
    // A repeat of a rollout's request: its run, before any refusal (it may be that very run that is busy).
    const rollout = options.rollout ?? null;
    const earlier = rollout ? this.journal.runOfRollout(rollout, name) : undefined;
    if (earlier !== undefined) return { runId: earlier, existing: true };
    // 507 wins over 409: while the journal cannot be written, no run can start.
    this.ensureWritable();
    if (this.recovering) throw new EngineError('busy', 'an interrupted run is being recovered; try again when it has finished');
    const active = this.journal.activeRun();
    if (active) throw new EngineError('busy', new BusyError(active).message);
    options.admit?.();

    const mode = options.mode ?? 'update';
    const driver = this.options.driverFor(component);
    let backup = null;
    let fromVersion: string | null = null;
    let toVersion: string | null = null;
    if (mode === 'restore') {
      const plan = driver.planRestore ? await driver.planRestore(name, this.log.child({ component: name })) : null;
      if (!plan) throw new EngineError('no_backup', `there is no backup of ${name} to restore`);
      backup = plan.backup;
      fromVersion = plan.currentVersion;
      toVersion = plan.version;
    }
    const requestedVersion = options.version ? options.version.replace(/^v/i, '') : null;

    let context!: UpdateContext;
    let runId: number;
    try {
      runId = this.journal.createRun({
        component: name,
        kind: component.kind,
        mode,
        requestedVersion,
        fromVersion,
        dryRun: options.dryRun ?? false,
        machineVersion: MACHINE_VERSION,
        rollout,
        snapshot: (id) => {
          context = newRunContext({
            runId: id,
            component: name,
            kind: component.kind,
            mode,
            dryRun: options.dryRun ?? false,
            requestedVersion,
            fromVersion,
            backup,
            phaseTimeoutsMs: this.timeoutsFor(component),
            ...(component.maxRecoveries !== undefined ? { maxRecoveries: component.maxRecoveries } : {}),
          });
          context.toVersion = toVersion;
          return serialize({ machineVersion: MACHINE_VERSION, state: 'idle', context });
        },
      });
    } catch (error) {
      // Started meanwhile by the same rollout (the journal checks in the transaction).
      if (error instanceof RolloutRunExistsError) return { runId: error.runId, existing: true };
      if (error instanceof BusyError) throw new EngineError('busy', error.message);
      if (error instanceof JournalUnwritableError) throw storageError(error);
      throw error;
    }
    options.created?.(runId);
    // The run goes on by itself; its end is in the journal and through waitForRun.
    void this.launch(runId, component, context, 'START');
    return { runId };
  }

  /** Resolves with the run as stored once it has ended (or immediately if it already has). */
  async waitForRun(runId: number): Promise<RunView> {
    const live = this.running.get(runId);
    if (live) return live.done;
    const run = this.journal.getRun(runId);
    if (!run) throw new EngineError('not_found', `no run ${runId}`);
    return run;
  }

  /**
   * Whether the journal can be written (for `/healthz`). While it cannot and no run is
   * retrying a write, asking probes it with one small write, at most once a second.
   */
  journalHealth(): { writable: boolean; error: string | null } {
    const health = this.journal.health;
    if (!health.writable && this.unflushed.size === 0 && Date.now() - this.lastProbe >= 1000) {
      this.lastProbe = Date.now();
      try {
        this.journal.probe();
      } catch (error) {
        if (!(error instanceof JournalUnwritableError)) throw error;
      }
    }
    const now = this.journal.health;
    return { writable: now.writable, error: now.error };
  }

  private lastProbe = 0;

  /**
   * Throws 507 while the journal cannot be written (a run is waiting for it, or a probe write
   * fails): no run can start. `startRun` asks it; so does a caller that must refuse before it
   * gets that far (an update of all, before its check).
   */
  ensureWritable(): void {
    if (this.journal.health.writable) return;
    if (this.unflushed.size === 0) {
      try {
        this.journal.probe();
        return;
      } catch (error) {
        if (!(error instanceof JournalUnwritableError)) throw error;
      }
    }
    throw storageError(new Error(this.journal.health.error ?? `cannot write the journal at ${this.journal.path}`));
  }

  /**
   * Runs a journal write until it goes through. A write that fails for want of storage (a
   * full disk, an I/O error) is tried again, first after `storageRetryMs`, then up to 2 s
   * apart, for as long as it takes: the caller does nothing more until it is on disk. Only
   * close() ends the wait (SIGTERM wins), and then the write is left to recovery.
   */
  private async durably<T>(write: () => T, what: string, signal?: AbortSignal): Promise<T> {
    const stop = signal ? AbortSignal.any([this.stopping.signal, signal]) : this.stopping.signal;
    let pause = this.options.storageRetryMs ?? 250;
    for (let attempt = 0; ; attempt++) {
      try {
        const result = write();
        if (attempt > 0) this.log.info({ path: this.journal.path }, `the journal can be written again: ${what} is on disk, and the run goes on`);
        return result;
      } catch (error) {
        if (!(error instanceof JournalUnwritableError)) throw error;
        this.reportUnwritable(error, what);
      }
      await sleep(pause, undefined, { signal: stop });
      pause = Math.min(pause * 2, MAX_STORAGE_RETRY_MS);
    }
  }

  private reportUnwritable(error: JournalUnwritableError, what: string): void {
    if (Date.now() - this.lastUnwritableLog < UNWRITABLE_LOG_EVERY_MS) return;
    this.lastUnwritableLog = Date.now();
    this.log.error({ path: error.path, code: 'journal_unwritable' }, `${error.message}; ${what} waits until it can be written (retrying; free space on that disk)`);
  }

  /** The unfinished run, if any (there is at most one). */
  activeRun(): { id: number; component: string; state: string } | null {
    return this.journal.activeRun() ?? null;
  }

  /**
   * Picks up every run the previous process left unfinished and drives it to an end, per
   * the recovery table. New runs are refused (busy) until this resolves.
   */
  async recover(): Promise<RunView[]> {
    this.recovering = true;
    try {
      const ended: RunView[] = [];
      for (const row of this.journal.unfinishedRuns()) {
        ended.push(await this.recoverRun(row));
      }
      await this.sweep();
      return ended;
    } finally {
      this.recovering = false;
    }
  }

  /** Lets every driver remove the temp files of settled runs (a crash may have skipped `finalize`). */
  private async sweep(): Promise<void> {
    const settled = (runId: number) => {
      const row = this.journal.getRunRow(runId);
      return row !== undefined && row.result !== null && row.result !== 'rollback_failed';
    };
    for (const component of this.components.values()) {
      try {
        await this.options.driverFor(component).sweep?.(settled, this.log.child({ component: component.name }));
      } catch (error) {
        this.log.warn({ err: error, component: component.name }, `clean-up of old temp files failed: ${(error as Error).message}`);
      }
    }
  }

  /**
   * Stops accepting runs and waits (up to `graceMs`) for the running ones to end; then stops
   * them (their work is signalled) and waits up to `settleMs` for that work to settle, so
   * nothing is left using the journal when the caller closes it. A stopped run stays
   * unfinished in the journal, in its last committed state: the next start recovers it.
   * The defaults keep a SIGTERM under 10 s whatever the run is doing.
   */
  async close(graceMs = 6_000, settleMs = 1_500): Promise<void> {
    this.closed = true;
    // A write that cannot reach the disk is not waited for: the run is left to recovery.
    this.stopping.abort(new EngineError('closed', 'the updater is shutting down'));
    const live = [...this.running.values()];
    if (live.length === 0) return;
    const within = (ms: number, work: Promise<unknown>[]) => Promise.race([Promise.all(work), sleep(ms, undefined, { ref: false })]);
    await within(graceMs, live.map((r) => r.done.catch(() => undefined)));
    for (const r of this.running.values()) {
      this.log.warn('stopping: the run in progress is left to the next start, which recovers it');
      r.actor.stop();
    }
    await within(settleMs, live.map((r) => r.settled()));
  }

  private async recoverRun(row: RunRow): Promise<RunView> {
    const log = this.log.child({ run_id: row.id, component: row.component });
    const giveUp = async (code: string, why: string): Promise<RunView> => {
      log.error({ code }, why);
      const commit: TransitionCommit = {
        runId: row.id,
        to: 'rollback_failed',
        event: 'recover',
        message: why,
        level: 'error',
        snapshot: row.snapshot,
        fromVersion: row.from_version,
        toVersion: row.to_version,
        recoveries: row.recoveries + 1,
        result: 'rollback_failed',
        error: { code, message: why },
      };
      const transition = await this.durably(() => this.journal.commitTransition(commit), `the end of run ${row.id}`);
      this.transitions.publish(transition);
      this.results.publish({ runId: row.id, component: row.component, success: false, state: 'rollback_failed', message: why });
      return this.journal.getRun(row.id)!;
    };

    // The stored run, read forward from the version that journaled it (machines/stored-run.ts).
    const parsed = parseStoredRun(row.snapshot, row.machine_version);
    if (!parsed.ok) {
      return giveUp(parsed.code, `Run ${row.id} of ${row.component} was interrupted in ${row.state} and ${parsed.reason}; manual intervention required. Nothing was deleted.`);
    }
    const backupPath = (parsed.context.backup as { path?: unknown } | null | undefined)?.path;
    const backupNote = typeof backupPath === 'string' ? ` The backup is at ${backupPath}.` : '';
    const read = upgradeStoredRun(parsed);
    if (!read.ok && read.code === 'recovery_version') {
      return giveUp(read.code, `Run ${row.id} of ${row.component} was interrupted in ${row.state}, but ${read.reason}. Manual intervention required.${backupNote} Nothing was deleted.`);
    }
    const component = this.components.get(row.component);
    if (!component) {
      return giveUp('recovery_unknown_component', `Run ${row.id} was interrupted in ${row.state}, but ${row.component} is no longer in the configuration; manual intervention required.${backupNote} Nothing was deleted.`);
    }
    if (!read.ok) {
      return giveUp(read.code, `Run ${row.id} of ${row.component} was interrupted in ${row.state} and ${read.reason}; manual intervention required.${backupNote} Nothing was deleted.`);
    }
    if (read.upgradedFrom !== null) {
      log.info({ machine_version: read.upgradedFrom }, `run ${row.id} was journaled by machine version ${read.upgradedFrom}; read forward to version ${MACHINE_VERSION}`);
    }
    const snapshot = read.run;
    log.warn({ state: row.state, recoveries: row.recoveries }, `recovering run ${row.id}, interrupted in ${row.state}`);
    const context: UpdateContext = { ...snapshot.context, resumedFrom: row.state as Phase, deadline: null };
    return this.launch(row.id, component, context, 'BOOT');
  }

  private timeoutsFor(component: EngineComponent): Partial<Record<WorkPhase, number>> {
    const t: Partial<Record<WorkPhase, number>> = { ...this.options.phaseTimeoutsMs };
    if (component.health?.timeoutSeconds !== undefined && t.verify === undefined) {
      // The driver polls health within timeoutSeconds; the machine's deadline is the hard stop behind it.
      t.verify = component.health.timeoutSeconds * 1000 + 60_000;
    }
    return t;
  }

  private launch(runId: number, component: EngineComponent, input: UpdateContext, first: 'START' | 'BOOT'): Promise<RunView> {
    const driver = this.options.driverFor(component);
    const log = this.log.child({ run_id: runId, component: component.name });
    let resumedPhase = first === 'BOOT';
    // A phase's work starts only once the previous phase's work has settled: a phase cut off
    // by its deadline is signalled to stop, and the rollback waits for it rather than racing it.
    let previous: Promise<unknown> = Promise.resolve();

    // Each actor gets the context as it stood when its state was entered (the machine's `input`).
    const work = <T>(phase: WorkPhase, fn: (run: UpdateContext, ctx: StepContext) => Promise<T>) =>
      fromPromise<T, PhaseInput>(({ input: phaseInput, signal }) => {
        // The state's own transition, when the disk refused it: on disk before the work starts.
        const committed = this.unflushed.get(runId);
        const mine = previous
          .catch(() => undefined)
          .then(async () => {
            await committed;
            signal.throwIfAborted();
            const ctx = this.stepContext(runId, component.name, phase, signal, log, resumedPhase);
            resumedPhase = false;
            try {
              return await fn(phaseInput.context, ctx);
            } finally {
              this.faults.duringEnd(phase);
            }
          });
        previous = mine;
        return mine;
      });

    const machine = updateMachine.provide({
      actions: {
        // Listed last in every state's entry: commits before that state's invoke starts.
        journal: ({ context, event }, params: { state: Phase }) => {
          this.commit(runId, params.state, context, eventName(event.type));
        },
      },
      actors: {
        discover: work<DiscoverOutput>('discover', (run, ctx) => driver.discover(run, ctx)),
        validate: work<void>('validate', (run, ctx) => driver.validate(run, ctx)),
        backup: work<BackupOutput>('backup', async (run, ctx) => ({ backup: await driver.backup(run, ctx) })),
        apply: work<ApplyOutput | void>('apply', (run, ctx) => driver.apply(run, ctx)),
        verify: work<void>('verify', (run, ctx) => driver.verify(run, ctx)),
        rollback: work<void>('rollback', (run, ctx) => driver.rollback(run, ctx)),
      },
    });

    const actor = createActor(machine, { input });
    const done = new Promise<RunView>((resolve, reject) => {
      actor.subscribe({
        complete: () => {
          const snap = actor.getSnapshot();
          if (snap.status !== 'done') {
            // Stopped by close() before an end state: nothing is finished or announced; the
            // journal keeps the last committed state, and the next start recovers the run.
            this.running.delete(runId);
            resolve(this.journal.getRun(runId)!);
            return;
          }
          // The end is announced once it is on disk (it may be waiting for space).
          const committed = this.unflushed.get(runId) ?? Promise.resolve();
          committed.then(
            () =>
              this.finish(runId, component, driver, snap.context, snap.value as Outcome, log).then(
                () => resolve(this.journal.getRun(runId)!),
                reject,
              ),
            () => {
              log.warn(`run ${runId} ended ${String(snap.value)}, but the updater stopped before that could be written; the next start recovers it`);
              this.running.delete(runId);
              resolve(this.journal.getRun(runId)!);
            },
          );
        },
        error: (error) => {
          // The journal could not commit (disk full, database gone): the entered state's work
          // never started. The run stays unfinished in the journal; the next start recovers it.
          log.error({ err: error }, `run ${runId} stopped: ${(error as Error).message}`);
          this.running.delete(runId);
          resolve(this.journal.getRun(runId)!);
        },
      });
    });
    this.running.set(runId, { actor, done, settled: () => previous.catch(() => undefined) });
    actor.start();
    actor.send({ type: first });
    return done;
  }

  /**
   * Commits a transition (called from the `journal` entry action, before the state's work
   * starts). When the disk refuses it, it is queued behind the run's other uncommitted
   * transitions and retried until it is on disk; the state's work waits for it (see `work`).
   * Any other failure throws: the actor errors and the work never starts.
   */
  private commit(runId: number, state: Phase, context: UpdateContext, event: string): void {
    const c = this.transitionCommit(runId, state, context, event);
    const committed = (transition: Transition) => {
      this.transitions.publish(transition);
      this.faults.afterCommit(state);
    };
    const behind = this.unflushed.get(runId);
    if (!behind) {
      try {
        committed(this.journal.commitTransition(c));
        return;
      } catch (error) {
        if (!(error instanceof JournalUnwritableError)) throw error;
        this.reportUnwritable(error, `run ${runId}'s move to ${state}`);
      }
    }
    const flushed = (behind ?? Promise.resolve()).then(() => this.durably(() => this.journal.commitTransition(c), `run ${runId}'s move to ${state}`)).then(committed);
    this.unflushed.set(runId, flushed);
    flushed.then(
      () => {
        if (this.unflushed.get(runId) === flushed) this.unflushed.delete(runId);
      },
      // Left in place: everything after an unwritten transition must stay unwritten.
      () => undefined,
    );
  }

  private transitionCommit(runId: number, state: Phase, context: UpdateContext, event: string): TransitionCommit {
    const { message, level } = describe(state, context, event);
    const terminal = isTerminal(state);
    const error = terminal
      ? state === 'rollback_failed'
        ? context.rollbackError
        : state === 'aborted' || state === 'rolled_back'
          ? context.failure
          : null
      : null;
    return {
      runId,
      to: state,
      event,
      message,
      level,
      snapshot: serialize({ machineVersion: MACHINE_VERSION, state, context }),
      fromVersion: context.fromVersion,
      toVersion: context.toVersion,
      recoveries: context.recoveries,
      result: terminal ? state : null,
      error: error ? { code: error.code, message: error.message } : null,
    };
  }

  private stepContext(runId: number, component: string, phase: WorkPhase, signal: AbortSignal, log: Logger, resumed: boolean): StepContext {
    const plog = log.child({ phase });
    return {
      runId,
      phase,
      signal,
      log: plog,
      resumed,
      step: async (record) => {
        await this.durably(() => this.journal.recordStep(runId, phase, record.step, record), `run ${runId}'s step "${record.step}"`, signal);
        this.faults.duringStep(phase);
      },
      // Journaled JSON, read back as the records they were (the kind checks their shape).
      stepsTaken: (p) => this.journal.steps(runId, p).map((row) => stepRecord(row) as StepRecord),
      progress: (message, extra) => {
        this.progress.publish({ runId, component, phase, message, ...extra, at: new Date().toISOString() });
      },
    };
  }

  private async finish(runId: number, component: EngineComponent, driver: Driver, context: UpdateContext, outcome: Outcome, log: Logger): Promise<void> {
    try {
      await driver.finalize?.(context, outcome, log);
    } catch (error) {
      log.warn({ err: error }, `clean-up after run ${runId} failed: ${(error as Error).message}`);
    }
    this.running.delete(runId);
    const run = this.journal.getRunRow(runId)!;
    const success = outcome === 'succeeded' || outcome === 'up_to_date' || outcome === 'validated';
    log.info({ outcome }, run.message ?? outcome);
    this.results.publish({ runId, component: component.name, success, state: outcome, message: run.message ?? outcome });
  }
}

function serialize(snapshot: Snapshot): string {
  return JSON.stringify(snapshot);
}

/** 507: the journal cannot be written, so no run may start (its first transition could not be kept). */
function storageError(cause: Error): EngineError {
  return new EngineError('insufficient_storage', `${cause.message}; no update can start until the journal can be written again (free space on that disk)`);
}
