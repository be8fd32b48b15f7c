/**
 * Runs the rollout machine (machines/rollout-machine.ts) against the fleet: its actors' I/O on
 * NATS, and its journal in the KV bucket `dune_rollouts`.
 *
 * - journal: the entry action queues the record's write; `startGroup` and `awaitGroup` wait for
 *   every queued write before they do anything, so a state's work never starts before its record
 *   is stored (and never starts at all if the write failed). Writes are compare-and-set on the
 *   key's revision: a second console driving the same rollout makes the other one stop.
 * - startGroup: for each device of the group, its record in `dune_devices` (missing or older than
 *   ONLINE_WITHIN_MS = offline = skipped), then `dune.<device>.updater.perform_update` with
 *   `{component, version, rollout}`: a `run` reply is the run (ended already when `result` is
 *   set); `error` `busy` = skipped; any other error = refused (a failure); no responders or no
 *   answer = skipped.
 * - awaitGroup: each started run's `update_result` on `dune.<device>.events.update_result`, and
 *   the same perform_update asked again every `pollMs` (it answers the same run, with `result`
 *   once it has ended), until every run has ended or `groupTimeoutMs` has passed (then the runs
 *   still going stay pending with a reason, and count as failed).
 */
import { createActor, fromPromise } from 'xstate';
import { ErrorCode, JSONCodec, type KV, type NatsConnection, type Subscription } from 'nats';
import { eventSubject, requestSubject, runReply, ROLLOUTS_BUCKET, rolloutRecord, type RolloutRecord } from '../contract/fleet.js';
import { resultBody } from '../contract/shapes.js';
import {
  failures,
  fromRecord,
  GOOD_RESULTS,
  groupsOf,
  PENDING,
  ROLLOUT_FORMAT,
  rolloutMachine,
  SKIPPED,
  toRecord,
  type DeviceUpdate,
  type GroupInput,
  type RolloutContext,
  type RolloutState,
} from '../../machines/rollout-machine.js';
import { readDevice, isOnline } from './devices.js';
import { describe, FleetError } from './bus.js';

const codec = JSONCodec();

export interface RolloutIo {
  nc: NatsConnection;
  devices: KV;
  rollouts: KV;
}

export interface RunOptions {
  /** How long to wait for one answer to perform_update. */
  requestTimeoutMs?: number;
  /** How often a started run's device is asked again. */
  pollMs?: number;
  /** How long a group's runs may take before the console stops waiting for them. */
  groupTimeoutMs?: number;
  /** Progress lines for people. */
  say?: (line: string) => void;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_POLL_MS = 2000;
export const DEFAULT_GROUP_TIMEOUT_MS = 2 * 60 * 60_000;

export interface RolloutOutcome {
  /** `interrupted`: the console could not go on (the record is as last stored; `fleet resume` picks it up). */
  state: RolloutState | 'interrupted';
  context: RolloutContext;
  record: RolloutRecord | null;
}

/** `r-YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits). */
export function newRolloutId(now = new Date()): string {
  const iso = now.toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  const random = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0');
  return `r-${stamp}-${random}`;
}

/** A rollout's record and its revision, or null when there is none. */
export async function loadRollout(kv: KV, id: string): Promise<{ record: RolloutRecord; revision: number } | null> {
  const entry = await kv.get(id);
  if (!entry || entry.operation !== 'PUT') return null;
  let value: unknown;
  try {
    value = entry.json();
  } catch {
    throw new FleetError(`the record of rollout ${id} in ${ROLLOUTS_BUCKET} is not JSON`, 3);
  }
  const format = (value as { format?: unknown } | null)?.format;
  if (format !== ROLLOUT_FORMAT) throw new FleetError(`the record of rollout ${id} has format ${JSON.stringify(format)}; this console reads format ${ROLLOUT_FORMAT} only`, 3);
  const parsed = rolloutRecord.safeParse(value);
  if (!parsed.success) throw new FleetError(`the record of rollout ${id} in ${ROLLOUTS_BUCKET} is not a rollout record: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 3);
  return { record: parsed.data, revision: entry.revision };
}

/** A problem that stops the console (not a device's): the machine ends `interrupted`. */
class Interrupted extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * Drives one rollout to its end (done, halted), or until the console cannot go on. `revision`:
 * the stored record's revision for a resumed rollout (null for a new one, whose first write
 * creates the key and fails if it exists).
 */
export async function runRollout(io: RolloutIo, context: RolloutContext, first: 'START' | 'BOOT', revision: number | null, options: RunOptions = {}): Promise<RolloutOutcome> {
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const groupTimeoutMs = options.groupTimeoutMs ?? DEFAULT_GROUP_TIMEOUT_MS;
  const say = options.say ?? (() => {});

  // The journal: one write after another, each on the revision the previous one left.
  let stored = revision;
  let lastRecord: RolloutRecord | null = null;
  let writes: Promise<void> = Promise.resolve();
  const journal = (record: RolloutRecord) => {
    writes = writes.then(async () => {
      const data = codec.encode(record);
      try {
        stored = stored === null ? await io.rollouts.create(record.id, data) : await io.rollouts.update(record.id, data, stored);
        lastRecord = record;
      } catch (error) {
        const message = /wrong last sequence|key exists/i.test(String((error as Error).message))
          ? `the record of rollout ${record.id} was changed by someone else (another console resuming it?); this console stops`
          : `cannot store rollout ${record.id} in ${ROLLOUTS_BUCKET}: ${describe(error)}`;
        throw new Interrupted(message, 'journal');
      }
    });
  };

  const ask = async (device: string, input: GroupInput): Promise<{ subject: string; body: unknown }> => {
    const reply = await io.nc.request(requestSubject(device, 'updater.perform_update'), codec.encode({ component: input.component, version: input.version, rollout: input.id }), { timeout: requestTimeoutMs });
    const envelope = codec.decode(reply.data) as { subject?: unknown; body?: unknown } | null;
    if (!envelope || typeof envelope.subject !== 'string') throw new Error('the reply is not a {subject, body} envelope');
    return { subject: envelope.subject, body: envelope.body };
  };

  /** What a perform_update reply makes of a device (null: a run still going). */
  const fromRun = (device: string, body: unknown): DeviceUpdate => {
    const run = runReply.parse(body);
    if (run.result === null) return { device, result: PENDING, run_id: run.run_id, reason: null };
    return { device, result: run.result, run_id: run.run_id, reason: GOOD_RESULTS.includes(run.result) ? null : run.message };
  };

  const startOne = async (device: string, input: GroupInput): Promise<DeviceUpdate> => {
    const record = await readDevice(io.devices, device);
    if (!record) return { device, result: SKIPPED, run_id: null, reason: `offline: no record in dune_devices` };
    if (!isOnline(record)) return { device, result: SKIPPED, run_id: null, reason: `offline: last seen ${record.updated_at}` };
    let reply;
    try {
      reply = await ask(device, input);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === ErrorCode.NoResponders) return { device, result: SKIPPED, run_id: null, reason: 'not answering: no responders on its subject' };
      if (code === ErrorCode.Timeout) return { device, result: SKIPPED, run_id: null, reason: `not answering: no reply within ${Math.round(requestTimeoutMs / 1000)} s` };
      if (!io.nc.isClosed()) return { device, result: SKIPPED, run_id: null, reason: `not answering: ${describe(error)}` };
      throw new Interrupted(`the connection to NATS is closed: ${describe(error)}`, 'nats');
    }
    if (reply.subject === 'run') {
      try {
        return fromRun(device, reply.body);
      } catch {
        return { device, result: 'refused', run_id: null, reason: 'the reply to perform_update is not a run' };
      }
    }
    const err = (reply.body ?? {}) as { code?: unknown; message?: unknown };
    const what = `${typeof err.code === 'string' ? err.code : 'error'}: ${typeof err.message === 'string' ? err.message : JSON.stringify(reply.body)}`;
    if (reply.subject === 'error' && err.code === 'busy') return { device, result: SKIPPED, run_id: null, reason: `busy: ${typeof err.message === 'string' ? err.message : 'another run is active'}` };
    return { device, result: 'refused', run_id: null, reason: reply.subject === 'error' ? what : `unexpected reply "${reply.subject}"` };
  };

  const startGroup = fromPromise<DeviceUpdate[], GroupInput>(async ({ input }) => {
    await writes;
    if (input.devices.length) say(`${input.group}: starting ${input.devices.map((d) => d.device).join(', ')}`);
    const updates = await Promise.all(input.devices.map((d) => startOne(d.device, input)));
    for (const u of updates) {
      if (u.result === PENDING) say(`  ${u.device}: run ${u.run_id} started`);
      else if (u.result === SKIPPED) say(`  ${u.device}: skipped (${u.reason})`);
      else say(`  ${u.device}: ${u.result}${u.reason ? ` (${u.reason})` : ''}`);
    }
    return updates;
  });

  const awaitGroup = fromPromise<DeviceUpdate[], GroupInput>(async ({ input, signal }) => {
    await writes;
    const waiting = new Map(input.devices.map((d) => [d.device, d.run_id!]));
    const ended: DeviceUpdate[] = [];
    if (waiting.size === 0) return ended;
    const subs: Subscription[] = [];
    let wake: () => void = () => {};
    const end = (update: DeviceUpdate) => {
      if (!waiting.has(update.device)) return;
      waiting.delete(update.device);
      ended.push(update);
      say(`  ${update.device}: ${update.result}${update.reason ? ` (${update.reason})` : ''}`);
      if (waiting.size === 0) wake();
    };
    try {
      for (const [device, runId] of waiting) {
        const sub = io.nc.subscribe(eventSubject(device, 'update_result'), {
          callback: (err, msg) => {
            if (err) return;
            try {
              const envelope = codec.decode(msg.data) as { subject?: unknown; body?: unknown };
              const body = resultBody.safeParse(envelope?.body);
              if (!body.success || body.data.run_id !== runId || body.data.component !== input.component) return;
              end({ device, result: body.data.state, run_id: runId, reason: GOOD_RESULTS.includes(body.data.state) ? null : body.data.message });
            } catch {
              // not an envelope: not ours
            }
          },
        });
        subs.push(sub);
      }
      const deadline = Date.now() + groupTimeoutMs;
      while (waiting.size > 0 && !signal.aborted && Date.now() < deadline) {
        // Ask again: the same run, with its result once it has ended (a missed event, or a console resumed after the end).
        await Promise.all(
          [...waiting].map(async ([device, runId]) => {
            try {
              const reply = await ask(device, input);
              if (reply.subject !== 'run') return;
              const update = fromRun(device, reply.body);
              if (update.run_id === runId && update.result !== PENDING) end(update);
            } catch {
              // offline for now, or slow: its event or a later ask will tell
            }
          }),
        );
        if (waiting.size === 0) break;
        if (io.nc.isClosed()) throw new Interrupted('the connection to NATS is closed', 'nats');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now())));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      for (const s of subs) s.unsubscribe();
    }
    for (const [device, runId] of waiting) {
      const reason = `no result of run ${runId} within ${Math.round(groupTimeoutMs / 1000)} s`;
      say(`  ${device}: ${reason}`);
      ended.push({ device, result: PENDING, run_id: runId, reason });
    }
    return ended;
  });

  const machine = rolloutMachine.provide({
    actors: { startGroup, awaitGroup },
    actions: {
      journal: ({ context }, params: { state: RolloutState }) => journal(toRecord(context, params.state)),
    },
  });

  const actor = createActor(machine, { input: context });
  const done = new Promise<void>((resolve) => {
    actor.subscribe({ complete: () => resolve(), error: () => resolve() });
  });
  // A group ended (the machine moved on to the next index): its tally.
  let lastGroup = context.group_index;
  actor.subscribe((snap) => {
    if (snap.context.group_index === lastGroup) return;
    const ended = groupsOf(snap.context.devices)[lastGroup];
    if (ended) say(`${ended}: ended (${tally(snap.context.devices.filter((d) => d.group === ended))})`);
    lastGroup = snap.context.group_index;
  });
  actor.start();
  actor.send({ type: first });
  await done;
  const snap = actor.getSnapshot();
  let state: RolloutOutcome['state'] = (snap.value as string) === 'interrupted' ? 'interrupted' : (snap.value as RolloutState);
  const final = snap.context;
  try {
    await writes;
  } catch (error) {
    state = 'interrupted';
    final.interruption ??= { code: 'journal', message: (error as Error).message };
  }
  return { state, context: final, record: lastRecord };
}

/** `3 succeeded, 1 skipped, 0 failed`. */
export function tally(devices: readonly { result: string; run_id: number | null; reason: string | null }[]): string {
  const ok = devices.filter((d) => GOOD_RESULTS.includes(d.result)).length;
  const skipped = devices.filter((d) => d.result === SKIPPED).length;
  const failed = failures(devices as RolloutContext['devices']);
  const pending = devices.filter((d) => d.result === PENDING).length - devices.filter((d) => d.result === PENDING && d.run_id !== null && d.reason !== null).length;
  return `${ok} succeeded, ${skipped} skipped, ${failed} failed${pending ? `, ${pending} not started` : ''}`;
}

export { fromRecord };
