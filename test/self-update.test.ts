/**
 * The updater updates itself (CONTRACT.md, "The updater updates itself"), end to end with real
 * parts: releases packaged by `npm run package` from this build, installed by their install.sh,
 * run by the real launch under a real supervisor (a plain restart loop; the test bed's systemd
 * with Restart=always), releases served by the local GitHub stand-in, driven over REST.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readMigrations } from '../src/journal/database.js';
import { packageSelfReleases, selfWorld, type SelfWorld, type SelfWorldOptions } from './support/self-world.js';
import { cleanup, tempDir } from './support/harness.js';
import { testbed } from './support/testbed.js';

const releasesDir = tempDir('updater-self-releases-');
const bed = await testbed();
before(async () => {
  await packageSelfReleases(releasesDir);
});
after(() => cleanup(releasesDir));

async function withWorld(o: Omit<SelfWorldOptions, 'releasesDir'>, fn: (w: SelfWorld) => Promise<void>): Promise<void> {
  const w = await selfWorld({ releasesDir, ...o });
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

/** Exactly one release process runs, and it is this version (its /healthz says so). */
async function oneRelease(w: SelfWorld, version: string): Promise<void> {
  await w.waitVersion(version);
  const pids = w.releaseProcesses();
  assert.equal(pids.length, 1, `one updater process runs (found ${pids.join(', ') || 'none'})\n${w.output().slice(-3000)}`);
  assert.equal(w.link('current'), `releases/${version}`);
  assert.ok(!existsSync(join(w.root, 'self-update.json')), 'no trial is left open');
}

const journalRows = (w: SelfWorld) => {
  const db = new Database(join(w.dataDir, 'updater.db'), { readonly: true });
  try {
    return {
      schema: db.pragma('user_version', { simple: true }) as number,
      runs: db.prepare('SELECT id, state, result FROM runs ORDER BY id').all() as Array<{ id: number; state: string; result: string | null }>,
    };
  } finally {
    db.close();
  }
};

for (const supervisor of ['loop', 'systemd'] as const) {
  const skip = supervisor === 'systemd' ? bed.skip : false;

  test(`${supervisor}: 9.1.0 → 9.2.0 succeeds on a new process, which ends its own run`, { skip }, async () => {
    await withWorld({ supervisor, bed: bed.bed }, async (w) => {
      await w.waitVersion('9.1.0');
      const [before] = w.releaseProcesses();
      const runId = await w.update('9.2.0');
      const run = await w.waitRun(runId);
      assert.equal(run.result, 'succeeded', run.message ?? '');
      assert.equal(run.message, 'Updated updater to 9.2.0');
      await oneRelease(w, '9.2.0');
      assert.notEqual(w.releaseProcesses()[0], before, 'a new process runs the new release');
      assert.equal(w.link('previous'), 'releases/9.1.0');
      // The run's story spans both processes: the hand-over is a recovery in the new release.
      const full = await w.get<{ transitions: Array<{ to: string; event: string }> }>(`/api/runs/${runId}`);
      assert.deepEqual(full!.transitions.map((t) => t.to), ['discover', 'validate', 'backup', 'apply', 'verify', 'verify', 'succeeded']);
      assert.equal(full!.transitions[5]!.event, 'recover');
      // The journal's copy made on trial is gone once verified; the download too.
      assert.deepEqual(readdirSync(w.dataDir).filter((f) => f.includes('before-')), []);
      assert.deepEqual(readdirSync(join(w.root, 'releases')).sort(), ['9.1.0', '9.2.0']);
    });
  });

  test(`${supervisor}: 9.2.0 → a 9.3.0 that exits at once comes back on 9.2.0, the run rolled_back, the journal intact`, { skip }, async () => {
    await withWorld({ supervisor, bed: bed.bed, variant: 'broken' }, async (w) => {
      await w.waitVersion('9.1.0');
      const first = await w.waitRun(await w.update('9.2.0'));
      assert.equal(first.result, 'succeeded');
      await w.waitVersion('9.2.0');
      const runId = await w.update('9.3.0');
      const run = await w.waitRun(runId);
      assert.equal(run.result, 'rolled_back', run.message ?? '');
      assert.equal(run.message, 'Post-update checks failed, rolled back to v9.2.0: updater 9.3.0 did not start; back on 9.2.0 (it was started 4 times without verifying itself)');
      await oneRelease(w, '9.2.0');
      assert.equal(w.link('previous'), 'releases/9.1.0', 'previous is as it was before the failed run');
      assert.ok(!existsSync(join(w.root, 'releases', '9.3.0')), 'the failed release is removed');
      assert.ok(!existsSync(join(w.root, 'self-update.result')));
      const j = journalRows(w);
      assert.deepEqual(j.runs.map((r) => r.result), ['succeeded', 'rolled_back']);
    });
  });
}

test('loop: a 9.3.0 that starts but never verifies itself is abandoned after the trial time, back on 9.1.0', async () => {
  await withWorld({ supervisor: 'loop', variant: 'hang', env: { UPDATER_TRIAL_SECONDS: '6' } }, async (w) => {
    await w.waitVersion('9.1.0');
    const runId = await w.update('9.3.0');
    const run = await w.waitRun(runId);
    assert.equal(run.result, 'rolled_back', run.message ?? '');
    assert.match(run.message!, /updater 9\.3\.0 did not start; back on 9\.1\.0 \(it did not verify itself within 6 s\)$/);
    await oneRelease(w, '9.1.0');
    assert.match(w.output(), /launch: 9\.3\.0 has not verified itself within 6 s: stopping it/);
  });
});

test('loop: a 9.3.0 whose migration fails after changing the schema: the journal copy is put back and 9.1.0 reads it', async () => {
  await withWorld({ supervisor: 'loop', variant: 'bad-migration' }, async (w) => {
    await w.waitVersion('9.1.0');
    const runId = await w.update('9.3.0');
    const run = await w.waitRun(runId);
    assert.equal(run.result, 'rolled_back', run.message ?? '');
    assert.match(run.message!, /updater 9\.3\.0 did not start; back on 9\.1\.0 \(it was started 4 times without verifying itself\)$/);
    await oneRelease(w, '9.1.0');
    // 9.3.0 had committed its migration N+1 before N+2 failed: without the copy the journal would be at schema N+1, which 9.1.0 refuses.
    const n = readMigrations().length;
    assert.match(w.output(), new RegExp(`migration ${n + 2}_broken\\.sql failed`));
    const j = journalRows(w);
    assert.equal(j.schema, n);
    assert.deepEqual(j.runs.map((r) => r.result), ['rolled_back']);
    assert.deepEqual(readdirSync(w.dataDir).filter((f) => f.includes('before-')), [], 'the copy was moved back, not left beside');
  });
});

test('loop: an update to a version without a published checksum, or while not started by launch, changes nothing', async () => {
  await withWorld({ supervisor: 'loop' }, async (w) => {
    await w.waitVersion('9.1.0');
    w.github.addRelease('dune/updater', { tag: 'v9.4.0', assets: [{ name: 'dune-updater-9.4.0.tar.gz', content: 'x' }] });
    const run = await w.waitRun(await w.update('9.4.0'));
    assert.equal(run.result, 'aborted');
    assert.match(run.message!, /has no dune-updater-9\.4\.0\.tar\.gz\.sha256: the updater installs itself only from a release whose checksum is published/);
    await oneRelease(w, '9.1.0');
  });
});
