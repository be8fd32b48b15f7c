/**
 * Release discovery end to end over real HTTP against the local fake of GitHub: the checker
 * (boot and scheduled checks, stale results, one check at a time) and runs whose discover and
 * validate use the releases and their manifests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { startFakeGitHub, type FakeGitHub } from '../src/demo/local-github.js';
import { cleanup, seedRoot, tempDir, testConfig } from './support/harness.js';
import { LAUNCHER } from './support/built.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';
import { Engine } from '../src/engine/engine.js';
import { GitHubClient } from '../src/releases/github.js';
import { ReleaseDiscovery } from '../src/releases/discovery.js';
import { UpdateChecker, toCheckResult } from '../src/releases/checker.js';
import { readInstalled } from '../src/kinds/index.js';
import { ComponentDriver } from '../src/drivers/component-driver.js';
import type { ComponentKind, KindDriver } from '../src/kinds/kind.js';
import type { ReleaseSource } from '../src/releases/discovery.js';
import { createCore } from '../src/main.js';
import { z } from 'zod';
import { readVersionFile } from '../src/core/version-file.js';
import type { ComponentConfig } from '../src/config/index.js';
import { DirDriver, readTree } from './support/dir-driver.js';

const silent = pino({ level: 'silent' });

function appComponent(name: string, repo: string, installPath: string): ComponentConfig {
  return { name, kind: 'app', repo, installPath, asset: `${name}-{version}.tar.gz`, service: { manager: 'command', start: 'true', stop: 'true', status: 'true' }, minFreeMB: 0 } as unknown as ComponentConfig;
}

async function world() {
  const dir = tempDir();
  const gh = await startFakeGitHub();
  const db = openDatabase(join(dir, 'updater.db'));
  const journal = new Journal(db);
  const client = new GitHubClient({ apiUrl: gh.apiUrl, rawUrl: gh.rawUrl, token: null, cache: journal.httpCache, logger: silent, timeoutMs: 300, retries: 1, backoffMs: 10 });
  return {
    dir,
    gh,
    db,
    journal,
    client,
    checker(components: ComponentConfig[], extra: { includePrerelease?: boolean; checkIntervalHours?: number } = {}) {
      return new UpdateChecker({ config: { components, includePrerelease: extra.includePrerelease ?? false, checkIntervalHours: extra.checkIntervalHours ?? 0 }, store: journal.components, source: client, readInstalled, logger: silent });
    },
    app(name: string, version: string | null) {
      const path = join(dir, name);
      mkdirSync(path, { recursive: true });
      if (version !== null) writeFileSync(join(path, 'VERSION'), `${version}\n`);
      return appComponent(name, `o/${name}`, path);
    },
    async close() {
      db.close();
      await gh.close();
      cleanup(dir);
    },
  };
}

const CONTRACT_TABLE: Array<[string, string, boolean]> = [
  ['v1.2.0', '1.1.0', true],
  ['v1.1.5', '1.1.5', false],
  ['v2.0.0', '1.9.9', true],
  ['v1.0.0-beta', '1.0.0', false],
  ['v1.1.0', '1.2.0', false],
];

test('the contract table row by row, over real HTTP, with release notes and URLs', async () => {
  const w = await world();
  try {
    const components = CONTRACT_TABLE.map(([tag, installed], i) => {
      const c = w.app(`c${i}`, installed);
      w.gh.addRelease(c.repo, { tag, body: `notes for ${tag}`, prerelease: tag.includes('-') });
      return c;
    });
    const statuses = await w.checker(components).check();
    CONTRACT_TABLE.forEach(([tag, installed, expected], i) => {
      const s = statuses[i]!;
      assert.equal(s.update_available, expected, `${tag} over ${installed}`);
      assert.equal(s.current_version, installed);
      assert.ok(s.last_checked);
    });
    const body = toCheckResult(statuses);
    assert.deepEqual(Object.keys(body.components), ['c0', 'c1', 'c2', 'c3', 'c4']);
    assert.equal(body.components.c0!.latest, '1.2.0');
    assert.equal(body.components.c0!.release_notes, 'notes for v1.2.0');
    assert.match(body.components.c0!.release_url!, /\/o\/c0\/releases\/tag\/v1\.2\.0$/);
    // The prerelease is not offered at all: nothing newer than 1.0.0 exists for c3.
    assert.equal(body.components.c3!.latest, null);
  } finally {
    await w.close();
  }
});

test('highest semver wins over newest by date; drafts never; prereleases only with includePrerelease', async () => {
  const w = await world();
  try {
    const c = w.app('core', '1.0.0');
    w.gh.addRelease(c.repo, { tag: 'v1.10.0', publishedAt: '2024-01-01T00:00:00Z' });
    w.gh.addRelease(c.repo, { tag: 'v1.9.0', publishedAt: '2025-01-01T00:00:00Z' });
    w.gh.addRelease(c.repo, { tag: 'v3.0.0', draft: true });
    w.gh.addRelease(c.repo, { tag: 'v2.0.0-rc.1', prerelease: true });
    assert.equal((await w.checker([c]).check())[0]!.latest_version, '1.10.0');
    assert.equal((await w.checker([c], { includePrerelease: true }).check())[0]!.latest_version, '2.0.0-rc.1');
  } finally {
    await w.close();
  }
});

test('an unreadable installed version gives no offer and a reason, never a guess', async () => {
  const w = await world();
  try {
    const c = w.app('core', null);
    w.gh.addRelease(c.repo, { tag: 'v9.0.0' });
    const [s] = await w.checker([c]).check();
    assert.equal(s!.update_available, false);
    assert.equal(s!.latest_version, '9.0.0');
    assert.match(s!.reason!, /no VERSION file/);
    assert.match(toCheckResult([s!]).components.core!.reason!, /no VERSION file/);
  } finally {
    await w.close();
  }
});

test('checks never run two at once, and a warm check is answered by 304s', async () => {
  const w = await world();
  try {
    const cs = ['a', 'b', 'c'].map((n) => {
      const c = w.app(n, '1.0.0');
      w.gh.addRelease(c.repo, { tag: 'v1.1.0' });
      return c;
    });
    const checker = w.checker(cs);
    const [r1, r2] = await Promise.all([checker.check(), checker.check()]);
    assert.deepEqual(r1, r2);
    const lists = w.gh.requests.filter((r) => /\/releases\?/.test(r.path));
    assert.equal(lists.length, 3, 'one list request per repo, not two');
    w.gh.resetRequests();
    await checker.check();
    assert.deepEqual(w.gh.requests.map((r) => r.status), [304, 304, 304]);
    assert.ok(w.gh.requests.every((r) => typeof r.headers['if-none-match'] === 'string'));
  } finally {
    await w.close();
  }
});

test('GitHub failing or hanging: bounded, the last known result is kept and flagged stale', async () => {
  const w = await world();
  try {
    const c = w.app('core', '1.0.0');
    w.gh.addRelease(c.repo, { tag: 'v1.1.0', body: 'good notes' });
    const checker = w.checker([c]);
    assert.equal((await checker.check())[0]!.stale, false);

    w.gh.failNext(10, 500);
    const [s500] = await checker.check();
    assert.equal(s500!.stale, true);
    assert.equal(s500!.latest_version, '1.1.0');
    assert.equal(s500!.update_available, true);
    assert.match(s500!.reason!, /showing the result from/);

    w.gh.failNext(0, 500);
    w.gh.hang(true);
    const [sHang] = await checker.check();
    assert.equal(sHang!.stale, true);
    assert.equal(sHang!.latest_version, '1.1.0');
    assert.match(sHang!.reason!, /no answer within 300 ms/);
    w.gh.hang(false);

    // A repository never seen before, with GitHub down: no result, a clear reason.
    const fresh = w.app('fresh', '1.0.0');
    w.gh.failNext(10, 503);
    const [sFresh] = await w.checker([fresh]).check();
    assert.equal(sFresh!.stale, true);
    assert.equal(sFresh!.latest_version, null);
    assert.match(sFresh!.reason!, /GitHub is unreachable \(HTTP 503\) after 2 attempts/);
  } finally {
    await w.close();
  }
});

test('rate limited: no further requests until the reset, and the result says until when', async () => {
  const w = await world();
  try {
    const c = w.app('core', '1.0.0');
    w.gh.addRelease(c.repo, { tag: 'v1.1.0' });
    const checker = w.checker([c]);
    await checker.check();
    w.gh.rateLimit({ until: new Date(Date.now() + 3_600_000), kind: 'primary' });
    const [limited] = await checker.check();
    assert.equal(limited!.stale, true);
    assert.match(limited!.reason!, /rate limited until \d{4}-\d\d-\d\dT/);
    w.gh.resetRequests();
    const [again] = await checker.check();
    assert.equal(w.gh.requests.length, 0, 'no request while rate limited');
    assert.equal(again!.latest_version, '1.1.0');
  } finally {
    await w.close();
  }
});

test('scheduled checks run every checkIntervalHours; 0 turns them off', async () => {
  const w = await world();
  try {
    const c = w.app('core', '1.0.0');
    w.gh.addRelease(c.repo, { tag: 'v1.1.0' });
    const off = w.checker([c], { checkIntervalHours: 0 });
    off.startSchedule();
    const on = w.checker([c], { checkIntervalHours: 0.1 / 3600 }); // every 100 ms
    on.startSchedule();
    const keepAlive = setInterval(() => {}, 50);
    try {
      const deadline = Date.now() + 10_000;
      while (w.gh.requests.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      clearInterval(keepAlive);
      on.stop();
    }
    assert.ok(w.gh.requests.length >= 3, `scheduled checks reached GitHub ${w.gh.requests.length} times`);
    assert.ok(on.statuses()[0]!.last_checked);
  } finally {
    await w.close();
  }
});

/** A kind driver over DirDriver's tree, so runs through the real discovery do real file work. */
function dirKind(root: string): KindDriver {
  const d = new DirDriver(root);
  return {
    installed: () => readVersionFile(d.live),
    validate: async (run) => d.validate(run),
    backup: (run, ctx) => d.backup(run, ctx),
    apply: (run, ctx) => d.apply(run, ctx),
    verify: async (run) => d.verify(run),
    rollback: (run, ctx) => d.rollback(run, ctx),
  };
}

async function runWith(setup: (gh: FakeGitHub) => void, version: string | null = null) {
  const w = await world();
  const root = join(w.dir, 'app');
  seedRoot(root);
  const component = appComponent('core', 'o/core', join(root, 'live'));
  w.gh.addRelease('o/core', { tag: 'v1.1.0' });
  setup(w.gh);
  const discovery = new ReleaseDiscovery(w.client, { includePrerelease: false, updaterVersion: '0.1.0' });
  const driver = new ComponentDriver(component, dirKind(root), discovery);
  const engine = new Engine({ journal: w.journal, components: [component], driverFor: () => driver, logger: silent });
  const before = readTree(join(root, 'live'));
  const run = await engine.waitForRun((await engine.startRun('core', { version })).runId);
  return { w, run, before, live: readTree(join(root, 'live')), backups: readdirSync(join(root, 'backups')) };
}

test('a run: no manifest (404) → built-in defaults, the latest release is installed', async () => {
  const r = await runWith(() => {});
  try {
    assert.equal(r.run.state, 'succeeded', r.run.message!);
    assert.equal(r.run.message, 'Updated core to 1.1.0');
    assert.ok(r.w.gh.requests.some((q) => q.path === '/raw/o/core/v1.1.0/update-manifest.yaml' && q.status === 404));
  } finally {
    await r.w.close();
  }
});

test('a run: min_remote_version with no remote component is compared with this updater\'s own version', async () => {
  const r = await runWith((gh) => gh.setRaw('o/core', 'v1.1.0', 'update-manifest.yaml', 'min_remote_version: 0.1.0\nmin_free_mb: 1\n'));
  try {
    assert.equal(r.run.state, 'succeeded', r.run.message!);
  } finally {
    await r.w.close();
  }
  const old = await runWith((gh) => gh.setRaw('o/core', 'v1.1.0', 'update-manifest.yaml', 'min_remote_version: 99.0.0\n'));
  try {
    assert.equal(old.run.state, 'aborted');
    assert.equal(old.run.message, 'Update of core aborted during validate, nothing was changed: Remote too old: needs 99.0.0, has 0.1.0');
    assert.equal(old.run.error?.code, 'remote_too_old');
    assert.deepEqual(old.live, old.before);
  } finally {
    await old.w.close();
  }
});

test('a run: manifest too new for this updater → aborted "Updater too old", nothing changed', async () => {
  const r = await runWith((gh) => gh.setRaw('o/core', 'v1.1.0', 'update-manifest.yaml', 'min_updater_version: 99.0.0\n'));
  try {
    assert.equal(r.run.state, 'aborted');
    assert.equal(r.run.message, 'Update of core aborted during validate, nothing was changed: Updater too old: needs 99.0.0, has 0.1.0');
    assert.equal(r.run.error?.code, 'updater_too_old');
    assert.deepEqual(r.live, r.before);
    assert.deepEqual(r.backups, []);
  } finally {
    await r.w.close();
  }
});

/**
 * A run of `core` through the composition root, with a `remote` component (or the one
 * `remoteComponent` names) whose VERSION file says `remoteVersion` (null: no VERSION file), and
 * `manifest` as core 1.1.0's update-manifest.yaml.
 */
async function runWithRemote(o: { manifest: string; remoteVersion: string | null; remoteName?: string; remoteComponent?: string }) {
  const dir = tempDir();
  const root = join(dir, 'core');
  seedRoot(root);
  const remoteDir = join(dir, 'remote-live');
  mkdirSync(remoteDir, { recursive: true });
  if (o.remoteVersion !== null) writeFileSync(join(remoteDir, 'VERSION'), `${o.remoteVersion}\n`);
  const core = appComponent('core', 'o/core', join(root, 'live'));
  const remote = appComponent(o.remoteName ?? 'remote', 'o/remote', remoteDir);
  const kind: ComponentKind = {
    kind: 'app',
    configSchema: z.strictObject({ kind: z.literal('app'), name: z.string() }),
    readInstalled: (c) => readVersionFile((c as unknown as { installPath: string }).installPath),
    createDriver: () => {
      throw new Error('driven through createCore({drivers})');
    },
  };
  const source: ReleaseSource = {
    async listReleases(repo) {
      const rel = { tag: 'v1.1.0', name: 'v1.1.0', notes: '', url: `https://example.invalid/${repo}/releases/tag/v1.1.0`, draft: false, prerelease: false, publishedAt: null, assets: [] };
      return { value: [rel], stale: false, reason: null, fetchedAt: new Date().toISOString() };
    },
    async releaseByVersion() {
      return null;
    },
    async fetchRaw(repo, ref, path) {
      return repo === 'o/core' && ref === 'v1.1.0' && path === 'update-manifest.yaml' ? o.manifest : null;
    },
  };
  const built = createCore({
    config: testConfig({ dataDir: join(dir, 'data'), components: [core, remote], manifest: { remoteComponent: o.remoteComponent ?? 'remote' } }),
    kinds: [kind],
    drivers: (_config, discovery) => {
      const driver = new ComponentDriver(core, dirKind(root), discovery);
      return { driverFor: () => driver, running: async () => null };
    },
    logger: silent,
    releases: source,
  });
  const before = readTree(join(root, 'live'));
  try {
    const run = await built.engine.waitForRun((await built.engine.startRun('core')).runId);
    return { run, before, live: readTree(join(root, 'live')), backups: readdirSync(join(root, 'backups')) };
  } finally {
    await built.close();
    cleanup(dir);
  }
}

test('a run: min_remote_version against the installed remote: new enough → the run goes on; too old → aborted, nothing changed', async () => {
  for (const has of ['1.2.0', '1.3.1']) {
    const r = await runWithRemote({ manifest: 'min_remote_version: 1.2.0\n', remoteVersion: has });
    assert.equal(r.run.state, 'succeeded', `remote ${has}: ${r.run.message}`);
  }
  for (const [has, shown] of [['1.1.0', '1.1.0'], ['v1.1.9', '1.1.9'], ['1.2.0-rc.1', '1.2.0-rc.1']] as const) {
    const r = await runWithRemote({ manifest: 'min_remote_version: 1.2.0\n', remoteVersion: has });
    assert.equal(r.run.state, 'aborted', `remote ${has}`);
    assert.equal(r.run.message, `Update of core aborted during validate, nothing was changed: Remote too old: needs 1.2.0, has ${shown}`);
    assert.equal(r.run.error?.code, 'remote_too_old');
    assert.deepEqual(r.live, r.before, 'nothing changed');
    assert.deepEqual(r.backups, [], 'no backup made');
  }
});

test('a run: an unreadable remote version → aborted "has an unknown version (REASON)"', async () => {
  const missing = await runWithRemote({ manifest: 'min_remote_version: 1.2.0\n', remoteVersion: null });
  assert.equal(missing.run.state, 'aborted');
  assert.match(missing.run.message!, /: Remote too old: needs 1\.2\.0, has an unknown version \(no VERSION file in \/.+\/remote-live\)$/);
  assert.deepEqual(missing.live, missing.before);
  const garbage = await runWithRemote({ manifest: 'min_remote_version: 1.2.0\n', remoteVersion: 'dev build' });
  assert.equal(garbage.run.state, 'aborted');
  assert.match(garbage.run.message!, /: Remote too old: needs 1\.2\.0, has an unknown version \(.*not a version.*\)$/);
  // No minimum asked for: an unreadable remote does not matter.
  const unasked = await runWithRemote({ manifest: 'min_free_mb: 0\n', remoteVersion: null });
  assert.equal(unasked.run.state, 'succeeded', unasked.run.message!);
});

test('a run: manifest.remoteComponent names another component; both minimums are checked', async () => {
  const bridge = await runWithRemote({ manifest: 'min_remote_version: 1.2.0\n', remoteVersion: '1.1.0', remoteName: 'bridge', remoteComponent: 'bridge' });
  assert.equal(bridge.run.message, 'Update of core aborted during validate, nothing was changed: Remote too old: needs 1.2.0, has 1.1.0');
  // The same component under another name, not the one named: the updater's own version (0.1.0) is compared.
  const unnamed = await runWithRemote({ manifest: 'min_remote_version: 0.1.0\n', remoteVersion: '0.0.1', remoteName: 'bridge' });
  assert.equal(unnamed.run.state, 'succeeded', unnamed.run.message!);

  const remoteOld = await runWithRemote({ manifest: 'min_updater_version: 0.1.0\nmin_remote_version: 1.2.0\n', remoteVersion: '1.1.0' });
  assert.equal(remoteOld.run.message, 'Update of core aborted during validate, nothing was changed: Remote too old: needs 1.2.0, has 1.1.0');
  const updaterOld = await runWithRemote({ manifest: 'min_updater_version: 99.0.0\nmin_remote_version: 1.2.0\n', remoteVersion: '1.2.0' });
  assert.equal(updaterOld.run.message, 'Update of core aborted during validate, nothing was changed: Updater too old: needs 99.0.0, has 0.1.0');
  const bothMet = await runWithRemote({ manifest: 'min_updater_version: 0.1.0\nmin_remote_version: 1.2.0\n', remoteVersion: '1.2.0' });
  assert.equal(bothMet.run.state, 'succeeded', bothMet.run.message!);
});

test('a run: malformed manifest → aborted with the parse error, nothing changed', async () => {
  const r = await runWith((gh) => gh.setRaw('o/core', 'v1.1.0', 'update-manifest.yaml', 'min_updater_version: [0.1\n'));
  try {
    assert.equal(r.run.state, 'aborted');
    assert.match(r.run.message!, /update-manifest\.yaml of o\/core v1\.1\.0 is malformed: line \d+/);
    assert.deepEqual(r.live, r.before);
    assert.deepEqual(r.backups, []);
  } finally {
    await r.w.close();
  }
});

test('a run to a version that has no release ends aborted, naming the tags looked for', async () => {
  const r = await runWith(() => {}, '9.9.9');
  try {
    assert.equal(r.run.state, 'aborted');
    assert.match(r.run.message!, /o\/core has no release 9\.9\.9 \(looked for tags v9\.9\.9 and 9\.9\.9\)/);
  } finally {
    await r.w.close();
  }
});

test('`updater check` prints a table of what the fake GitHub offers', async () => {
  const w = await world();
  try {
    const c = w.app('core', '1.0.0');
    w.gh.addRelease(c.repo, { tag: 'v1.2.0' });
    const cfg = join(w.dir, 'updater.yaml');
    const { freePort } = await import('./support/testbed.js');
    writeFileSync(cfg, `dataDir: ./data\nserver: {port: ${await freePort()}}\ngithub: {apiUrl: "${w.gh.apiUrl}", rawUrl: "${w.gh.rawUrl}"}\ncomponents:\n  - {name: core, kind: app, repo: o/core, installPath: ./core, service: {manager: command, start: "true", stop: "true", status: "true"}}\n`);
    // Asynchronously: the fake GitHub answers from this very process.
    const run = (...args: string[]) =>
      promisify(execFile)(LAUNCHER, [...args, '--config', cfg], { encoding: 'utf8', timeout: 30_000 }).then(
        (r) => ({ status: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ status: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const r = await run('check');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^COMPONENT\s+KIND\s+INSTALLED\s+LATEST\s+UPDATE/m);
    assert.match(r.stdout, /^core\s+app\s+1\.0\.0\s+1\.2\.0\s+yes/m);
    const json = await run('check', 'core', '--json');
    assert.equal(JSON.parse(json.stdout).components.core.update_available, true);
    assert.equal((await run('check', 'nope')).status, 1);
  } finally {
    await w.close();
  }
});
