/**
 * What a component kind supplies to the engine: the work of each phase. Each method is
 * called when its state is entered, after the transition is committed; it must be
 * idempotent (the journal can be one step ahead of the disk after a crash) and should
 * honour `ctx.signal`. Throw an `UpdateError` to fail the phase with a code and a sentence.
 */
import type { Logger } from 'pino';
import type { ApplyOutput, BackupRef, DiscoverOutput, JsonValue, UpdateContext, WorkPhase } from '../../machines/update-machine.js';

/**
 * A sub-step of a phase, as data: `{step: 'pull', ref: 'registry/app:1.2.0'}`. `step` names it
 * (the kind's own names); the rest is what rollback or recovery needs to know of it.
 */
export type StepRecord = { readonly step: string } & { readonly [key: string]: JsonValue };

export interface StepContext {
  readonly runId: number;
  readonly phase: WorkPhase;
  /** Aborted when the phase is cancelled (timeout, shutdown). */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** True when this phase was entered again after the process died in it or in a later phase. */
  readonly resumed: boolean;
  /**
   * Commits the intent row of a sub-step, the record as JSON: await it before doing the sub-step.
   * When the disk is full it waits (retrying) until the row is on disk.
   */
  step(record: StepRecord): Promise<void>;
  /**
   * The sub-steps recorded for this run (optionally of one phase), oldest first, as recorded. A
   * step journaled by an updater before records were used comes as `{step: <its sentence>, ...its
   * detail}` (e.g. `{step: 'pull image', ref}`): the kind that wrote it reads both forms.
   */
  stepsTaken(phase?: WorkPhase): StepRecord[];
  /** A progress message within the phase (pull or download progress): published, not journaled. */
  progress(message: string, extra?: { percent?: number; bytes?: number; total?: number }): void;
}

export interface RestorePlan {
  backup: BackupRef;
  /** The version the backup holds, when known. */
  version: string | null;
  /** The version installed now, when known. */
  currentVersion: string | null;
}

export type Outcome = 'succeeded' | 'up_to_date' | 'validated' | 'aborted' | 'rolled_back' | 'rollback_failed';

export interface Driver {
  discover(run: UpdateContext, ctx: StepContext): Promise<DiscoverOutput>;
  validate(run: UpdateContext, ctx: StepContext): Promise<void>;
  backup(run: UpdateContext, ctx: StepContext): Promise<BackupRef>;
  /** May report sentences for the final message (`notes`), e.g. the device files it kept. */
  apply(run: UpdateContext, ctx: StepContext): Promise<ApplyOutput | void>;
  verify(run: UpdateContext, ctx: StepContext): Promise<void>;
  rollback(run: UpdateContext, ctx: StepContext): Promise<void>;
  /** After the run ended and its end was committed: clean temp files, prune old backups. Best effort. */
  finalize?(run: UpdateContext, outcome: Outcome, log: Logger): Promise<void>;
  /** For a manual rollback: the newest backup to restore, or null when there is none. */
  planRestore?(component: string, log: Logger): Promise<RestorePlan | null>;
  /**
   * On boot, after recovery: remove temp files of runs that are settled (ended, and not
   * rollback_failed, whose leftovers a person may need). Covers a crash between a run's end
   * and its `finalize`.
   */
  sweep?(settled: (runId: number) => boolean, log: Logger): Promise<void>;
}
