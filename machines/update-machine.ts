/**
 * The update machine: one run of `discover → validate → backup → apply → verify →
 * succeeded | rollback`. Pure: no I/O. Work happens in the named promise actors
 * (`discover`, `validate`, `backup`, `apply`, `verify`, `rollback`) and the journal
 * write in the `journal` entry action; the engine supplies both with `machine.provide`.
 *
 * Durability rules (see ../docs/recovery.md and ../shared/XSTATE.md):
 * - The initial state `idle` is passive: no entry effects, no invoke. The engine sends
 *   START (a new run) or BOOT (a run found unfinished after a restart).
 * - Every state's entry list ends with `journal`, so the transition is committed before
 *   the state's invoked work starts.
 * - Snapshots of effectful states are never restored. Recovery creates a fresh actor
 *   with the saved context as input and sends BOOT; `recovering` routes by the
 *   recovery table.
 * - No `after` timers armed from saved state: each working state gets an absolute
 *   deadline in context on entry, and its delay is computed from it.
 */
import { assign, fromPromise, setup } from 'xstate';

/**
 * The version of the stored run (`{machineVersion, state, context}`): bump it when the context
 * shape or the state graph changes, and add the step that reads the previous version forward in
 * stored-run.ts. Stored with each run; a run stored by an older version is read forward, one
 * stored by a newer one is refused (recovery will not guess).
 */
export const MACHINE_VERSION = 2;

export const WORK_PHASES = ['discover', 'validate', 'backup', 'apply', 'verify', 'rollback'] as const;
export type WorkPhase = (typeof WORK_PHASES)[number];

export const TERMINAL_STATES = [
  'succeeded',
  'up_to_date',
  'validated',
  'aborted',
  'rolled_back',
  'rollback_failed',
] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

export type Phase = 'idle' | WorkPhase | TerminalState;

export function isTerminal(state: string): state is TerminalState {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}

export function isWorkPhase(state: string): state is WorkPhase {
  return (WORK_PHASES as readonly string[]).includes(state);
}

/** A failure as the machine keeps it: a code shared with the API and a sentence for people. */
export interface RunError {
  code: string;
  message: string;
  /** The phase whose work failed. */
  phase: WorkPhase | 'recovery';
  /** The driver vouches that the failed work changed nothing (e.g. a download failed before any swap). */
  nothingChanged?: boolean;
}

/** What the context keeps of what a kind needs: JSON, opaque to the machine and the engine. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Where the backup of this run is, as the driver described it. */
export interface BackupRef {
  /** Absolute path of the backup file. */
  path: string;
  /** Anything else the kind needs to restore (image id, old tree path...): its own record, which it checks when it reads it back. */
  details?: JsonObject;
}

/** `update`: the normal run. `restore`: a manual rollback to the newest backup. */
export type RunMode = 'update' | 'restore';

export interface UpdateContext {
  runId: number;
  component: string;
  kind: string;
  mode: RunMode;
  dryRun: boolean;
  /** The version the user asked for, or null for the latest. */
  requestedVersion: string | null;
  fromVersion: string | null;
  toVersion: string | null;
  /** Release facts from discover that later phases need (asset URL, tag...): src/releases/facts.ts reads them back. */
  release: JsonObject | null;
  backup: BackupRef | null;
  /** Absolute deadline (ms since epoch) of the phase being worked on. */
  deadline: number | null;
  /** How long each phase may take, in ms. */
  phaseTimeoutsMs: Record<WorkPhase, number>;
  /** How many times this run was picked up again after the process died. */
  recoveries: number;
  /**
   * How many recoveries this run may go through before it ends `rollback_failed` (since machine
   * version 2; a version 1 run reads as MAX_RECOVERIES). A kind whose run restarts the updater on
   * purpose (`self`) allows more: each start of the new release on trial is a recovery.
   */
  maxRecoveries: number;
  /** The state the previous process died in; set only on a recovered actor's input. */
  resumedFrom: Phase | null;
  /** The failure that ended or is being rolled back (apply/verify failure). */
  failure: RunError | null;
  /** A failure of the rollback itself. */
  rollbackError: RunError | null;
  /**
   * Sentences the kind's apply reported for the run's final message (e.g. the device files it
   * kept). Optional: runs journaled before it existed have none, so MACHINE_VERSION stays.
   */
  notes?: string[];
}

export interface DiscoverOutput {
  fromVersion: string | null;
  toVersion: string | null;
  upToDate: boolean;
  release?: JsonObject | null;
}

export interface BackupOutput {
  backup: BackupRef;
}

/** What apply may report: sentences for the final message ("kept app/config/x.conf ..."). */
export interface ApplyOutput {
  notes?: string[];
}

/** What every actor gets: the context as it stands when its state is entered. */
export interface PhaseInput {
  phase: WorkPhase;
  context: UpdateContext;
}

export type UpdateEvent =
  | { type: 'START' }
  | { type: 'BOOT' };

/** Most recoveries a run may go through by default; one more ends it `rollback_failed`. */
export const MAX_RECOVERIES = 3;

export const DEFAULT_PHASE_TIMEOUTS_MS: Record<WorkPhase, number> = {
  discover: 2 * 60_000,
  // validate downloads an app's release asset (a dry run too): as long as apply had for it.
  validate: 60 * 60_000,
  backup: 30 * 60_000,
  apply: 60 * 60_000,
  verify: 5 * 60_000,
  rollback: 30 * 60_000,
};

const missing = (name: string) =>
  fromPromise<never, PhaseInput>(async () => {
    throw new Error(`no "${name}" actor was provided to the update machine`);
  });

/** Turns whatever an actor threw into a RunError. */
export function toRunError(error: unknown, phase: RunError['phase']): RunError {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' && /^[a-z_]+$/.test(e.code) ? e.code : 'failed';
    // An object thrown without a message: its own toString(), if it has one.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    const message = typeof e.message === 'string' && e.message ? e.message : String(error);
    const nothingChanged = (error as { nothingChanged?: unknown }).nothingChanged === true;
    return nothingChanged ? { code, message, phase, nothingChanged } : { code, message, phase };
  }
  return { code: 'failed', message: String(error), phase };
}

const phaseInput =
  (phase: WorkPhase) =>
  ({ context }: { context: UpdateContext }): PhaseInput => ({ phase, context });

export const updateMachine = setup({
  types: {
    context: {} as UpdateContext,
    events: {} as UpdateEvent,
    input: {} as UpdateContext,
  },
  actors: {
    discover: missing('discover') as unknown as ReturnType<typeof fromPromise<DiscoverOutput, PhaseInput>>,
    validate: missing('validate') as unknown as ReturnType<typeof fromPromise<void, PhaseInput>>,
    backup: missing('backup') as unknown as ReturnType<typeof fromPromise<BackupOutput, PhaseInput>>,
    apply: missing('apply') as unknown as ReturnType<typeof fromPromise<ApplyOutput | void, PhaseInput>>,
    verify: missing('verify') as unknown as ReturnType<typeof fromPromise<void, PhaseInput>>,
    rollback: missing('rollback') as unknown as ReturnType<typeof fromPromise<void, PhaseInput>>,
  },
  actions: {
    /** Commits the transition into `params.state`. The engine provides it; inert here. */
    journal: (_args, _params: { state: Phase }) => {},
    /** Arms the phase's absolute deadline (never an `after` timer restored from a snapshot). */
    armDeadline: assign({
      deadline: ({ context }, params: { phase: WorkPhase }) => Date.now() + context.phaseTimeoutsMs[params.phase],
    }),
    timedOut: assign({
      failure: ({ context }, params: { phase: WorkPhase }): RunError => ({
        code: 'timeout',
        message: `${params.phase} did not finish within ${Math.round(context.phaseTimeoutsMs[params.phase] / 1000)} s`,
        phase: params.phase,
      }),
    }),
  },
  delays: {
    deadline: ({ context }) => Math.max(0, (context.deadline ?? Date.now()) - Date.now()),
  },
  guards: {
    overCap: ({ context }) => context.recoveries > context.maxRecoveries,
    resumeAtDiscover: ({ context }) =>
      context.resumedFrom === 'idle' || context.resumedFrom === 'discover' || context.resumedFrom === 'validate',
    resumeAtBackup: ({ context }) => context.resumedFrom === 'backup',
    resumeAtVerify: ({ context }) => context.resumedFrom === 'verify',
    resumeAtRollback: ({ context }) => context.resumedFrom === 'apply' || context.resumedFrom === 'rollback',
    isRestore: ({ context }) => context.mode === 'restore',
    isDryRun: ({ context }) => context.dryRun,
  },
}).createMachine({
  id: 'update',
  context: ({ input }) => input,
  initial: 'idle',
  states: {
    // Passive: XState starts an initial state's invoke before its entry actions run,
    // so nothing may happen here. The engine sends START or BOOT after start().
    idle: {
      on: {
        START: [{ guard: 'isRestore', target: 'rollback' }, { target: 'discover' }],
        BOOT: { target: 'recovering' },
      },
    },

    // Transient: picks where a recovered run goes, per the recovery table.
    recovering: {
      entry: assign({ recoveries: ({ context }) => context.recoveries + 1 }),
      always: [
        {
          guard: 'overCap',
          target: 'rollback_failed',
          actions: assign({
            rollbackError: ({ context }): RunError => ({
              code: 'recovery_limit',
              message: `the run was interrupted ${context.recoveries} times (last in ${context.resumedFrom}); giving up after ${context.maxRecoveries} recoveries`,
              phase: 'recovery',
            }),
          }),
        },
        { guard: 'resumeAtDiscover', target: 'discover' },
        { guard: 'resumeAtBackup', target: 'backup' },
        { guard: 'resumeAtVerify', target: 'verify' },
        { guard: 'resumeAtRollback', target: 'rollback' },
        {
          // A terminal or unknown saved state: nothing to resume, nothing safe to guess.
          target: 'rollback_failed',
          actions: assign({
            rollbackError: ({ context }): RunError => ({
              code: 'recovery_unknown_state',
              message: `cannot resume a run saved in state "${context.resumedFrom}"`,
              phase: 'recovery',
            }),
          }),
        },
      ],
    },

    discover: {
      entry: [{ type: 'armDeadline', params: { phase: 'discover' } }, { type: 'journal', params: { state: 'discover' } }],
      invoke: {
        id: 'discover',
        src: 'discover',
        input: phaseInput('discover'),
        onDone: [
          {
            guard: ({ event }) => event.output.upToDate,
            target: 'up_to_date',
            actions: assign({
              fromVersion: ({ event }) => event.output.fromVersion,
              toVersion: ({ event }) => event.output.toVersion,
              release: ({ event }) => event.output.release ?? null,
            }),
          },
          {
            target: 'validate',
            actions: assign({
              fromVersion: ({ event }) => event.output.fromVersion,
              toVersion: ({ event }) => event.output.toVersion,
              release: ({ event }) => event.output.release ?? null,
            }),
          },
        ],
        onError: {
          target: 'aborted',
          actions: assign({ failure: ({ event }) => toRunError(event.error, 'discover') }),
        },
      },
      after: { deadline: { target: 'aborted', actions: { type: 'timedOut', params: { phase: 'discover' } } } },
    },

    validate: {
      entry: [{ type: 'armDeadline', params: { phase: 'validate' } }, { type: 'journal', params: { state: 'validate' } }],
      invoke: {
        id: 'validate',
        src: 'validate',
        input: phaseInput('validate'),
        onDone: [{ guard: 'isDryRun', target: 'validated' }, { target: 'backup' }],
        onError: {
          target: 'aborted',
          actions: assign({ failure: ({ event }) => toRunError(event.error, 'validate') }),
        },
      },
      after: { deadline: { target: 'aborted', actions: { type: 'timedOut', params: { phase: 'validate' } } } },
    },

    backup: {
      entry: [{ type: 'armDeadline', params: { phase: 'backup' } }, { type: 'journal', params: { state: 'backup' } }],
      invoke: {
        id: 'backup',
        src: 'backup',
        input: phaseInput('backup'),
        onDone: {
          target: 'apply',
          actions: assign({ backup: ({ event }) => event.output.backup }),
        },
        onError: {
          target: 'aborted',
          actions: assign({ failure: ({ event }) => toRunError(event.error, 'backup') }),
        },
      },
      after: { deadline: { target: 'aborted', actions: { type: 'timedOut', params: { phase: 'backup' } } } },
    },

    apply: {
      entry: [{ type: 'armDeadline', params: { phase: 'apply' } }, { type: 'journal', params: { state: 'apply' } }],
      invoke: {
        id: 'apply',
        src: 'apply',
        input: phaseInput('apply'),
        onDone: {
          target: 'verify',
          actions: assign({ notes: ({ event }) => (event.output && Array.isArray(event.output.notes) ? event.output.notes.filter((n) => typeof n === 'string' && n !== '') : []) }),
        },
        onError: [
          {
            // Failed before any effect (download, checksum, extraction, pull): nothing to undo.
            guard: ({ event }) => (event.error as { nothingChanged?: unknown } | undefined)?.nothingChanged === true,
            target: 'aborted',
            actions: assign({ failure: ({ event }) => toRunError(event.error, 'apply') }),
          },
          {
            target: 'rollback',
            actions: assign({ failure: ({ event }) => toRunError(event.error, 'apply') }),
          },
        ],
      },
      after: { deadline: { target: 'rollback', actions: { type: 'timedOut', params: { phase: 'apply' } } } },
    },

    verify: {
      entry: [{ type: 'armDeadline', params: { phase: 'verify' } }, { type: 'journal', params: { state: 'verify' } }],
      invoke: {
        id: 'verify',
        src: 'verify',
        input: phaseInput('verify'),
        onDone: { target: 'succeeded' },
        onError: {
          target: 'rollback',
          actions: assign({ failure: ({ event }) => toRunError(event.error, 'verify') }),
        },
      },
      after: { deadline: { target: 'rollback', actions: { type: 'timedOut', params: { phase: 'verify' } } } },
    },

    rollback: {
      entry: [{ type: 'armDeadline', params: { phase: 'rollback' } }, { type: 'journal', params: { state: 'rollback' } }],
      invoke: {
        id: 'rollback',
        src: 'rollback',
        input: phaseInput('rollback'),
        onDone: { target: 'rolled_back' },
        onError: {
          target: 'rollback_failed',
          actions: assign({ rollbackError: ({ event }) => toRunError(event.error, 'rollback') }),
        },
      },
      after: {
        deadline: {
          target: 'rollback_failed',
          actions: assign({
            rollbackError: ({ context }): RunError => ({
              code: 'timeout',
              message: `rollback did not finish within ${Math.round(context.phaseTimeoutsMs.rollback / 1000)} s`,
              phase: 'rollback',
            }),
          }),
        },
      },
    },

    succeeded: { type: 'final', entry: [{ type: 'journal', params: { state: 'succeeded' } }] },
    up_to_date: { type: 'final', entry: [{ type: 'journal', params: { state: 'up_to_date' } }] },
    validated: { type: 'final', entry: [{ type: 'journal', params: { state: 'validated' } }] },
    aborted: { type: 'final', entry: [{ type: 'journal', params: { state: 'aborted' } }] },
    rolled_back: { type: 'final', entry: [{ type: 'journal', params: { state: 'rolled_back' } }] },
    rollback_failed: { type: 'final', entry: [{ type: 'journal', params: { state: 'rollback_failed' } }] },
  },
});

export type UpdateMachine = typeof updateMachine;

/** A fresh context for a new run. */
export function newRunContext(init: {
  runId: number;
  component: string;
  kind: string;
  mode?: RunMode;
  dryRun?: boolean;
  requestedVersion?: string | null;
  fromVersion?: string | null;
  backup?: BackupRef | null;
  phaseTimeoutsMs?: Partial<Record<WorkPhase, number>>;
  maxRecoveries?: number;
}): UpdateContext {
  return {
    runId: init.runId,
    component: init.component,
    kind: init.kind,
    mode: init.mode ?? 'update',
    dryRun: init.dryRun ?? false,
    requestedVersion: init.requestedVersion ?? null,
    fromVersion: init.fromVersion ?? null,
    toVersion: null,
    release: null,
    backup: init.backup ?? null,
    deadline: null,
    phaseTimeoutsMs: { ...DEFAULT_PHASE_TIMEOUTS_MS, ...init.phaseTimeoutsMs },
    recoveries: 0,
    maxRecoveries: init.maxRecoveries ?? MAX_RECOVERIES,
    resumedFrom: null,
    failure: null,
    rollbackError: null,
  };
}
