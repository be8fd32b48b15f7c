/**
 * Real DuneBugger core releases on the real systemd of the test bed: tarballs shaped like the
 * core's (no top-level folder: app/, app/config/dunebugger.conf, requirements.txt, a JSON VERSION,
 * CHANGELOG.md, ReadMe.md; made with the real tar), a `.sha256` in sha256sum format, a venv for
 * requirements.txt, and `preserve: ["app/config/*.conf"]` as the ini gives the core.
 *
 * What a device needs of them: its edited conf survives an update (the release's is left beside
 * it as `.new`) and the final message says so; a later bad release rolls back to the tree exactly
 * as it was; the JSON VERSION is what is installed; a dry run downloads the asset and checks its
 * sha256, and the real run installs that very download; SIGKILLs around the preserve step recover.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testbed } from './support/testbed.js';
import { appWorld, CORE_ROOT, jsonVersion, leftovers, RELEASE_CONF, sharedVenv, treeHash, type AppWorld, type AppWorldOptions, type ReleaseSpec } from './support/app-world.js';
import { crashAndRecover, type CrashCase, type CrashResult } from './support/crash-table.js';
import type { AppCrashWorld } from './support/app-crash-child.js';

const { skip, need } = await testbed();
const CHILD = join(import.meta.dirname, 'support', 'app-crash-child.ts');

const CONF = 'app/config/dunebugger.conf';
const DEVICE_CONF = '[General]\nmode = edited on the device\nlanguage = it\n';
const CONF_1_1 = '[General]\nmode = factory\nlanguage = en\nnew_option = yes\n';
const KEPT = "kept app/config/dunebugger.conf (the release's is app/config/dunebugger.conf.new)";

// One venv for every world of this file (requirements.txt is installed into it through the bed's systemd container).
let venv: ReturnType<typeof sharedVenv> | null = null;
after(async () => {
  if (venv) await (await venv).remove();
});
/** The core as the ini configures it: the core layout, a venv, preserve app/config/*.conf. */
async function core(more: AppWorldOptions = {}): Promise<AppWorldOptions> {
  venv ??= sharedVenv(need());
  return { layout: 'core', venv: (await venv).path, preserve: ['app/config/*.conf'], ...more };
}

const release = (version: string, more: Partial<ReleaseSpec> = {}): ReleaseSpec => ({ version, layout: 'core', sha256: true, ...more });
const asset = (version: string) => `sample-app-${version}.tar.gz`;
/** How many times the fake GitHub served the asset itself (not its .sha256). */
const served = (w: AppWorld, version: string) => w.gh.requests.filter((r) => r.path.endsWith(`/${asset(version)}`) && r.status === 200).length;
const keptDownload = (w: AppWorld, version: string) => join(w.dataDir, 'downloads', 'sample-app', asset(version));
const read = (w: AppWorld, rel: string) => readFileSync(join(w.installPath, rel), 'utf8');
const active = async (w: AppWorld) => (await w.systemctl('is-active', w.unit)).stdout.trim();

async function update(w: AppWorld, version: string, dryRun = false) {
  return w.engine.waitForRun((await w.engine.startRun('sample-app', { version, dryRun })).runId);
}

test('core layout: the JSON VERSION is read as the installed version, and a check offers 1.1.0', { skip }, async () => {
  const w = await appWorld(need(), [release('1.1.0')], { layout: 'core' });
  try {
    assert.match(read(w, 'VERSION'), /"prerelease": "null"/, 'the installed VERSION is the JSON form');
    await w.core.app.commands.check('sample-app');
    const [view] = await w.core.app.queries.components();
    assert.equal(view!.current_version, '1.0.0', view!.reason ?? '');
    assert.equal(view!.latest_version, '1.1.0');
    assert.equal(view!.update_available, true);
    // Without full_version ("null"), the version and its prerelease make it.
    writeFileSync(join(w.installPath, 'VERSION'), jsonVersion('1.0.0').replace('"prerelease": "null"', '"prerelease": "rc.1"').replace('"full_version": "1.0.0"', '"full_version": "null"'));
    await w.core.app.commands.check('sample-app');
    const [again] = await w.core.app.queries.components();
    assert.equal(again!.current_version, '1.0.0-rc.1', again!.reason ?? '');
    assert.equal(again!.update_available, true);
  } finally {
    await w.close();
  }
});

test('core layout: the dry run downloads and checks the asset, the real run installs that download; the device conf survives beside the release\'s .new; a restore gives the old tree back', { skip }, async () => {
  const w = await appWorld(need(), [release('1.1.0', { conf: CONF_1_1 })], await core());
  try {
    writeFileSync(join(w.installPath, CONF), DEVICE_CONF); // edited on the device
    const before = treeHash(w.installPath);
    const published = (await (await fetch(`${w.gh.url}/download/o/sample-app/v1.1.0/${asset('1.1.0')}.sha256`)).text()).split(/\s+/)[0]!;

    const dry = await update(w, '1.1.0', true);
    assert.equal(dry.state, 'validated', dry.message!);
    assert.equal(dry.message, 'Dry run: sample-app can be updated from 1.0.0 to 1.1.0; nothing was changed');
    assert.equal(served(w, '1.1.0'), 1, 'the dry run downloaded the asset');
    assert.equal(createHashOf(keptDownload(w, '1.1.0')), published, 'and keeps it, whole, for the real run');
    assert.equal(treeHash(w.installPath), before, 'a dry run changes nothing installed');
    assert.equal(await active(w), 'active');

    const r = await update(w, '1.1.0');
    assert.equal(r.state, 'succeeded', r.message!);
    assert.equal(r.message, `Updated sample-app to 1.1.0; ${KEPT}`);
    assert.equal(served(w, '1.1.0'), 1, 'the real run installed the dry run\'s download: the asset was served once');
    assert.equal(read(w, CONF), DEVICE_CONF, 'the device-edited conf survived');
    assert.equal(read(w, `${CONF}.new`), CONF_1_1, 'the release\'s different conf is beside it');
    assert.equal(read(w, 'CHANGELOG.md'), '# Changelog\n\n## 1.1.0\n- a release for the tests\n');
    for (const entry of CORE_ROOT) assert.ok(existsSync(join(w.installPath, entry)), `${entry} installed at the root`);
    assert.deepEqual(await w.health(), { status: 200, body: { status: 'ok', version: '1.1.0', conf: DEVICE_CONF } }, 'the new release runs with the device conf');
    assert.equal((await w.core.app.queries.components())[0]!.current_version, '1.1.0');
    assert.deepEqual(leftovers(w), [], 'the kept download is removed once installed');

    const restore = await w.engine.waitForRun((await w.core.app.commands.restore('sample-app')).runId);
    assert.equal(restore.state, 'rolled_back', restore.message!);
    assert.equal(restore.message, 'Restored sample-app to v1.0.0 from backup');
    assert.equal(treeHash(w.installPath), before, 'the backup gives back the tree before the update, byte for byte, modes included');
    assert.deepEqual(await w.health(), { status: 200, body: { status: 'ok', version: '1.0.0', conf: DEVICE_CONF } });
  } finally {
    await w.close();
  }
});

test('core layout: a later bad release rolls back to the tree exactly as it was (every file, modes included), kept conf and .new alike', { skip }, async () => {
  const w = await appWorld(need(), [release('1.1.0', { conf: CONF_1_1 }), release('1.2.0', { behaviour: 'unhealthy', conf: '[General]\nmode = 1.2.0 default\n' })], await core({ healthTimeoutSeconds: 4 }));
  try {
    writeFileSync(join(w.installPath, CONF), DEVICE_CONF);
    const good = await update(w, '1.1.0');
    assert.equal(good.state, 'succeeded', good.message!);
    const edited = `${DEVICE_CONF}volume = 7\n`;
    writeFileSync(join(w.installPath, CONF), edited); // edited again, on 1.1.0
    const before = treeHash(w.installPath);

    const bad = await update(w, '1.2.0');
    assert.equal(bad.state, 'rolled_back', bad.message!);
    assert.match(bad.message!, /^Post-update checks failed, rolled back to v1\.1\.0: health URL http:\/\/127\.0\.0\.1:\d+\/health answered 500/);
    assert.equal(treeHash(w.installPath), before, 'the whole tree byte-identical, modes included');
    assert.equal(read(w, CONF), edited);
    assert.equal(read(w, `${CONF}.new`), CONF_1_1, 'the .new of 1.1.0, not of 1.2.0');
    assert.equal(await active(w), 'active');
    assert.deepEqual(await w.health(), { status: 200, body: { status: 'ok', version: '1.1.0', conf: edited } });
    assert.deepEqual(leftovers(w), []);
  } finally {
    await w.close();
  }
});

test('core layout: a wrong .sha256 ends the dry run aborted in validate; nothing is kept, nothing changed', { skip }, async () => {
  const w = await appWorld(need(), [release('1.1.0', { sha256: 'wrong' })], { layout: 'core', preserve: ['app/config/*.conf'] });
  try {
    const before = treeHash(w.installPath);
    const dry = await update(w, '1.1.0', true);
    assert.equal(dry.state, 'aborted', dry.message!);
    assert.match(dry.message!, /^Update of sample-app aborted during validate, nothing was changed: checksum mismatch for sample-app-1\.1\.0\.tar\.gz: the release says f{64}, the download is [0-9a-f]{64}$/);
    assert.equal(served(w, '1.1.0'), 1, 'the dry run did download it');
    assert.deepEqual(leftovers(w), [], 'a download that does not match is not kept');
    assert.equal(treeHash(w.installPath), before);
    assert.equal(await active(w), 'active');
  } finally {
    await w.close();
  }
});

test('core layout: the same conf in the release gives no .new; a device conf the release does not ship is kept', { skip }, async () => {
  const w = await appWorld(need(), [release('1.1.0', { conf: RELEASE_CONF })], await core());
  try {
    writeFileSync(join(w.installPath, 'app/config/local.conf'), '[Local]\nsite = lab\n');
    const r = await update(w, '1.1.0');
    assert.equal(r.state, 'succeeded', r.message!);
    assert.equal(r.message, 'Updated sample-app to 1.1.0; kept app/config/dunebugger.conf, app/config/local.conf');
    assert.ok(!existsSync(join(w.installPath, `${CONF}.new`)), 'identical bytes: no .new');
    assert.equal(read(w, 'app/config/local.conf'), '[Local]\nsite = lab\n');
  } finally {
    await w.close();
  }
});

// SIGKILL around the preserve step. Apply's sub-steps here: 1 stop, 2 preserve (the device's files
// copied into the staged tree), 3 old tree aside, 4 new tree in, 5 requirements, 6 start.
const CRASHES: Array<CrashCase & { why: string }> = [
  { fault: 'during:apply:2', version: '1.1.0', expect: 'rolled_back', why: 'stopped, the device files not yet copied' },
  { fault: 'during:apply:3', version: '1.1.0', expect: 'rolled_back', why: 'the device files copied into the staged tree' },
  { fault: 'during:apply:4', version: '1.1.0', expect: 'rolled_back', why: 'the old tree aside' },
  { fault: 'after:verify', version: '1.1.0', expect: 'succeeded', why: 'verify again; the kept files still named in the message' },
  { fault: 'during:rollback', version: '1.2.0', expect: 'rolled_back', why: 'rolling back a bad release again' },
];
const results: CrashResult[] = [];

for (const c of CRASHES) {
  test(`core layout with preserve: SIGKILL at ${c.fault} updating to ${c.version} (${c.why}) → ${c.expect}`, { skip }, async () => {
    const bed = need();
    const w = await appWorld(bed, [release('1.1.0', { conf: CONF_1_1 }), release('1.2.0', { behaviour: 'unhealthy' })], await core({ healthTimeoutSeconds: 3 }));
    try {
      writeFileSync(join(w.installPath, CONF), DEVICE_CONF);
      const before = treeHash(w.installPath);
      w.journal.db.close();
      const world: AppCrashWorld = { component: w.component, backupDir: w.backupDir, dataDir: w.dataDir, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost };
      await crashAndRecover({
        script: CHILD,
        world,
        dbPath: join(w.dataDir, 'updater.db'),
        c,
        results,
        check: async (run) => {
          assert.equal(await active(w), 'active');
          const health = (await w.health()).body as { version: string; conf: string };
          if (c.expect === 'succeeded') {
            assert.equal(run.message, `Updated sample-app to 1.1.0; ${KEPT}`);
            assert.equal(read(w, CONF), DEVICE_CONF);
            assert.equal(read(w, `${CONF}.new`), CONF_1_1);
            assert.equal(health.version, '1.1.0');
          } else {
            assert.equal(treeHash(w.installPath), before, 'install tree byte-identical');
            assert.equal(health.version, '1.0.0');
          }
          assert.equal(health.conf, DEVICE_CONF);
          assert.deepEqual(leftovers(w), [], 'no staging, old or failed tree, no kept download left');
        },
      });
    } finally {
      await w.close();
    }
  });
}

function createHashOf(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
