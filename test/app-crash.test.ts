/**
 * The crash matrix with the app driver on the real systemd of the test bed: a real updater
 * process is SIGKILLed after each commit, mid-work, and at each apply sub-step (stop, old tree
 * aside, new tree in, start); a fresh process recovers. Consistent means: the install tree is
 * the new release with the unit active on it, or byte-identical to before with the unit active
 * on the old version; never a mix, and no staging, old or failed tree left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { testbed } from './support/testbed.js';
import { appWorld, leftovers, treeHash } from './support/app-world.js';
import { crashAndRecover, crashCases, writeCrashTable, type CrashResult } from './support/crash-table.js';
import type { AppCrashWorld } from './support/app-crash-child.js';

const { skip, need } = await testbed();
const CHILD = join(import.meta.dirname, 'support', 'app-crash-child.ts');
// Apply sub-steps: 1 stop, 2 old tree aside, 3 new tree in, 4 start.
const cases = crashCases('1.1.0', '1.2.0', 4);
const results: CrashResult[] = [];

for (const c of cases) {
  test(`app: SIGKILL at ${c.fault} updating to ${c.version} → ${c.expect}`, { skip }, async () => {
    const bed = need();
    const w = await appWorld(bed, [{ version: '1.1.0', sha256: true }, { version: '1.2.0', behaviour: 'unhealthy' }], { healthTimeoutSeconds: 3 });
    try {
      const before = treeHash(w.installPath);
      w.journal.db.close();
      const world: AppCrashWorld = { component: w.component, backupDir: w.backupDir, dataDir: w.dataDir, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost };
      await crashAndRecover({
        script: CHILD,
        world,
        dbPath: join(w.dataDir, 'updater.db'),
        c,
        results,
        check: async () => {
          assert.equal((await w.systemctl('is-active', w.unit)).stdout.trim(), 'active');
          const health = (await w.health()).body as { version: string };
          if (c.expect === 'succeeded') {
            assert.equal(readFileSync(join(w.installPath, 'VERSION'), 'utf8'), `${c.version}\n`);
            assert.equal(health.version, c.version);
          } else {
            assert.equal(treeHash(w.installPath), before, 'install tree byte-identical');
            assert.equal(health.version, '1.0.0');
          }
          assert.deepEqual(leftovers(w), [], 'no staging, old or failed tree left (finalize, or the boot sweep)');
        },
      });
    } finally {
      await w.close();
    }
  });
}

test('write the app crash table to docs/reliability.md', { skip }, () => {
  need();
  writeCrashTable('app', 'apps (real systemd, release tarballs)', results);
  assert.ok(results.every((r) => r.consistent), 'every case consistent');
});
