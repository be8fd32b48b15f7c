/** The update machine alone (no I/O): every edge, with actors supplied through provide(). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, waitFor } from 'xstate';
import { newRunContext, updateMachine, type Phase, type PhaseInput, type WorkPhase } from '../machines/update-machine.js';
import { describe } from '../machines/messages.js';

type Behaviour = Partial<Record<WorkPhase, 'ok' | 'fail' | 'hang' | 'upToDate' | 'failUntouched' | 'notes'>>;

async function drive(behaviour: Behaviour, init: Partial<Parameters<typeof newRunContext>[0]> & { resumedFrom?: Phase; recoveries?: number } = {}) {
  const path: string[] = [];
  const ran: string[] = [];
  const act = (phase: WorkPhase) =>
    fromPromise<any, PhaseInput>(async ({ signal }) => {
      ran.push(phase);
      const b = behaviour[phase] ?? 'ok';
      if (b === 'fail') throw Object.assign(new Error(`${phase} broke`), { code: `${phase}_failed` });
      if (b === 'failUntouched') throw Object.assign(new Error(`${phase} broke before any effect`), { code: 'bad_release', nothingChanged: true });
      if (b === 'hang') await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      if (phase === 'discover') return { fromVersion: '1.0.0', toVersion: '1.1.0', upToDate: b === 'upToDate' };
      if (phase === 'backup') return { backup: { path: '/b/x.yml' } };
      if (b === 'notes') return { notes: ['kept app/config/a.conf', '', 'kept app/config/b.conf'] };
      return undefined;
    });
  const machine = updateMachine.provide({
    actions: { journal: (_a, params: { state: Phase }) => void path.push(params.state) },
    actors: { discover: act('discover'), validate: act('validate'), backup: act('backup'), apply: act('apply'), verify: act('verify'), rollback: act('rollback') },
  });
  const { resumedFrom, recoveries, ...rest } = init;
  const input = { ...newRunContext({ runId: 1, component: 'c', kind: 'k', ...rest, phaseTimeoutsMs: { discover: 50, validate: 50, backup: 50, apply: 50, verify: 50, rollback: 50, ...rest.phaseTimeoutsMs } }), resumedFrom: resumedFrom ?? null, recoveries: recoveries ?? 0 };
  const actor = createActor(machine, { input }).start();
  actor.send({ type: resumedFrom ? 'BOOT' : 'START' });
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  return { path, ran, final: snap.value as string, context: snap.context };
}

test('happy path', async () => {
  const r = await drive({});
  assert.deepEqual(r.path, ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']);
});

test('up to date, dry run, aborts', async () => {
  assert.deepEqual((await drive({ discover: 'upToDate' })).path, ['discover', 'up_to_date']);
  assert.deepEqual((await drive({}, { dryRun: true })).path, ['discover', 'validate', 'validated']);
  for (const phase of ['discover', 'validate', 'backup'] as const) {
    const r = await drive({ [phase]: 'fail' });
    assert.equal(r.final, 'aborted');
    assert.equal(r.context.failure?.code, `${phase}_failed`);
    assert.ok(!r.ran.includes('apply'));
  }
});

test('apply or verify failing rolls back; a failing rollback ends rollback_failed', async () => {
  for (const phase of ['apply', 'verify'] as const) {
    const r = await drive({ [phase]: 'fail' });
    assert.deepEqual(r.path.slice(-2), ['rollback', 'rolled_back']);
    assert.equal(r.context.failure?.phase, phase);
  }
  const r = await drive({ verify: 'fail', rollback: 'fail' });
  assert.deepEqual(r.path.slice(-2), ['rollback', 'rollback_failed']);
  assert.equal(r.context.rollbackError?.code, 'rollback_failed');
});

test('each working state has a deadline: hanging work times out to the right place', async () => {
  const expected: Record<WorkPhase, string> = { discover: 'aborted', validate: 'aborted', backup: 'aborted', apply: 'rolled_back', verify: 'rolled_back', rollback: 'rollback_failed' };
  for (const phase of Object.keys(expected) as WorkPhase[]) {
    const r = await drive(phase === 'rollback' ? { verify: 'fail', rollback: 'hang' } : { [phase]: 'hang' });
    assert.equal(r.final, expected[phase], phase);
    const err = phase === 'rollback' ? r.context.rollbackError : r.context.failure;
    assert.equal(err?.code, 'timeout', phase);
  }
});

test('an apply failure that changed nothing (download, checksum, pull) aborts instead of rolling back', async () => {
  const r = await drive({ apply: 'failUntouched' });
  assert.deepEqual(r.path.slice(-2), ['apply', 'aborted']);
  assert.equal(r.context.failure?.nothingChanged, true);
  assert.ok(!r.ran.includes('rollback'));
  assert.match(describe('aborted', r.context, 'apply.failed').message, /aborted during apply, nothing was changed: apply broke before any effect/);
});

test('what apply reports (notes) is kept in context and ends the success message; none leaves it as it was', async () => {
  const r = await drive({ apply: 'notes' });
  assert.equal(r.final, 'succeeded');
  assert.deepEqual(r.context.notes, ['kept app/config/a.conf', 'kept app/config/b.conf'], 'empty sentences are dropped');
  assert.equal(describe('succeeded', r.context, 'verify.done').message, 'Updated c to 1.1.0; kept app/config/a.conf; kept app/config/b.conf');
  const plain = await drive({});
  assert.deepEqual(plain.context.notes, []);
  assert.equal(describe('succeeded', plain.context, 'verify.done').message, 'Updated c to 1.1.0');
  // A context journaled before notes existed (recovered from an older snapshot) has none.
  const { notes: _none, ...old } = plain.context;
  assert.equal(describe('succeeded', old, 'verify.done').message, 'Updated c to 1.1.0');
});

test('restore mode goes straight to rollback', async () => {
  const r = await drive({}, { mode: 'restore', backup: { path: '/b/x' } });
  assert.deepEqual(r.path, ['rollback', 'rolled_back']);
});

test('recovery table: BOOT routes by the state the process died in', async () => {
  const table: Array<[Phase, string]> = [
    ['idle', 'discover'],
    ['discover', 'discover'],
    ['validate', 'discover'],
    ['backup', 'backup'],
    ['apply', 'rollback'],
    ['verify', 'verify'],
    ['rollback', 'rollback'],
  ];
  for (const [died, resumed] of table) {
    const r = await drive({}, { resumedFrom: died, backup: { path: '/b' }, fromVersion: '1.0.0' });
    assert.equal(r.path[0], resumed, `died in ${died}`);
    assert.equal(r.context.recoveries, 1);
    assert.ok(!(died === 'apply' && r.ran.includes('apply')), 'apply is never re-run after a crash in apply');
  }
  const terminal = await drive({}, { resumedFrom: 'succeeded' });
  assert.equal(terminal.final, 'rollback_failed');
  assert.equal(terminal.context.rollbackError?.code, 'recovery_unknown_state');
});

test('more than 3 recoveries end rollback_failed without running any work', async () => {
  const r = await drive({}, { resumedFrom: 'apply', recoveries: 3, backup: { path: '/b' } });
  assert.deepEqual(r.path, ['rollback_failed']);
  assert.deepEqual(r.ran, []);
  assert.equal(r.context.recoveries, 4);
  assert.match(describe('rollback_failed', r.context, 'recover').message, /interrupted 4 times .* The backup is at \/b\. Nothing was deleted\./);
});
