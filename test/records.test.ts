/**
 * What a run records as JSON is read back through the schema of whoever wrote it: the release
 * facts, a kind's backup details and its sub-steps. Runs journaled by the updater before typed
 * records (sub-steps as sentences) still read back, so they still recover.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { MACHINE_VERSION, newRunContext } from '../machines/update-machine.js';
import { ensureDirs, loadConfig } from '../src/config/index.js';
import { createDrivers } from '../src/drivers/index.js';
import { Engine } from '../src/engine/engine.js';
import { KINDS } from '../src/kinds/index.js';
import { GitHubClient } from '../src/releases/github.js';
import { ReleaseDiscovery } from '../src/releases/discovery.js';
import type { StepContext, StepRecord } from '../src/core/driver.js';
import { UpdateError } from '../src/core/errors.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { stepRecord } from '../src/journal/transitions.js';
import { releaseOf } from '../src/releases/facts.js';
import { stepsTaken as appSteps } from '../src/kinds/app/records.js';
import { backupOf, stepsTaken as containerSteps } from '../src/kinds/container/records.js';
import { cleanup, openHarness, seedRoot, tempDir } from './support/harness.js';

const silent = pino({ level: process.env.TEST_LOG ?? 'silent' });

/** A journal with one run, and a StepContext over its steps as the engine gives it. */
function journaled(steps: Array<[phase: string, step: string, detail?: unknown]>) {
  const dir = tempDir();
  const db = openDatabase(join(dir, 'updater.db'));
  const journal = new Journal(db);
  const runId = journal.createRun({ component: 'c', kind: 'container', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: 1, snapshot: () => '{}' });
  for (const [phase, step, detail] of steps) journal.recordStep(runId, phase, step, detail);
  const ctx = { runId, stepsTaken: (phase?: string) => journal.steps(runId, phase).map((row) => stepRecord(row) as StepRecord) } as unknown as StepContext;
  return { ctx, done: () => (db.close(), cleanup(dir)) };
}

const context = (over: Partial<ReturnType<typeof newRunContext>>) => ({
  ...newRunContext({ runId: 7, component: 'c', kind: 'container', mode: 'update', dryRun: false, requestedVersion: null, fromVersion: '1.0.0', backup: null }),
  ...over,
});

test('container steps journaled as sentences by the previous updater read back as records', () => {
  const { ctx, done } = journaled([
    ['backup', 'write /var/backups/web.20260101_120000.yml'],
    ['apply', 'pull image', { ref: 'registry/web:1.1.0' }],
    ['apply', 'write compose tag', { tag: '1.1.0' }],
    ['apply', 'recreate service'],
  ]);
  try {
    assert.deepEqual(containerSteps(ctx, 'backup'), [{ step: 'backup-file', path: '/var/backups/web.20260101_120000.yml' }]);
    assert.deepEqual(containerSteps(ctx, 'apply'), [{ step: 'pull', ref: 'registry/web:1.1.0' }, { step: 'write-tag', tag: '1.1.0' }, { step: 'recreate' }]);
  } finally {
    done();
  }
});

test('app steps journaled as sentences by the previous updater read back as records', () => {
  const { ctx, done } = journaled([
    ['backup', 'write /var/backups/core.20260101_120000.tar.gz'],
    ['apply', 'stop service'],
    ['apply', 'move old tree aside'],
    ['apply', 'move new tree in'],
    ['apply', 'install requirements'],
    ['apply', 'start service'],
  ]);
  try {
    assert.deepEqual(appSteps(ctx, 'backup'), [{ step: 'backup-file', path: '/var/backups/core.20260101_120000.tar.gz' }]);
    assert.deepEqual(appSteps(ctx, 'apply').map((s) => s.step), ['stop', 'old-aside', 'new-in', 'requirements', 'start']);
  } finally {
    done();
  }
});

test('app records of the kept download (validate) and of the preserved files (apply) read back as written, and checked', () => {
  const asset = { step: 'asset', path: '/var/lib/updater/downloads/core/dunebugger-1.4.0.tar.gz', sha256: 'a'.repeat(64), reused: true };
  const preserve = { step: 'preserve', kept: ['app/config/dunebugger.conf'], releaseCopies: ['app/config/dunebugger.conf.new'] };
  const { ctx, done } = journaled([
    ['validate', 'asset', asset],
    ['apply', 'stop', { step: 'stop' }],
    ['apply', 'preserve', preserve],
  ]);
  try {
    assert.deepEqual(appSteps(ctx, 'validate'), [asset]);
    assert.deepEqual(appSteps(ctx, 'apply'), [{ step: 'stop' }, preserve]);
  } finally {
    done();
  }
  const bad = journaled([['apply', 'preserve', { step: 'preserve', kept: 'app/config/dunebugger.conf' }]]);
  try {
    assert.throws(() => appSteps(bad.ctx, 'apply'), (e: unknown) => e instanceof UpdateError && e.code === 'internal' && /the journaled step "preserve" cannot be read/.test(e.message));
  } finally {
    bad.done();
  }
});

test('records read back as written; one no updater wrote is an error naming it, not a guess', () => {
  const { ctx, done } = journaled([
    ['apply', 'pull', { step: 'pull', ref: 'registry/web:1.1.0' }],
    ['apply', 'write-tag', { step: 'write-tag', tag: '1.1.0' }],
    ['apply', 'teleport', { step: 'teleport' }],
  ]);
  try {
    assert.throws(
      () => containerSteps(ctx, 'apply'),
      (e: unknown) => e instanceof UpdateError && e.code === 'internal' && /the journaled step "teleport" cannot be read/.test(e.message),
    );
  } finally {
    done();
  }
});

test('the engine journals a step as its record: the step column names it, the detail is its JSON', async () => {
  const root = tempDir();
  seedRoot(root);
  const h = openHarness(root);
  try {
    const { runId } = await h.engine.startRun('dir', { version: '1.1.0' });
    assert.equal((await h.engine.waitForRun(runId)).state, 'succeeded');
    const writes = h.journal.steps(runId, 'apply');
    assert.ok(writes.length > 0);
    for (const row of writes) {
      assert.equal(row.step, 'write');
      assert.deepEqual(JSON.parse(row.detail!), { step: 'write', file: JSON.parse(row.detail!).file });
      assert.deepEqual(stepRecord(row), JSON.parse(row.detail!));
    }
  } finally {
    h.close();
    cleanup(root);
  }
});

test('release facts and backup details are checked when read back', () => {
  assert.throws(() => releaseOf(context({ release: null })), /the run has no resolved release/);
  assert.throws(
    () => releaseOf(context({ release: { tag: 'v1.1.0', url: 'https://x', assets: [{ name: 'a', url: 'https://x/a' }] } })),
    (e: unknown) => e instanceof UpdateError && e.code === 'internal' && /the release recorded by run 7 cannot be read at assets\.0\.size/.test(e.message),
  );
  const good = { tag: 'v1.1.0', url: 'https://x', assets: [{ name: 'a', url: 'https://x/a', size: 3 }] };
  assert.deepEqual(releaseOf(context({ release: good })), good);

  assert.throws(() => backupOf(context({ backup: null })), (e: unknown) => e instanceof UpdateError && e.code === 'no_backup');
  assert.throws(
    () => backupOf(context({ backup: { path: '/b.yml', details: { composeFile: '/c.yml', service: 'web', repository: 'r/web', tag: 1 } } })),
    /the backup details of run 7 cannot be read at tag/,
  );
  const details = { composeFile: '/c.yml', service: 'web', repository: 'r/web', tag: '1.0.0', imageId: null };
  assert.deepEqual(backupOf(context({ backup: { path: '/b.yml', details } })), { ...details, path: '/b.yml' });
});

test('an app run left in apply by the previous updater (steps as sentences) is recovered and rolled back', async () => {
  const dir = tempDir('updater-legacy-');
  try {
    const live = join(dir, 'core');
    const tree = (at: string, version: string) => {
      mkdirSync(at, { recursive: true });
      writeFileSync(join(at, 'VERSION'), `${version}\n`);
      writeFileSync(join(at, 'data.txt'), `data of ${version}\n`);
    };
    writeFileSync(
      join(dir, 'updater.yaml'),
      'dataDir: ./data\ncomponents:\n  - {name: core, kind: app, repo: o/core, installPath: ./core, settleSeconds: 0, service: {manager: command, start: "true", stop: "true", status: "true"}}\n',
    );
    const { config } = loadConfig({ cwd: dir, env: {} });
    ensureDirs(config);
    const db = openDatabase(join(config.dataDir, 'updater.db'));
    try {
      const journal = new Journal(db);
      // What the previous updater left: the old tree aside, the new one in place, its steps as sentences.
      const snapshotAt = (runId: number, state: string) => {
        const context = {
          ...newRunContext({ runId, component: 'core', kind: 'app', fromVersion: '1.0.0' }),
          toVersion: '1.1.0',
          release: { tag: 'v1.1.0', url: 'https://example.invalid/o/core/releases/tag/v1.1.0', assets: [] },
          backup: { path: join(config.backupDir, 'core.20260101_120000.tar.gz'), details: { installPath: live, oldTree: `${live}.old-${runId}` } },
        };
        return JSON.stringify({ machineVersion: MACHINE_VERSION, state, context });
      };
      const runId = journal.createRun({ component: 'core', kind: 'app', mode: 'update', requestedVersion: null, fromVersion: '1.0.0', dryRun: false, machineVersion: MACHINE_VERSION, snapshot: (id) => snapshotAt(id, 'idle') });
      for (const state of ['discover', 'validate', 'backup', 'apply']) {
        journal.commitTransition({ runId, to: state, event: 'x', message: state, level: 'info', snapshot: snapshotAt(runId, state), fromVersion: '1.0.0', toVersion: '1.1.0', recoveries: 0 });
      }
      journal.recordStep(runId, 'backup', `write ${join(config.backupDir, 'core.20260101_120000.tar.gz')}`);
      for (const step of ['stop service', 'move old tree aside', 'move new tree in', 'start service']) journal.recordStep(runId, 'apply', step);
      tree(`${live}.old-${runId}`, '1.0.0');
      tree(live, '1.1.0');

      const github = new GitHubClient({ apiUrl: 'http://127.0.0.1:9', rawUrl: 'http://127.0.0.1:9', token: null, cache: journal.httpCache, logger: silent });
      const drivers = createDrivers(config, KINDS, new ReleaseDiscovery(github, { includePrerelease: false, updaterVersion: '0.1.0' }), silent);
      const engine = new Engine({ journal, components: config.components, driverFor: drivers.driverFor, logger: silent });
      const [run] = await engine.recover();
      assert.equal(run!.state, 'rolled_back', run!.message ?? '');
      assert.equal(readFileSync(join(live, 'VERSION'), 'utf8'), '1.0.0\n');
      assert.deepEqual(journal.steps(runId, 'rollback').map((s) => s.step), ['stop', 'failed-aside', 'old-back', 'start']);
      await engine.close();
    } finally {
      db.close();
    }
  } finally {
    cleanup(dir);
  }
});
