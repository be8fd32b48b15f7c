/**
 * Kinds are plug-ins: a third kind (test/support/kinds/dircopy/) is registered through the
 * registry only, `[...KINDS, dircopyKind]`, given to the configuration loader and to the drivers,
 * and runs updates end to end through the engine, with its releases listed by the local stand-in
 * for GitHub. Without it in the list, the same configuration is refused naming the known kinds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { createDrivers } from '../src/drivers/index.js';
import { Engine } from '../src/engine/engine.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { KINDS, installedReader, kindNames } from '../src/kinds/index.js';
import { UpdateChecker } from '../src/releases/checker.js';
import { ReleaseDiscovery } from '../src/releases/discovery.js';
import { GitHubClient } from '../src/releases/github.js';
import { startFakeGitHub } from '../src/demo/local-github.js';
import { dircopyKind } from './support/kinds/dircopy/index.js';
import { readTree } from './support/dir-driver.js';
import { cleanup, tempDir } from './support/harness.js';

const silent = pino({ level: process.env.TEST_LOG ?? 'silent' });
const kinds = [...KINDS, dircopyKind];

function tree(dir: string, version: string, extra: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  writeFileSync(join(dir, 'data.txt'), `data of ${version}\n`);
  for (const [name, body] of Object.entries(extra)) writeFileSync(join(dir, name), body);
}

/** A device with one dircopy component at 1.0.0 (relative paths, as a user writes them) and an app beside it. */
async function world() {
  const dir = tempDir('updater-kinds-');
  const gh = await startFakeGitHub();
  tree(join(dir, 'site'), '1.0.0');
  tree(join(dir, 'releases', '1.1.0'), '1.1.0', { 'new.txt': 'new in 1.1.0\n' });
  tree(join(dir, 'releases', '1.2.0'), '1.2.0', { BROKEN: 'yes\n' });
  gh.addRelease('o/site', { tag: 'v1.1.0' });
  writeFileSync(
    join(dir, 'updater.yaml'),
    [
      'dataDir: ./data',
      `github: {apiUrl: "${gh.apiUrl}", rawUrl: "${gh.rawUrl}"}`,
      'components:',
      '  - {name: site, kind: dircopy, repo: o/site, releasesDir: ./releases, target: ./site}',
      '  - {name: core, kind: app, repo: o/core, installPath: ./core, service: {manager: command, start: "true", stop: "true", status: "true"}}',
      '',
    ].join('\n'),
  );
  return {
    dir,
    gh,
    async close() {
      await gh.close();
      cleanup(dir);
    },
  };
}

test('a kind the registry does not list is refused at config load, naming the known kinds', async () => {
  const w = await world();
  try {
    assert.throws(
      () => loadConfig({ cwd: w.dir, env: {} }),
      (e: unknown) => e instanceof ConfigError && e.issues.includes('components[0].kind: must be one of container, app, self'),
    );
    // With the kind registered: typed, its paths resolved by its own resolve.
    const { config } = loadConfig({ cwd: w.dir, env: {} }, { kinds });
    const site = config.components.find((c) => c.kind === 'dircopy');
    assert.ok(site && site.kind === 'dircopy');
    assert.equal(site.target, join(w.dir, 'site'));
    assert.equal(site.releasesDir, join(w.dir, 'releases'));
    assert.deepEqual(kindNames(kinds), ['container', 'app', 'self', 'dircopy']);
    // Its schema is strict and its own keys are required for it, like a built-in kind's.
    writeFileSync(join(w.dir, 'updater.yaml'), 'components:\n  - {name: site, kind: dircopy, repo: o/site, releasesDir: ./r, tagret: ./s}\n');
    assert.throws(
      () => loadConfig({ cwd: w.dir, env: {} }, { kinds }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.issues.join('\n') === 'components[0].target: required for kind dircopy\ncomponents[0].tagret: unknown key "tagret" (did you mean "target"?)',
    );
  } finally {
    await w.close();
  }
});

test('drivers for a kind not in their list are refused, naming the known kinds (never treated as another kind)', async () => {
  const w = await world();
  try {
    const { config } = loadConfig({ cwd: w.dir, env: {} }, { kinds });
    const db = openDatabase(join(w.dir, 'updater.db'));
    try {
      const journal = new Journal(db);
      const github = new GitHubClient({ apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, token: null, cache: journal.httpCache, logger: silent });
      const discovery = new ReleaseDiscovery(github, { includePrerelease: false, updaterVersion: '0.1.0' });
      assert.throws(() => createDrivers(config, KINDS, discovery, silent), /component "site" is of kind "dircopy", which this updater does not know \(known kinds: container, app, self\)/);
    } finally {
      db.close();
    }
  } finally {
    await w.close();
  }
});

test('a third kind, registered from a test folder, is checked and updated end to end through the engine', async () => {
  const w = await world();
  const { config } = loadConfig({ cwd: w.dir, env: {} }, { kinds });
  mkdirSync(config.dataDir, { recursive: true });
  mkdirSync(config.backupDir, { recursive: true });
  const db = openDatabase(join(config.dataDir, 'updater.db'));
  try {
    const journal = new Journal(db);
    const github = new GitHubClient({ apiUrl: config.github.apiUrl, rawUrl: config.github.rawUrl, token: null, cache: journal.httpCache, logger: silent });
    const discovery = new ReleaseDiscovery(github, { includePrerelease: false, updaterVersion: '0.1.0' });
    const drivers = createDrivers(config, kinds, discovery, silent);
    const engine = new Engine({ journal, components: config.components, driverFor: drivers.driverFor, logger: silent });
    const checker = new UpdateChecker({ config, store: journal.components, source: github, readInstalled: installedReader(kinds), logger: silent });
    const site = join(w.dir, 'site');
    const before = readTree(site);

    // The check reads the installed version through the kind, and GitHub's releases.
    const [found] = await checker.check('site');
    assert.equal(found!.kind, 'dircopy');
    assert.equal(found!.current_version, '1.0.0');
    assert.equal(found!.latest_version, '1.1.0');
    assert.equal(found!.update_available, true);
    assert.equal(await drivers.running({ name: 'site' }), true);

    // An update: discover (GitHub), validate, backup, apply, verify, through the kind's driver.
    const ok = await engine.waitForRun((await engine.startRun('site')).runId);
    assert.equal(ok.state, 'succeeded', ok.message ?? '');
    assert.equal(ok.message, 'Updated site to 1.1.0');
    assert.equal(ok.kind, 'dircopy');
    assert.deepEqual(readTree(site), readTree(join(w.dir, 'releases', '1.1.0')));
    assert.deepEqual(journal.steps(ok.run_id, 'apply').map((s) => s.step), ['stage', 'old-aside', 'new-in']);
    assert.equal(checker.refreshInstalled('site')!.update_available, false);
    assert.deepEqual(readdirSync(w.dir).filter((n) => n.startsWith('site.')), [], 'staging and the old tree are cleaned up');

    // A release that does not come up is rolled back to the bytes that were there.
    w.gh.addRelease('o/site', { tag: 'v1.2.0' });
    const installed = readTree(site);
    const bad = await engine.waitForRun((await engine.startRun('site', { version: '1.2.0' })).runId);
    assert.equal(bad.state, 'rolled_back', bad.message ?? '');
    assert.match(bad.message!, /does not come up/);
    assert.deepEqual(readTree(site), installed);

    // And a manual rollback restores the newest backup (the 1.1.0 tree the failed run backed up).
    const restore = await engine.waitForRun((await engine.startRun('site', { mode: 'restore' })).runId);
    assert.equal(restore.state, 'rolled_back', restore.message ?? '');
    assert.deepEqual(readTree(site), installed);
    assert.notDeepEqual(readTree(site), before);
    await engine.close();
  } finally {
    db.close();
    await w.close();
  }
});
