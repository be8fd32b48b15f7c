/**
 * The crash matrix of the `self` kind: a self-update run spans two processes (the old release
 * until the hand-over, the new one on trial) and launch between them. Each case SIGKILLs one of
 * them at one point (UPDATER_FAULT, fired once across processes, in the release of one version;
 * or launch itself, from outside), under a plain restart loop, and then checks what a user sees:
 * the run terminal as expected, exactly one updater process running the release `current` points
 * at, no trial left open, no release folder but current and previous. The table goes into
 * docs/reliability.md.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageSelfReleases, selfWorld, sleep, type SelfWorld, type Variant } from './support/self-world.js';
import { cleanup, tempDir } from './support/harness.js';
import { writeSection } from './support/crash-table.js';

const releasesDir = tempDir('updater-self-releases-');
before(async () => {
  await packageSelfReleases(releasesDir);
});
after(() => cleanup(releasesDir));

interface SelfCase {
  /** What is killed and when, as the table says it. */
  what: string;
  target: '9.2.0' | '9.3.0';
  variant?: Variant;
  /** A fault point (UPDATER_FAULT) and the release it fires in. */
  fault?: { spec: string; in: '9.1.0' | '9.2.0' };
  /** Or launch killed from outside once the release on trial runs (with its child: a power cut). */
  killLaunch?: 'alone' | 'with-child';
  expect: 'succeeded' | 'rolled_back';
}

const good = (spec: string, inVersion: '9.1.0' | '9.2.0', what: string, expect: SelfCase['expect'] = 'succeeded'): SelfCase => ({ what, target: '9.2.0', fault: { spec, in: inVersion }, expect });
const CASES: SelfCase[] = [
  good('after:discover', '9.1.0', 'old release, right after discover is committed'),
  good('after:validate', '9.1.0', 'old release, right after validate is committed'),
  good('during:validate', '9.1.0', 'old release, download checked, before its end is committed'),
  good('after:backup', '9.1.0', 'old release, right after backup is committed'),
  good('after:apply', '9.1.0', 'old release, right after apply is committed', 'rolled_back'),
  good('during:apply:1', '9.1.0', 'old release, extracted, before releases/9.2.0 is renamed in', 'rolled_back'),
  good('during:apply:2', '9.1.0', 'old release, releases/9.2.0 in place, before the trial file', 'rolled_back'),
  good('during:apply:3', '9.1.0', 'old release, trial file written, before the links switch', 'rolled_back'),
  good('during:apply:4', '9.1.0', 'old release, links switched, before verify is committed', 'rolled_back'),
  good('after:verify', '9.1.0', 'old release, verify committed, before the hand-over'),
  good('during:verify', '9.1.0', 'old release, while it exits for the supervisor'),
  good('after:verify', '9.2.0', 'new release on trial, right after it recovered its run'),
  good('during:verify', '9.2.0', 'new release on trial, checked itself, before succeeded is committed'),
  good('after:succeeded', '9.2.0', 'new release, succeeded committed, before the trial file is removed'),
  { what: 'old release, after launch gave the broken release up, right after rollback is committed', target: '9.3.0', variant: 'broken', fault: { spec: 'after:rollback', in: '9.1.0' }, expect: 'rolled_back' },
  { what: 'old release, links put back, before rolled_back is committed', target: '9.3.0', variant: 'broken', fault: { spec: 'during:rollback', in: '9.1.0' }, expect: 'rolled_back' },
  { what: 'old release, verify committed, before handing over to a broken release', target: '9.3.0', variant: 'broken', fault: { spec: 'after:verify', in: '9.1.0' }, expect: 'rolled_back' },
  { what: 'launch, while a release that never verifies runs on trial as its child', target: '9.3.0', variant: 'hang', killLaunch: 'alone', expect: 'rolled_back' },
  { what: 'launch and the release on trial together (a power cut)', target: '9.3.0', variant: 'hang', killLaunch: 'with-child', expect: 'rolled_back' },
];

/** The pid of launch itself (`/bin/sh ROOT/launch serve …`), when it runs. */
function launchPid(w: SelfWorld): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv[1] === join(w.root, 'launch')) return Number(name);
    } catch {
      // gone
    }
  }
  return null;
}

const rows: string[] = [];

for (const c of CASES) {
  const where = c.fault ? `${c.fault.spec} in ${c.fault.in}` : `SIGKILL launch${c.killLaunch === 'with-child' ? ' + child' : ''}`;
  test(`self: ${where} (${c.what}), updating to ${c.target}${c.variant && c.variant !== 'good' ? ` (${c.variant})` : ''} → ${c.expect}`, async () => {
    const marks = tempDir('updater-self-fault-');
    const fired = join(marks, 'fired');
    const env: Record<string, string> = { UPDATER_TRIAL_SECONDS: '8' };
    if (c.fault) Object.assign(env, { UPDATER_FAULT: c.fault.spec, UPDATER_FAULT_VERSION: c.fault.in, UPDATER_FAULT_ONCE: fired });
    const w = await selfWorld({ releasesDir, supervisor: 'loop', variant: c.variant, env });
    let outcome = 'error';
    let consistent = false;
    try {
      await w.waitVersion('9.1.0');
      const runId = await w.update(c.target);
      if (c.killLaunch) {
        // Once the release on trial runs as launch's child.
        const deadline = Date.now() + 30_000;
        let killed = false;
        while (!killed && Date.now() < deadline) {
          const pid = launchPid(w);
          const child = existsSync(join(w.root, 'launch.child')) ? Number(readFileSync(join(w.root, 'launch.child'), 'utf8').trim()) : null;
          if (pid && child && w.releaseProcesses().includes(child)) {
            process.kill(pid, 'SIGKILL');
            if (c.killLaunch === 'with-child') process.kill(child, 'SIGKILL');
            killed = true;
          } else await sleep(100);
        }
        assert.ok(killed, 'launch was seen running a release on trial, and killed');
      }
      const run = await w.waitRun(runId);
      outcome = run.result ?? 'none';
      if (c.fault) assert.ok(existsSync(fired), `the fault point ${c.fault.spec} fired in ${c.fault.in}`);
      assert.equal(run.result, c.expect, `${run.message ?? ''}\n${w.output().slice(-6000)}`);
      const version = c.expect === 'succeeded' ? c.target : '9.1.0';
      await w.waitVersion(version);
      // Launch may still be finishing a stop: let the processes settle, then count them.
      await sleep(500);
      const pids = w.releaseProcesses();
      assert.equal(pids.length, 1, `exactly one updater process runs (found ${pids.length})\n${w.output().slice(-3000)}`);
      assert.equal(w.link('current'), `releases/${version}`);
      assert.ok(!existsSync(join(w.root, 'self-update.json')), 'no trial is left open');
      const folders = readdirSync(join(w.root, 'releases')).sort();
      assert.deepEqual(folders, c.expect === 'succeeded' ? ['9.1.0', '9.2.0'] : ['9.1.0'], 'only current and previous are kept');
      consistent = true;
    } finally {
      rows.push(`| ${where} | ${c.what} | ${c.target}${c.variant && c.variant !== 'good' ? ` (${c.variant})` : ''} | ${outcome} | ${consistent ? 'yes' : '**no**'} |`);
      await w.close();
      cleanup(marks);
    }
  });
}

test('write the self crash table to docs/reliability.md', () => {
  assert.equal(rows.length, CASES.length);
  writeSection(
    'self-crash',
    [
      '## Crash matrix: the updater updating itself (real launch, plain restart loop)',
      '',
      `Generated by test/self-crash.test.ts on ${new Date().toISOString().slice(0, 10)}: releases packaged by \`npm run package\`, installed by their install.sh, run by \`ROOT/launch\` under a restart loop; one process SIGKILLed at the point (a fault point fired once, in the release of that version; or launch from outside), then everything left to the supervisor and launch. Consistent: the run ended as expected, exactly one updater process runs the release \`current\` points at and answers /healthz as it, no trial file is left, and releases/ holds only current and previous. ${rows.filter((r) => r.endsWith('| yes |')).length} of ${rows.length} consistent.`,
      '',
      '| killed at | what was happening | target | ended | consistent |',
      '|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
});
