/**
 * The crash matrix: for every state and both fault positions, a real child process running a
 * real run is SIGKILLed; a fresh process on the same database then ends the run consistent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, seedRoot, tempDir, TSX_IMPORT } from './support/harness.js';
import { readTree } from './support/dir-driver.js';
import { openDatabase } from '../src/journal/database.js';
import { Journal } from '../src/journal/journal.js';

const CHILD = join(import.meta.dirname, 'support', 'crash-child.ts');

function child(root: string, args: string[], fault?: string) {
  const env = { ...process.env };
  delete env.UPDATER_FAULT;
  if (fault) env.UPDATER_FAULT = fault;
  return spawnSync(process.execPath, ['--import', TSX_IMPORT, CHILD, root, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

interface Case {
  fault: string;
  version: string;
  /** What the run must end as after recovery. */
  expect: 'succeeded' | 'rolled_back';
  /** Whether the first process must have been killed (false when the fault point is never reached). */
  killed: boolean;
}

const cases: Case[] = [];
for (const position of ['after', 'during']) {
  for (const state of ['discover', 'validate', 'backup', 'apply', 'verify']) {
    // A good release: killed before apply resumes and succeeds; killed in apply rolls back;
    // killed in verify verifies again and succeeds.
    cases.push({ fault: `${position}:${state}`, version: '1.1.0', expect: state === 'apply' ? 'rolled_back' : 'succeeded', killed: true });
    // A broken release always ends rolled back.
    cases.push({ fault: `${position}:${state}`, version: '1.2.0', expect: 'rolled_back', killed: true });
  }
  cases.push({ fault: `${position}:rollback`, version: '1.2.0', expect: 'rolled_back', killed: true });
}
cases.push({ fault: 'after:succeeded', version: '1.1.0', expect: 'succeeded', killed: true });
cases.push({ fault: 'after:rolled_back', version: '1.2.0', expect: 'rolled_back', killed: true });

for (const c of cases) {
  test(`SIGKILL at ${c.fault} updating to ${c.version} → ${c.expect}`, () => {
    const root = tempDir('updater-crash-');
    try {
      seedRoot(root);
      const before = readTree(join(root, 'live'));
      const release = readTree(join(root, 'releases', c.version));
      delete release.BROKEN;

      const first = child(root, ['start', c.version], c.fault);
      assert.equal(first.signal, c.killed ? 'SIGKILL' : null, `first process: ${first.stderr}`);

      const second = child(root, ['recover']);
      assert.equal(second.status, 0, `recovery process failed: ${second.stderr}`);

      const db = openDatabase(join(root, 'updater.db'));
      try {
        const journal = new Journal(db);
        const run = journal.getRun(1)!;
        assert.equal(run.state, c.expect, `run ended ${run.state}: ${run.message}`);
        assert.equal(run.result, c.expect);

        // Either the new version fully in place, or the old one byte-identical; never a mix.
        const live = readTree(join(root, 'live'));
        if (c.expect === 'succeeded') assert.deepEqual(live, release);
        else assert.deepEqual(live, before);

        // Never applied twice: each apply effect of the run happened at most once.
        const effects = existsSync(join(root, 'effects.log')) ? readFileSync(join(root, 'effects.log'), 'utf8').trim().split('\n').filter(Boolean) : [];
        const applied = effects.filter((e) => e.startsWith('1 apply '));
        assert.equal(new Set(applied).size, applied.length, `apply effects repeated: ${applied.join(', ')}`);

        // The transitions table tells the whole story: a gap-free chain from idle to the end,
        // with the recovery recorded when the process died mid-run.
        const ts = journal.transitionsOf(1);
        assert.equal(ts[0]!.from_state, 'idle');
        for (let i = 1; i < ts.length; i++) {
          assert.equal(ts[i]!.from_state, ts[i - 1]!.to_state, `broken chain at seq ${ts[i]!.seq}`);
          assert.equal(ts[i]!.seq, ts[i - 1]!.seq + 1);
        }
        assert.equal(ts.at(-1)!.to_state, c.expect);
        const terminalFault = c.fault.startsWith('after:') && ['succeeded', 'rolled_back'].includes(c.fault.slice(6));
        const recoveries = ts.filter((t) => t.event === 'recover');
        assert.equal(recoveries.length, terminalFault ? 0 : 1, ts.map((t) => `${t.from_state}>${t.to_state}(${t.event})`).join(' '));
        assert.equal(run.recoveries, terminalFault ? 0 : 1);
        if (!terminalFault) {
          const state = c.fault.split(':')[1]!;
          assert.equal(recoveries[0]!.from_state, state);
          const resumedAt = { discover: 'discover', validate: 'discover', backup: 'backup', apply: 'rollback', verify: 'verify', rollback: 'rollback' }[state];
          assert.equal(recoveries[0]!.to_state, resumedAt);
        }
      } finally {
        db.close();
      }
    } finally {
      cleanup(root);
    }
  });
}

test('a run interrupted more than 3 times ends rollback_failed, each recovery recorded', () => {
  const root = tempDir('updater-crash-');
  try {
    seedRoot(root);
    assert.equal(child(root, ['start', '1.2.0'], 'after:rollback').signal, 'SIGKILL');
    // Every recovery dies again as soon as the rollback is committed.
    for (let i = 0; i < 3; i++) assert.equal(child(root, ['recover'], 'after:rollback').signal, 'SIGKILL', `recovery ${i + 1}`);
    const last = child(root, ['recover'], 'after:rollback');
    assert.equal(last.status, 0, last.stderr);
    const db = openDatabase(join(root, 'updater.db'));
    try {
      const journal = new Journal(db);
      const run = journal.getRun(1)!;
      assert.equal(run.state, 'rollback_failed');
      assert.equal(run.recoveries, 4);
      assert.match(run.message!, /interrupted 4 times \(last in rollback\); giving up after 3 recoveries/);
      assert.match(run.message!, /The backup is at /);
      assert.equal(run.transitions!.filter((t) => t.event === 'recover').length, 4);
    } finally {
      db.close();
    }
  } finally {
    cleanup(root);
  }
});
