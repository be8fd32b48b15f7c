import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, openHarness, seedRoot, tempDir } from './support/harness.js';
import { readTree } from './support/dir-driver.js';
import { EngineError } from '../src/engine/engine.js';
import type { Driver } from '../src/core/driver.js';
import { newRunContext } from '../machines/update-machine.js';

function setup() {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root);
  const original = readTree(h.driver.live);
  return { root, h, original, done: () => { h.close(); cleanup(root); } };
}

const chain = (h: ReturnType<typeof openHarness>, runId: number) =>
  h.journal.transitionsOf(runId).map((t) => `${t.from_state}>${t.to_state}`);

test('an update to the latest good release succeeds and records every transition', async () => {
  const { h, done } = setup();
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'succeeded');
    assert.equal(run.message, 'Updated dir to 1.1.0');
    assert.equal(run.from_version, '1.0.0');
    assert.equal(run.to_version, '1.1.0');
    assert.deepEqual(chain(h, runId), ['idle>discover', 'discover>validate', 'validate>backup', 'backup>apply', 'apply>verify', 'verify>succeeded']);
    assert.deepEqual(readTree(h.driver.live), readTree(join(h.root, 'releases', '1.1.0')));
    const events = h.journal.transitionsOf(runId).map((t) => t.event);
    assert.deepEqual(events, ['start', 'discover.done', 'validate.done', 'backup.done', 'apply.done', 'verify.done']);
  } finally {
    done();
  }
});

test('a release whose checks fail is rolled back to the old bytes, and the message says why', async () => {
  const { h, original, done } = setup();
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.2.0' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'rolled_back');
    assert.match(run.message!, /^Post-update checks failed, rolled back to v1\.0\.0: health check of 1\.2\.0 failed/);
    assert.equal(run.error?.code, 'health_failed');
    assert.deepEqual(readTree(h.driver.live), original);
    assert.deepEqual(chain(h, runId).slice(-3), ['apply>verify', 'verify>rollback', 'rollback>rolled_back']);
  } finally {
    done();
  }
});

test('a failure in apply rolls back', async () => {
  const { h, original, done } = setup();
  try {
    writeFileSync(join(h.root, 'releases', '1.1.0', 'APPLY_FAILS'), '1');
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'rolled_back');
    assert.match(run.message!, /^Update failed during apply, rolled back to v1\.0\.0: could not write/);
    assert.deepEqual(readTree(h.driver.live), original);
  } finally {
    done();
  }
});

test('a failed rollback ends rollback_failed, names the backup and deletes nothing', async () => {
  const { h, done } = setup();
  try {
    writeFileSync(join(h.root, 'ROLLBACK_FAILS'), '1');
    const { runId } = await h.engine.startRun('dir', { version: '1.2.0' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'rollback_failed');
    assert.match(run.message!, /manual intervention required/);
    assert.match(run.message!, /The backup is at .*dir\.run000001\.d/);
    assert.ok(existsSync(join(h.driver.backups, 'dir.run000001.d', 'VERSION')));
  } finally {
    done();
  }
});

test('dry run ends validated and changes nothing', async () => {
  const { h, original, done } = setup();
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0', dryRun: true });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'validated');
    assert.equal(run.dry_run, true);
    assert.deepEqual(readTree(h.driver.live), original);
    assert.deepEqual(readdirSync(h.driver.backups), []);
  } finally {
    done();
  }
});

test('the current version ends up_to_date', async () => {
  const { h, done } = setup();
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.0.0' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'up_to_date');
    assert.deepEqual(chain(h, runId), ['idle>discover', 'discover>up_to_date']);
  } finally {
    done();
  }
});

test('a failing discover or validate ends aborted with nothing changed', async () => {
  const { h, original, done } = setup();
  try {
    const a = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '9.9.9' })).runId);
    assert.equal(a.state, 'aborted');
    assert.match(a.message!, /aborted during discover, nothing was changed: no release 9\.9\.9/);
    writeFileSync(join(h.root, 'releases', '1.1.0', 'INVALID'), '1');
    const b = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '1.1.0' })).runId);
    assert.equal(b.state, 'aborted');
    assert.equal(b.error?.code, 'bad_release');
    assert.deepEqual(readTree(h.driver.live), original);
    assert.deepEqual(readdirSync(h.driver.backups), []);
  } finally {
    done();
  }
});

test('a phase that overruns its deadline times out (no after-timer is restored from disk)', async () => {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: 200, phaseTimeoutsMs: { apply: 100 } });
  try {
    const run = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '1.1.0' })).runId);
    assert.equal(run.state, 'rolled_back');
    assert.match(run.message!, /apply did not finish within 0 s|apply did not finish/);
    assert.equal(run.error?.code, 'timeout');
  } finally {
    h.close();
    cleanup(root);
  }
});

test('one run at a time: a second request while one is active is busy', async () => {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: 30 });
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    await assert.rejects(h.engine.startRun('dir', { version: '1.1.0' }), (e: unknown) => e instanceof EngineError && e.code === 'busy' && /run 1 of dir/.test(e.message));
    await h.engine.waitForRun(runId);
    await assert.rejects(h.engine.startRun('nope'), (e: unknown) => e instanceof EngineError && e.code === 'not_found');
  } finally {
    h.close();
    cleanup(root);
  }
});

test('a manual rollback restores the newest backup as a run of its own', async () => {
  const { h, original, done } = setup();
  try {
    const up = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '1.1.0' })).runId);
    assert.equal(up.state, 'succeeded');
    const { runId } = await h.engine.startRun('dir', { mode: 'restore' });
    const run = await h.engine.waitForRun(runId);
    assert.equal(run.state, 'rolled_back');
    assert.equal(run.mode, 'restore');
    assert.equal(run.message, 'Restored dir to v1.0.0 from backup');
    assert.deepEqual(chain(h, runId), ['idle>rollback', 'rollback>rolled_back']);
    assert.deepEqual(readTree(h.driver.live), original);
  } finally {
    done();
  }
});

test('transitions are published in seq order, after they are committed', async () => {
  const { h, done } = setup();
  try {
    const seen: Array<{ seq: number; to: string; inDb: boolean }> = [];
    h.engine.transitions.subscribe((t) => {
      const row = h.journal.getRunRow(t.runId)!;
      seen.push({ seq: t.seq, to: t.to, inDb: row.state === t.to });
    });
    const results: string[] = [];
    h.engine.results.subscribe((r) => results.push(`${r.success} ${r.state} ${r.message}`));
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    await h.engine.waitForRun(runId);
    assert.deepEqual(seen.map((s) => s.to), ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']);
    assert.ok(seen.every((s) => s.inDb));
    assert.deepEqual(seen.map((s) => s.seq), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(results, ['true succeeded Updated dir to 1.1.0']);
    assert.equal(readFileSync(join(h.driver.live, 'VERSION'), 'utf8'), '1.1.0\n');
  } finally {
    done();
  }
});

test('recovery refuses to guess: an unknown machine version or a removed component ends rollback_failed, naming the backup', async () => {
  const { h, done } = setup();
  try {
    const mk = (component: string, machineVersion: number) =>
      h.journal.createRun({
        component,
        kind: 'dir',
        mode: 'update',
        requestedVersion: null,
        fromVersion: '1.0.0',
        dryRun: false,
        machineVersion,
        snapshot: () => JSON.stringify({ machineVersion, state: 'apply', context: { backup: { path: '/var/backups/dir.1.d' } } }),
      });
    const to = (runId: number, state: string) =>
      h.journal.commitTransition({ runId, to: state, event: 'x', message: state, level: 'info', snapshot: JSON.stringify({ machineVersion: 99, state, context: { backup: { path: '/var/backups/dir.1.d' } } }), fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0 });
    const a = mk('dir', 99);
    to(a, 'apply');
    const [ra] = await h.engine.recover();
    assert.equal(ra!.state, 'rollback_failed');
    assert.match(ra!.message!, /machine version is 99; this one reads versions 1 to 2 and will not guess/);
    assert.match(ra!.message!, /The backup is at \/var\/backups\/dir\.1\.d\./);
    const b = mk('gone', 1);
    h.journal.commitTransition({ runId: b, to: 'apply', event: 'x', message: 'x', level: 'info', snapshot: JSON.stringify({ machineVersion: 1, state: 'apply', context: { backup: { path: '/b/gone.d' } } }), fromVersion: null, toVersion: null, recoveries: 0 });
    const [rb] = await h.engine.recover();
    assert.equal(rb!.state, 'rollback_failed');
    assert.match(rb!.message!, /gone is no longer in the configuration/);
    assert.deepEqual(h.journal.transitionsOf(b).map((t) => `${t.from_state}>${t.to_state}:${t.event}`), ['idle>apply:x', 'apply>rollback_failed:recover']);
  } finally {
    done();
  }
});

test('new runs are refused while recovery is in progress', async () => {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root, { stepDelayMs: 50 });
  try {
    const id = h.journal.createRun({ component: 'dir', kind: 'dir', mode: 'update', requestedVersion: '1.1.0', fromVersion: null, dryRun: false, machineVersion: 1, snapshot: (runId) => JSON.stringify({ machineVersion: 1, state: 'idle', context: newRunContext({ runId, component: 'dir', kind: 'dir', requestedVersion: '1.1.0' }) }) });
    const recovering = h.engine.recover();
    await assert.rejects(h.engine.startRun('dir', { version: '1.1.0' }), (e: unknown) => e instanceof EngineError && e.code === 'busy' && /being recovered/.test(e.message));
    const [run] = await recovering;
    assert.equal(run!.run_id, id);
    assert.equal(run!.state, 'succeeded');
    const second = await h.engine.waitForRun((await h.engine.startRun('dir', { version: '1.0.0' })).runId);
    assert.equal(second.state, 'succeeded', 'an explicitly requested older version is installed once recovery is over');
    assert.equal(second.from_version, '1.1.0');
  } finally {
    h.close();
    cleanup(root);
  }
});

test('close() during a step that would go on for a minute: done within 10 s, the run left unfinished in that state for recovery, no result announced', async () => {
  const { h, done } = setup();
  try {
    // A verify that waits for a health answer that never comes (until it is signalled).
    (h.driver as { verify: Driver['verify'] }).verify = (_run, ctx) =>
      new Promise<void>((_resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no health answer within 60 s')), 60_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(ctx.signal.reason as Error);
        });
      });
    const results: string[] = [];
    h.engine.results.subscribe((r) => results.push(r.state));
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    for (let i = 0; i < 200 && h.journal.getRunRow(runId)!.state !== 'verify'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.journal.getRunRow(runId)!.state, 'verify');
    const t0 = Date.now();
    await h.engine.close();
    const took = Date.now() - t0;
    assert.ok(took < 9_000, `close() took ${took} ms`);
    const row = h.journal.getRunRow(runId)!;
    assert.equal(row.state, 'verify');
    assert.equal(row.result, null, 'left for recovery, not ended');
    assert.deepEqual(results, [], 'a stopped run is not announced as ended');
    await assert.rejects(h.engine.startRun('dir'), (e: EngineError) => e.code === 'closed');
  } finally {
    done();
  }
});
