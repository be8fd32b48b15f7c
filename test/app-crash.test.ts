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
import { crashCases, runCrashChild, writeCrashTable, type CrashResult } from './support/crash-table.js';
import type { AppCrashWorld } from './support/app-crash-child.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';

const { skip, need } = await testbed();
const CHILD = join(import.meta.dirname, 'support', 'app-crash-child.ts');
// Apply sub-steps: 1 stop, 2 old tree aside, 3 new tree in, 4 start.
const cases = crashCases('1.1.0', '1.2.0', 4);
const results: CrashResult[] = [];

for (const c of cases) {
  test(`app: SIGKILL at ${c.fault} updating to ${c.version} → ${c.expect}`, { skip }, async () => {
    const bed = need();
    const w = await appWorld(bed, [{ version: '1.1.0', sha256: true }, { version: '1.2.0', behaviour: 'unhealthy' }], { healthTimeoutSeconds: 3 });
    let outcome = 'error';
    let consistent = false;
    try {
      const before = treeHash(w.installPath);
      w.journal.db.close();
      const world: AppCrashWorld = { component: w.component, backupDir: w.backupDir, dataDir: w.dataDir, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost };
      const first = await runCrashChild(CHILD, world, ['start', c.version], c.fault);
      assert.equal(first.signal, 'SIGKILL', `the first process was not killed: ${first.stderr}`);
      const second = await runCrashChild(CHILD, world, ['recover']);
      assert.equal(second.code, 0, `recovery failed: ${second.stderr}`);

      const db = openDatabase(join(w.dataDir, 'updater.db'));
      try {
        const run = new Journal(db).getRun(1)!;
        outcome = run.state;
        assert.equal(run.state, c.expect, run.message!);
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
        const ts = run.transitions!;
        for (let i = 1; i < ts.length; i++) assert.equal(ts[i]!.from, ts[i - 1]!.to, 'unbroken chain');
        consistent = true;
      } finally {
        db.close();
      }
    } finally {
      results.push({ fault: c.fault, version: c.version, outcome, consistent });
      await w.close();
    }
  });
}

test('write the app crash table to docs/reliability.md', { skip }, () => {
  need();
  writeCrashTable('app', 'apps (real systemd, release tarballs)', results);
  assert.ok(results.every((r) => r.consistent), 'every case consistent');
});
