/** The rollout machine alone (no I/O): transitions, halting, and resuming from every stored record with BOOT. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, waitFor } from 'xstate';
import {
  failures,
  fromRecord,
  groupsOf,
  newRolloutContext,
  planDevices,
  rolloutMachine,
  toRecord,
  type DeviceUpdate,
  type GroupInput,
  type RolloutContext,
  type RolloutState,
} from '../machines/rollout-machine.js';
import type { RolloutRecord } from '../src/contract/fleet.js';

/** How each fake device behaves: its run's end state, or `skip` (offline/busy), or `lost` (no result in time). */
type Behaviour = Record<string, string>;

interface Drive {
  journal: RolloutRecord[];
  started: string[];
  awaited: string[];
  final: string;
  context: RolloutContext;
}

async function drive(context: RolloutContext, behaviour: Behaviour, first: 'START' | 'BOOT' = 'START', fail?: 'startGroup' | 'awaitGroup'): Promise<Drive> {
  const journal: RolloutRecord[] = [];
  const started: string[] = [];
  const awaited: string[] = [];
  const machine = rolloutMachine.provide({
    actions: { journal: ({ context: c }, params: { state: RolloutState }) => void journal.push(structuredClone(toRecord(c, params.state))) },
    actors: {
      startGroup: fromPromise<DeviceUpdate[], GroupInput>(async ({ input }) => {
        if (fail === 'startGroup') throw Object.assign(new Error('the bus went away'), { code: 'nats' });
        return input.devices.map(({ device }) => {
          started.push(device);
          const b = behaviour[device] ?? 'succeeded';
          if (b === 'skip') return { device, result: 'skipped', run_id: null, reason: 'busy: another run' };
          return { device, result: 'pending', run_id: 100 + Number(device.slice(4)), reason: null };
        });
      }),
      awaitGroup: fromPromise<DeviceUpdate[], GroupInput>(async ({ input }) => {
        if (fail === 'awaitGroup') throw new Error('the store went away');
        return input.devices.map(({ device, run_id }) => {
          awaited.push(device);
          const b = behaviour[device] ?? 'succeeded';
          if (b === 'lost') return { device, result: 'pending', run_id, reason: 'no result in time' };
          return { device, result: b, run_id, reason: b === 'succeeded' ? null : 'it broke' };
        });
      }),
    },
  });
  const actor = createActor(machine, { input: context }).start();
  actor.send({ type: first });
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  return { journal, started, awaited, final: snap.value as string, context: snap.context };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `dev-${String(i + 1).padStart(2, '0')}`);
const ctx = (n: number, canary = 2, batch = 4, maxFailures = 0) => newRolloutContext({ id: 'r-20261202-120000-ab12', component: 'core', version: '1.2.0', devices: names(n), canary, batch, maxFailures });

test('devices are planned in groups: the canary first, then batches', () => {
  const plan = planDevices(names(9), 2, 4);
  assert.deepEqual(
    plan.map((d) => d.group),
    ['canary', 'canary', 'batch-1', 'batch-1', 'batch-1', 'batch-1', 'batch-2', 'batch-2', 'batch-2'],
  );
  assert.deepEqual(groupsOf(plan), ['canary', 'batch-1', 'batch-2']);
  assert.deepEqual(groupsOf(planDevices(names(3), 0, 2)), ['batch-1', 'batch-2']);
  assert.ok(plan.every((d) => d.result === 'pending' && d.run_id === null));
});

test('a good rollout: canary, then each batch, each group stored before it starts and again before the wait', async () => {
  const r = await drive(ctx(10), {});
  assert.equal(r.final, 'done');
  assert.deepEqual(r.started, names(10));
  assert.deepEqual(r.awaited, names(10));
  assert.deepEqual(
    r.journal.map((j) => `${j.state}:${j.group_index}`),
    ['canary:0', 'canary:0', 'batches:1', 'batches:1', 'batches:2', 'batches:2', 'done:3'],
  );
  // Before the canary's work: nothing asked yet; before its wait: the runs' ids.
  assert.ok(r.journal[0]!.devices.every((d) => d.run_id === null));
  assert.deepEqual(r.journal[1]!.devices.filter((d) => d.run_id !== null).map((d) => [d.device, d.run_id]), [['dev-01', 101], ['dev-02', 102]]);
  assert.ok(r.context.devices.every((d) => d.result === 'succeeded'));
  assert.equal(r.journal.at(-1)!.format, 1);
});

test('a failing canary halts the rollout: no batch is started', async () => {
  const r = await drive(ctx(10), { 'dev-02': 'rolled_back' });
  assert.equal(r.final, 'halted');
  assert.deepEqual(r.started, ['dev-01', 'dev-02']);
  assert.equal(r.journal.at(-1)!.state, 'halted');
  assert.equal(r.context.devices.find((d) => d.device === 'dev-02')!.result, 'rolled_back');
  assert.ok(r.context.devices.slice(2).every((d) => d.result === 'pending' && d.run_id === null));
});

test('failures are counted across groups against max_failures; up_to_date is a success', async () => {
  const tolerant = await drive(ctx(10, 2, 4, 1), { 'dev-01': 'aborted', 'dev-03': 'up_to_date' });
  assert.equal(tolerant.final, 'done');
  assert.equal(failures(tolerant.context.devices), 1);
  const r = await drive(ctx(10, 2, 4, 1), { 'dev-01': 'aborted', 'dev-04': 'rollback_failed' });
  assert.equal(r.final, 'halted');
  // Halted after batch-1: batch-2 never started.
  assert.deepEqual(r.started, names(6));
});

test('skipped devices (offline, busy, not answering) are not failures', async () => {
  const r = await drive(ctx(6), { 'dev-01': 'skip', 'dev-03': 'skip', 'dev-04': 'skip' });
  assert.equal(r.final, 'done');
  assert.equal(failures(r.context.devices), 0);
  assert.deepEqual(r.awaited, ['dev-02', 'dev-05', 'dev-06']);
  // A whole group skipped goes on too.
  const all = await drive(ctx(3, 1, 1), { 'dev-01': 'skip', 'dev-02': 'skip', 'dev-03': 'skip' });
  assert.equal(all.final, 'done');
});

test('a run whose result never came counts as failed', async () => {
  const r = await drive(ctx(6), { 'dev-01': 'lost' });
  assert.equal(r.final, 'halted');
  assert.deepEqual(r.started, ['dev-01', 'dev-02']);
});

test('the bus failing interrupts the rollout without storing a state', async () => {
  for (const where of ['startGroup', 'awaitGroup'] as const) {
    const r = await drive(ctx(4), {}, 'START', where);
    assert.equal(r.final, 'interrupted');
    assert.ok(r.context.interruption?.message);
    assert.ok(r.journal.every((j) => j.state === 'canary'));
  }
});

test('resumed with BOOT from every stored record: it ends the same, and no device is started twice or asked after its end', async () => {
  for (const [behaviour, end] of [
    [{}, 'done'],
    [{ 'dev-03': 'skip', 'dev-07': 'aborted' }, 'halted'],
  ] as const) {
    const whole = await drive(ctx(9, 2, 3), behaviour);
    assert.equal(whole.final, end);
    for (const [i, record] of whole.journal.entries()) {
      const resumed = await drive(fromRecord(record), behaviour, 'BOOT');
      assert.equal(resumed.final, end, `resumed from record ${i} (${record.state}, group ${record.group_index})`);
      // Started in the first life (a run id, or a final result, on record) = never started again.
      const before = record.devices.filter((d) => d.run_id !== null || d.result !== 'pending').map((d) => d.device);
      assert.deepEqual(
        resumed.started.filter((d) => before.includes(d)),
        [],
        `record ${i}`,
      );
      // Every device is started exactly once over both lives (the first life up to this record).
      const firstLife = whole.started.filter((d) => before.includes(d));
      assert.deepEqual([...firstLife, ...resumed.started].sort(), [...whole.started].sort(), `record ${i}`);
      // A device whose result is final on record is not asked again.
      const final = record.devices.filter((d) => d.result !== 'pending').map((d) => d.device);
      assert.deepEqual(resumed.awaited.filter((d) => final.includes(d)), [], `record ${i}`);
      assert.deepEqual(resumed.context.devices, whole.context.devices, `record ${i}`);
    }
  }
});

test('resumed when done or halted: only written again, nothing asked', async () => {
  const halted = await drive(ctx(4), { 'dev-01': 'aborted' });
  const again = await drive(fromRecord(halted.journal.at(-1)!), {}, 'BOOT');
  assert.equal(again.final, 'halted');
  assert.deepEqual([again.started, again.awaited], [[], []]);
  const done = await drive(ctx(4), {});
  const twice = await drive(fromRecord(done.journal.at(-1)!), {}, 'BOOT');
  assert.equal(twice.final, 'done');
  assert.deepEqual(twice.journal.map((j) => j.state), ['done']);
});

test('a stored state this machine does not know is refused', async () => {
  const r = await drive({ ...ctx(2), resumedFrom: 'paused' as unknown as RolloutState }, {}, 'BOOT');
  assert.equal(r.final, 'interrupted');
  assert.match(r.context.interruption!.message, /paused/);
});
