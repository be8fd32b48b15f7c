/**
 * The rollout machine: one fleet rollout of `canary → batches → done | halted`. Pure: no I/O.
 * The work happens in two named promise actors the console supplies with `machine.provide`:
 * `startGroup` (ask every device of the current group that has not been asked yet to start its
 * run) and `awaitGroup` (wait until every started run of the group has ended). The `journal`
 * entry action, listed last, persists the context as the rollout's record (KV `dune_rollouts`)
 * before the state's work begins.
 *
 * Durability rules (the same as machines/update-machine.ts, ../shared/XSTATE.md):
 * - The initial state `idle` is passive. The console sends START (a new rollout) or BOOT (a
 *   rollout read back from its record: a fresh actor with the stored context as input and
 *   `resumedFrom` = the stored state); `route` picks where it goes on.
 * - No `after` timers: waiting for a group's runs has no machine-level timer; the console's
 *   `awaitGroup` keeps its own limit (restarted when a rollout is resumed).
 * - Every start request carries the rollout id, and the device starts at most one run per rollout
 *   and component: asking again after a restart gets the same run. A device whose result is
 *   final (skipped, or an end state) is never asked again.
 */
import { assign, fromPromise, setup } from 'xstate';
import type { RolloutDevice, RolloutRecord } from '../src/contract/fleet.js';

/** The record's `format`: bump it when the context or the state graph changes. */
export const ROLLOUT_FORMAT = 1;

export type RolloutState = RolloutRecord['state'];
/** Where the machine is, as the record stores it: `canary` and `batches` cover both of their steps. */
export type RolloutPhase = 'idle' | RolloutState;

/** Run end states that count as a success; any other end state is a failure. */
export const GOOD_RESULTS: readonly string[] = ['succeeded', 'up_to_date'];
export const PENDING = 'pending';
export const SKIPPED = 'skipped';

export interface RolloutContext {
  id: string;
  component: string;
  version: string;
  /** In group order: the canary group first, then `batch-1`, `batch-2`, … */
  devices: RolloutDevice[];
  canary: number;
  batch: number;
  max_failures: number;
  /** Index of the group being worked on, into `groupsOf(devices)`. */
  group_index: number;
  created_at: string;
  updated_at: string;
  /** The state a resumed rollout was stored in; only on a resumed actor's input. */
  resumedFrom: RolloutPhase | null;
  /** Why the console stopped driving the rollout (the bus or the store went away): not a rollout state, and never stored. */
  interruption: { code: string; message: string } | null;
}

/** What a device of the group became: merged into `devices` by name. */
export interface DeviceUpdate {
  device: string;
  result: string;
  run_id: number | null;
  reason: string | null;
}

/** What `startGroup` and `awaitGroup` get. */
export interface GroupInput {
  id: string;
  component: string;
  version: string;
  group: string;
  /** `startGroup`: the group's devices not asked yet (pending, no run). `awaitGroup`: its started runs not ended yet. */
  devices: RolloutDevice[];
}

export type RolloutEvent = { type: 'START' } | { type: 'BOOT' };

/** The names of the groups, in order. */
export function groupsOf(devices: readonly RolloutDevice[]): string[] {
  const groups: string[] = [];
  for (const d of devices) if (!groups.includes(d.group)) groups.push(d.group);
  return groups;
}

/** Whether a device's result is final: it is never asked again by this rollout. */
export function isFinal(d: RolloutDevice): boolean {
  return d.result !== PENDING;
}

/**
 * Whether a device counts as failed: its run ended in anything but succeeded/up_to_date, or its
 * group ended with its run's result still unknown (awaitGroup gave up waiting and said why).
 */
export function isFailed(d: RolloutDevice): boolean {
  if (d.result === SKIPPED) return false;
  if (d.result === PENDING) return d.run_id !== null && d.reason !== null;
  return !GOOD_RESULTS.includes(d.result);
}

export function failures(devices: readonly RolloutDevice[]): number {
  return devices.filter(isFailed).length;
}

const currentGroup = (context: RolloutContext): string | undefined => groupsOf(context.devices)[context.group_index];

/** The current group's pending devices: those still to start (`started` false) or those started and not yet ended. */
const groupInput = (context: RolloutContext, started: boolean): GroupInput => {
  const group = currentGroup(context) ?? '';
  return {
    id: context.id,
    component: context.component,
    version: context.version,
    group,
    devices: context.devices.filter((d) => d.group === group && d.result === PENDING && (d.run_id !== null) === started),
  };
};
const toStart = (context: RolloutContext): GroupInput => groupInput(context, false);
const toAwait = (context: RolloutContext): GroupInput => groupInput(context, true);

/** Merges what the group's devices became; a device not in `updates` keeps its row. */
export function merge(devices: readonly RolloutDevice[], updates: readonly DeviceUpdate[]): RolloutDevice[] {
  const byName = new Map(updates.map((u) => [u.device, u]));
  return devices.map((d) => {
    const u = byName.get(d.device);
    // A final result is never replaced (a late or repeated answer cannot undo it).
    if (!u || isFinal(d)) return d;
    return { ...d, result: u.result, run_id: u.run_id ?? d.run_id, reason: u.reason };
  });
}

function interruption(error: unknown): { code: string; message: string } {
  const e = (error ?? {}) as { code?: unknown; message?: unknown };
  return { code: typeof e.code === 'string' ? e.code : 'failed', message: typeof e.message === 'string' && e.message ? e.message : String(error) };
}

const missing = (name: string) =>
  fromPromise<never, GroupInput>(async () => {
    throw new Error(`no "${name}" actor was provided to the rollout machine`);
  });

/** A group's two states (the canary's and the batches' are the same): its record is written before each. */
const group = (state: 'canary' | 'batches') =>
  ({
    initial: 'starting',
    states: {
      starting: {
        entry: ['stamp', { type: 'journal', params: { state } }],
        invoke: { id: 'startGroup', src: 'startGroup', input: ({ context }: { context: RolloutContext }) => toStart(context), onDone: { target: 'waiting', actions: 'mergeStarted' }, onError: { target: '#rollout.interrupted', actions: 'interrupt' } },
      },
      waiting: {
        // The runs just started (their ids) are on record before the wait.
        entry: ['stamp', { type: 'journal', params: { state } }],
        invoke: { id: 'awaitGroup', src: 'awaitGroup', input: ({ context }: { context: RolloutContext }) => toAwait(context), onDone: { target: '#rollout.judge', actions: 'mergeEnded' }, onError: { target: '#rollout.interrupted', actions: 'interrupt' } },
      },
    },
  }) as const;

export const rolloutMachine = setup({
  types: {
    context: {} as RolloutContext,
    events: {} as RolloutEvent,
    input: {} as RolloutContext,
  },
  actors: {
    startGroup: missing('startGroup') as unknown as ReturnType<typeof fromPromise<DeviceUpdate[], GroupInput>>,
    awaitGroup: missing('awaitGroup') as unknown as ReturnType<typeof fromPromise<DeviceUpdate[], GroupInput>>,
  },
  actions: {
    /** Persists the context as the record, in `params.state`. The console provides it; inert here. */
    journal: (_args, _params: { state: RolloutState }) => {},
    stamp: assign({ updated_at: () => new Date().toISOString() }),
    /** The runs a group's start reported (their ids, or why a device was skipped). */
    mergeStarted: assign({ devices: ({ context, event }) => merge(context.devices, (event as unknown as { output: DeviceUpdate[] }).output) }),
    /** The group's ends; the next group is the one to work on. */
    mergeEnded: assign({
      devices: ({ context, event }) => merge(context.devices, (event as unknown as { output: DeviceUpdate[] }).output),
      group_index: ({ context }) => context.group_index + 1,
    }),
    interrupt: assign({ interruption: ({ event }) => interruption((event as unknown as { error: unknown }).error) }),
  },
  guards: {
    resumeDone: ({ context }) => context.resumedFrom === 'done',
    resumeHalted: ({ context }) => context.resumedFrom === 'halted',
    resumeWorking: ({ context }) => context.resumedFrom === 'canary' || context.resumedFrom === 'batches' || context.resumedFrom === 'idle',
    tooManyFailures: ({ context }) => failures(context.devices) > context.max_failures,
    noGroupLeft: ({ context }) => context.group_index >= groupsOf(context.devices).length,
    isCanaryGroup: ({ context }) => currentGroup(context) === 'canary',
  },
}).createMachine({
  id: 'rollout',
  context: ({ input }) => input,
  initial: 'idle',
  states: {
    // Passive (XState starts an initial state's invoke before its entry actions).
    idle: {
      on: {
        START: { target: 'next', actions: assign({ group_index: 0 }) },
        BOOT: { target: 'route' },
      },
    },

    // Transient: where a resumed rollout goes on. A finished one is only written again.
    route: {
      always: [
        { guard: 'resumeDone', target: 'done' },
        { guard: 'resumeHalted', target: 'halted' },
        // The failures may already be over the limit (killed between a group's end and the halt).
        { guard: 'resumeWorking', target: 'judge' },
        { target: 'interrupted', actions: assign({ interruption: ({ context }) => ({ code: 'unknown_state', message: `cannot resume a rollout stored in state "${context.resumedFrom}"` }) }) },
      ],
    },

    // Transient: after a group (or on resume), halt or go on with the group at group_index.
    judge: {
      always: [{ guard: 'tooManyFailures', target: 'halted' }, { target: 'next' }],
    },

    // Transient: the group at group_index (the canary, a batch), or done when none is left.
    next: {
      always: [{ guard: 'noGroupLeft', target: 'done' }, { guard: 'isCanaryGroup', target: 'canary' }, { target: 'batches' }],
    },

    // The canary and each batch alike: start the group's runs once the record says so, then wait for their ends.
    canary: group('canary'),
    batches: group('batches'),

    done: { type: 'final', entry: ['stamp', { type: 'journal', params: { state: 'done' } }] },
    halted: { type: 'final', entry: ['stamp', { type: 'journal', params: { state: 'halted' } }] },
    // The console could not go on (the bus or the store failed): not stored; `fleet resume` picks it up.
    interrupted: { type: 'final' },
  },
});

export type RolloutMachine = typeof rolloutMachine;

/** The devices in groups: the first `canary` are the canary, the rest in batches of `batch`. */
export function planDevices(names: readonly string[], canary: number, batch: number): RolloutDevice[] {
  return names.map((device, i) => ({
    device,
    group: i < canary ? 'canary' : `batch-${Math.floor((i - canary) / batch) + 1}`,
    result: PENDING,
    run_id: null,
    reason: null,
  }));
}

/** A fresh rollout's context. */
export function newRolloutContext(init: { id: string; component: string; version: string; devices: readonly string[]; canary: number; batch: number; maxFailures: number; now?: Date }): RolloutContext {
  const at = (init.now ?? new Date()).toISOString();
  return {
    id: init.id,
    component: init.component,
    version: init.version,
    devices: planDevices(init.devices, init.canary, init.batch),
    canary: init.canary,
    batch: init.batch,
    max_failures: init.maxFailures,
    group_index: 0,
    created_at: at,
    updated_at: at,
    resumedFrom: null,
    interruption: null,
  };
}

/** The record a state stores (KV `dune_rollouts`). */
export function toRecord(context: RolloutContext, state: RolloutState): RolloutRecord {
  return {
    format: ROLLOUT_FORMAT,
    id: context.id,
    component: context.component,
    version: context.version,
    state,
    devices: context.devices,
    canary: context.canary,
    batch: context.batch,
    max_failures: context.max_failures,
    group_index: context.group_index,
    created_at: context.created_at,
    updated_at: context.updated_at,
  };
}

/** A resumed actor's input: the stored record, and the state it was stored in. */
export function fromRecord(record: RolloutRecord): RolloutContext {
  return {
    id: record.id,
    component: record.component,
    version: record.version,
    devices: record.devices,
    canary: record.canary,
    batch: record.batch,
    max_failures: record.max_failures,
    group_index: record.group_index,
    created_at: record.created_at,
    updated_at: record.updated_at,
    resumedFrom: record.state,
    interruption: null,
  };
}
