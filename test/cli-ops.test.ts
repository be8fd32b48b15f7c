/** The operator's CLI against the running service (the demo): update, rollback, check, config check, exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from './support/harness.js';
import { LAUNCHER, prepareDemoDir, startService } from './support/service-process.js';

function cli(cwd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(LAUNCHER, args, { cwd, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

test('update, a failing update, rollback and check go through the running service; exit codes say what happened', async () => {
  const cwd = tempDir();
  await prepareDemoDir(cwd);
  const s = await startService(cwd);
  const port = new URL(s.url).port;
  const env = { UPDATER_SERVER__PORT: port };
  try {
    const good = await cli(cwd, ['update', 'sample-app', '--version', '1.1.0'], env);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /run \d+ started by the service/);
    for (const state of ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']) assert.match(good.stdout, new RegExp(`\\d\\d:\\d\\d:\\d\\d  ${state}\\s`));
    assert.match(good.stdout, /succeeded: Updated sample-app to 1\.1\.0$/m);

    const bad = await cli(cwd, ['update', 'sample-app', '--json'], env);
    assert.equal(bad.code, 1, 'rolled back → 1');
    const run = JSON.parse(bad.stdout.trim().split('\n').at(-1)!);
    assert.equal(run.state, 'rolled_back');
    assert.match(run.message, /health URL .* answered 500/);

    const dry = await cli(cwd, ['update', 'sample-app', '--version', '1.2.0', '--dry-run'], env);
    assert.equal(dry.code, 0);
    assert.match(dry.stdout, /validated: Dry run/);

    const rb = await cli(cwd, ['rollback', 'sample-app'], env);
    assert.equal(rb.code, 0, `${rb.stdout}${rb.stderr}`);
    // The newest backup was taken before the failed 1.2.0 attempt: it holds 1.1.0.
    assert.match(rb.stdout, /rolled_back: Restored sample-app to v1\.1\.0 from backup/);

    const unknown = await cli(cwd, ['update', 'nope'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /not_found: no component named "nope"/);

    const check = await cli(cwd, ['check'], env);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^sample-app\s+1\.1\.0\s+1\.2\.0\s+yes/m);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
    cleanup(cwd);
  }
});

test('exit codes: a manual rollback that ends rolled_back is done (0); an update that ends rolled_back is not (1)', async () => {
  const { exitCodeFor } = await import('../src/cli/run-command.js');
  assert.equal(exitCodeFor('succeeded'), 0);
  assert.equal(exitCodeFor('validated'), 0);
  assert.equal(exitCodeFor('rolled_back'), 1);
  assert.equal(exitCodeFor('rolled_back', 'restore'), 0);
  assert.equal(exitCodeFor('aborted'), 1);
  assert.equal(exitCodeFor('rollback_failed'), 4);
  assert.equal(exitCodeFor('rollback_failed', 'restore'), 4);
});

test('config check: ok with a summary, or exit 2 naming the key', async () => {
  const cwd = tempDir();
  try {
    const ok = await cli(cwd, ['config', 'check']);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /configuration ok \(embedded default\): 0 component\(s\) \(serve runs the demo\)/);
    writeFileSync(join(cwd, 'updater.yaml'), 'components:\n  - {name: web, kind: container, repo: o/web, service: web}\n');
    const bad = await cli(cwd, ['config', 'check']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /components\[0\]\.composeFile: required for kind container/);
  } finally {
    cleanup(cwd);
  }
});
