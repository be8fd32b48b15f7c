/**
 * The crash matrix with the container driver on the real test bed: a real updater process is
 * SIGKILLed after each transition commit and in the middle of each phase's work; a fresh
 * process recovers; the stack must be consistent every time: either the new version fully
 * (compose tag, running image, health) or the old one (compose file byte-identical, same image).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testbed } from './support/testbed.js';
import { containerWorld } from './support/container-world.js';
import { TSX_IMPORT } from './support/harness.js';
import type { CrashWorld } from './support/container-crash-child.js';

const { skip, need } = await testbed();
const CHILD = join(import.meta.dirname, 'support', 'container-crash-child.ts');

function child(world: CrashWorld, args: string[], fault?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CRASH_WORLD: JSON.stringify(world) };
  delete env.UPDATER_FAULT;
  if (fault) env.UPDATER_FAULT = fault;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', TSX_IMPORT, CHILD, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

interface Case {
  fault: string;
  version: string;
  expect: 'succeeded' | 'rolled_back';
}
const cases: Case[] = [];
for (const position of ['after', 'during']) {
  for (const state of ['discover', 'validate', 'backup', 'apply', 'verify']) {
    cases.push({ fault: `${position}:${state}`, version: '1.1.0', expect: state === 'apply' ? 'rolled_back' : 'succeeded' });
    cases.push({ fault: `${position}:${state}`, version: '1.2.0', expect: 'rolled_back' });
  }
  cases.push({ fault: `${position}:rollback`, version: '1.2.0', expect: 'rolled_back' });
}
// Mid-apply at each sub-step: before pulling is recorded (1), before the compose file is written (2), before the recreate (3).
cases.push({ fault: 'during:apply:1', version: '1.1.0', expect: 'rolled_back' });
cases.push({ fault: 'during:apply:3', version: '1.1.0', expect: 'rolled_back' });
cases.push({ fault: 'after:succeeded', version: '1.1.0', expect: 'succeeded' });

const results: Array<{ fault: string; version: string; outcome: string; consistent: boolean }> = [];

for (const c of cases) {
  test(`container: SIGKILL at ${c.fault} updating to ${c.version} → ${c.expect}`, { skip }, async () => {
    const bed = need();
    const w = await containerWorld(bed, { healthTimeoutSeconds: 3 });
    let outcome = 'error';
    let consistent = false;
    try {
      const before = readFileSync(w.composeFile, 'utf8');
      const oldImage = await w.containerImage();
      const world: CrashWorld = { dir: w.dir, composeFile: w.composeFile, backupDir: w.backupDir, port: w.port, apiUrl: w.gh.apiUrl, rawUrl: w.gh.rawUrl, dockerHost: bed.dockerHost, healthTimeoutSeconds: 3 };
      w.journal.db.close();

      const first = await child(world, ['start', c.version], c.fault);
      assert.equal(first.signal, 'SIGKILL', `the first process was not killed: ${first.stderr}`);
      const second = await child(world, ['recover']);
      assert.equal(second.code, 0, `recovery failed: ${second.stderr}`);

      const { openDatabase } = await import('../src/journal/database.js');
      const { Journal } = await import('../src/journal/journal.js');
      const db = openDatabase(join(w.dir, 'updater.db'));
      try {
        const run = new Journal(db).getRun(1)!;
        outcome = run.state;
        assert.equal(run.state, c.expect, run.message!);
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

test('write the container crash table to docs/reliability.md', { skip }, () => {
  need();
  const file = join(import.meta.dirname, '..', 'docs', 'reliability.md');
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc = '# Reliability\n';
  }
  const rows = results.map((r) => `| container | ${r.fault} | ${r.version} | ${r.outcome} | ${r.consistent ? 'yes' : '**no**'} |`);
  const section = ['<!-- container-crash:start -->', '## Crash matrix: containers (real engine, registry, compose)', '', `Generated by \`test/container-crash.test.ts\` on ${new Date().toISOString().slice(0, 10)}: a real updater process SIGKILLed at the fault point, then a fresh process recovers.`, '', '| kind | killed at | target | ended | consistent |', '|---|---|---|---|---|', ...rows, '<!-- container-crash:end -->'].join('\n');
  doc = /<!-- container-crash:start -->[\s\S]*<!-- container-crash:end -->/.test(doc) ? doc.replace(/<!-- container-crash:start -->[\s\S]*<!-- container-crash:end -->/, section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, doc);
  assert.ok(results.every((r) => r.consistent), 'every case consistent');
});
