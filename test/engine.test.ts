import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, openHarness, seedRoot, tempDir } from './support/harness.js';
import { readTree } from './support/dir-driver.js';
import { EngineError } from '../src/engine/engine.js';

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
