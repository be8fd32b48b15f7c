/**
 * Runs read across updater versions (machines/stored-run.ts): a run journaled by an older machine
 * version is read forward and recovered as any run; one journaled by a newer version, or whose
 * saved state lacks what recovery needs, is refused, never guessed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_VERSION, MAX_RECOVERIES, newRunContext } from '../machines/update-machine.js';
import { readStoredRun } from '../machines/stored-run.js';
import { cleanup, openHarness, seedRoot, tempDir } from './support/harness.js';
import { readTree } from './support/dir-driver.js';

/** A context as machine version 1 stored it: no maxRecoveries. */
function v1Context(runId: number, over: Record<string, unknown> = {}) {
  const { maxRecoveries: _gone, ...context } = newRunContext({ runId, component: 'dir', kind: 'dir', requestedVersion: '1.1.0', fromVersion: '1.0.0' });
  return { ...context, toVersion: '1.1.0', ...over };
}

test('a version 1 run is read forward: the recovery budget it had is filled in', () => {
  const read = readStoredRun(JSON.stringify({ machineVersion: 1, state: 'apply', context: v1Context(7) }), 1);
  assert.ok(read.ok);
  assert.equal(read.upgradedFrom, 1);
  assert.equal(read.run.machineVersion, MACHINE_VERSION);
  assert.equal(read.run.context.maxRecoveries, MAX_RECOVERIES);
  assert.equal(read.run.context.runId, 7);
  // A snapshot without its own version is of the row's.
  const bare = readStoredRun(JSON.stringify({ state: 'apply', context: v1Context(7) }), 1);
  assert.ok(bare.ok && bare.upgradedFrom === 1);
  const current = readStoredRun(JSON.stringify({ machineVersion: MACHINE_VERSION, state: 'verify', context: newRunContext({ runId: 1, component: 'a', kind: 'app' }) }), MACHINE_VERSION);
  assert.ok(current.ok && current.upgradedFrom === null);
});

test('what cannot be read is refused with the reason: newer versions, bad JSON, missing fields', () => {
  const newer = readStoredRun(JSON.stringify({ machineVersion: MACHINE_VERSION + 1, state: 'apply', context: {} }), 1);
  assert.ok(!newer.ok);
  assert.equal(newer.code, 'recovery_version');
  assert.match(newer.reason, new RegExp(`machine version is ${MACHINE_VERSION + 1}; this one reads versions 1 to ${MACHINE_VERSION} and will not guess`));
  const bad = readStoredRun('{"machineVersion": 1, "state": "ap', 1);
  assert.ok(!bad.ok && bad.code === 'recovery_bad_snapshot' && /not JSON/.test(bad.reason));
  const zero = readStoredRun(JSON.stringify({ machineVersion: 0, state: 'apply', context: {} }), 0);
  assert.ok(!zero.ok && /no machine version this updater knows \(0\)/.test(zero.reason));
  const lacking = readStoredRun(JSON.stringify({ machineVersion: 1, state: 'apply', context: v1Context(3, { phaseTimeoutsMs: { discover: 1 }, component: 5 }) }), 1);
  assert.ok(!lacking.ok);
  assert.equal(lacking.reason, 'its saved state lacks component, phaseTimeoutsMs');
});

test('the engine recovers a run journaled by machine version 1: resumed and finished, its snapshot now of this version', async () => {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root);
  try {
    const runId = h.journal.createRun({
      component: 'dir',
      kind: 'dir',
      mode: 'update',
      requestedVersion: '1.1.0',
      fromVersion: '1.0.0',
      dryRun: false,
      machineVersion: 1,
      snapshot: (id) => JSON.stringify({ machineVersion: 1, state: 'idle', context: v1Context(id) }),
    });
    // Journaled in discover by the older updater, before discover's work.
    h.journal.commitTransition({ runId, to: 'discover', event: 'start', message: 'Looking for release 1.1.0 of dir', level: 'info', snapshot: JSON.stringify({ machineVersion: 1, state: 'discover', context: v1Context(runId) }), fromVersion: '1.0.0', toVersion: null, recoveries: 0 });
    const [run] = await h.engine.recover();
    assert.equal(run!.state, 'succeeded');
    assert.equal(run!.recoveries, 1);
    assert.equal(readTree(h.driver.live)['VERSION'], '1.1.0\n');
    const stored = JSON.parse(h.journal.getRunRow(runId)!.snapshot) as { machineVersion: number; context: { maxRecoveries: number } };
    assert.equal(stored.machineVersion, MACHINE_VERSION);
    assert.equal(stored.context.maxRecoveries, MAX_RECOVERIES);
  } finally {
    h.close();
    cleanup(root);
  }
});
