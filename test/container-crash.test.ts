/**
 * The crash matrix with the container driver on the real test bed: a real updater process is
 * SIGKILLed after each transition commit and in the middle of each phase's work; a fresh
 * process recovers; the stack must be consistent every time: either the new version fully
 * (compose tag, running image, health) or the old one (compose file byte-identical, same image).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testbed } from './support/testbed.js';
import { containerWorld } from './support/container-world.js';
import type { CrashWorld } from './support/container-crash-child.js';
import { crashAndRecover, crashCases, writeCrashTable, type CrashResult } from './support/crash-table.js';

const { skip, need } = await testbed();
const CHILD = join(import.meta.dirname, 'support', 'container-crash-child.ts');

// Apply sub-steps: 1 pull, 2 write compose tag, 3 recreate.
const cases = crashCases('1.1.0', '1.2.0', 3);

const results: CrashResult[] = [];

for (const c of cases) {
  test(`container: SIGKILL at ${c.fault} updating to ${c.version} → ${c.expect}`, { skip }, async () => {
    const bed = need();
    const w = await containerWorld(bed, { healthTimeoutSeconds: 3 });
    try {
      const before = readFileSync(w.composeFile, 'utf8');
      const oldImage = await w.containerImage();
      const world: CrashWorld = { dir: w.dir, composeFile: w.composeFile, backupDir: w.backupDir, port: w.port, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost, healthTimeoutSeconds: 3 };
      w.journal.db.close();
      await crashAndRecover({
        script: CHILD,
        world,
        dbPath: join(w.dir, 'updater.db'),
        c,
        results,
        check: async () => {
          const after = readFileSync(w.composeFile, 'utf8');
          const image = await w.containerImage();
          const health = (await (await fetch(`http://127.0.0.1:${w.port}/health`)).json()) as { version: string };
          if (c.expect === 'succeeded') {
            assert.equal(after, before.replace('sample:1.0.0"', `sample:${c.version}"`));
            assert.equal(image, await w.imageId(`${bed.registry}/sample:${c.version}`));
            assert.equal(health.version, c.version);
          } else {
            assert.equal(after, before, 'compose file byte-identical');
            assert.equal(image, oldImage, 'the same image as before');
            assert.equal(health.version, '1.0.0');
          }
        },
      });
    } finally {
      await w.close();
    }
  });
}

test('write the container crash table to docs/reliability.md', { skip }, () => {
  need();
  writeCrashTable('container', 'containers (real engine, registry, compose)', results);
  assert.ok(results.every((r) => r.consistent), 'every case consistent');
});
