/** The operator's CLI against the running service (the demo, or a configuration of two apps): update, update --all, rollback, check, config check, exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from './support/harness.js';
import { LAUNCHER, prepareDemoDir, startService } from './support/service-process.js';
import { startFakeGitHub } from '../src/demo/local-github.js';

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

/** An app release: a tree with VERSION, as a tarball. */
function appRelease(work: string, version: string): Buffer {
  const top = join(work, `app-${version}`);
  mkdirSync(top, { recursive: true });
  writeFileSync(join(top, 'VERSION'), `${version}\n`);
  writeFileSync(join(top, 'data.txt'), `data of ${version}\n`);
  return execFileSync('tar', ['-C', work, '-czf', '-', `app-${version}`]);
}

test('update --all: remote (updateFirst) then core, through the service, then in this process; update core alone is refused first', async () => {
  const cwd = tempDir();
  const gh = await startFakeGitHub();
  // A release without its asset: validate refuses it, and the run ends aborted.
  const publish = (name: string, version: string, withAsset = true) =>
    gh.addRelease(`o/${name}`, { tag: `v${version}`, assets: withAsset ? [{ name: `app-${version}.tar.gz`, content: appRelease(join(cwd, 'work', name), version) }] : [] });
  const component = (name: string, updateFirst: boolean) => {
    const installPath = join(cwd, name);
    mkdirSync(installPath);
    writeFileSync(join(installPath, 'VERSION'), '1.0.0\n');
    return { name, kind: 'app', repo: `o/${name}`, updateFirst, installPath, asset: 'app-{version}.tar.gz', minFreeMB: 0, settleSeconds: 0, service: { manager: 'command', start: 'true', stop: 'true', status: 'true' } };
  };
  const version = (name: string) => readFileSync(join(cwd, name, 'VERSION'), 'utf8').trim();
  writeFileSync(join(cwd, 'updater.yaml'), JSON.stringify({ checkIntervalHours: 0, github: { apiUrl: gh.apiUrl, rawUrl: gh.rawUrl }, components: [component('core', false), component('remote', true)] }));
  publish('core', '1.1.0');
  publish('remote', '1.1.0');
  const s = await startService(cwd);
  const env = { UPDATER_SERVER__PORT: new URL(s.url).port };
  try {
    assert.equal((await cli(cwd, ['check'], env)).code, 0);
    const alone = await cli(cwd, ['update', 'core'], env);
    assert.equal(alone.code, 1, `${alone.stdout}${alone.stderr}`);
    assert.equal(alone.stderr.trim(), 'update_first: Cannot update core before remote. Remote has an available update and must be updated first.');

    const all = await cli(cwd, ['update', '--all'], env);
    assert.equal(all.code, 0, `${all.stdout}${all.stderr}`);
    const lines = all.stdout.split('\n');
    const at = (pattern: RegExp) => {
      const i = lines.findIndex((l) => pattern.test(l));
      assert.ok(i >= 0, `${pattern} in:\n${all.stdout}`);
      return i;
    };
    const order = [
      at(/^update of all \(batch 1\) started by the service at http:\/\/127\.0\.0\.1:\d+: remote, then core$/),
      at(/^Updating remote from 1\.0\.0 to 1\.1\.0 \(run \d+\)$/),
      at(/^\d\d:\d\d:\d\d {2}apply\s/),
      at(/^succeeded: Updated remote to 1\.1\.0$/),
      at(/^Updating core from 1\.0\.0 to 1\.1\.0 \(run \d+\)$/),
      at(/^succeeded: Updated core to 1\.1\.0$/),
      at(/^succeeded: Updated 2 components: remote to 1\.1\.0, core to 1\.1\.0$/),
    ];
    assert.deepEqual(order, [...order].sort((a, b) => a - b), all.stdout);
    assert.deepEqual([version('remote'), version('core')], ['1.1.0', '1.1.0']);

    const nothing = await cli(cwd, ['update', '--all'], env);
    assert.equal(nothing.code, 0);
    assert.equal(nothing.stdout.trim(), 'Nothing to update: no component has an update available');

    // remote 1.2.0 cannot be installed: the batch stops there, and core (offered 1.2.0 too) is not touched.
    publish('remote', '1.2.0', false);
    publish('core', '1.2.0');
    const failed = await cli(cwd, ['update', '--all', '--json'], env);
    assert.equal(failed.code, 1, `${failed.stdout}${failed.stderr}`);
    const batch = JSON.parse(failed.stdout.trim().split('\n').at(-1)!);
    assert.equal(batch.state, 'stopped');
    assert.equal(batch.message, 'Stopped at remote (aborted); not updated: core');
    assert.deepEqual(batch.runs.map((r: { component: string; result: string }) => [r.component, r.result]), [['remote', 'aborted']]);
    assert.deepEqual([version('remote'), version('core')], ['1.1.0', '1.1.0']);

    assert.equal((await cli(cwd, ['update', '--all', '--dry-run'], env)).code, 2);
    assert.equal((await cli(cwd, ['update', 'core', '--all'], env)).code, 2);

    // No service: the command runs the batch itself.
    s.child.kill('SIGTERM');
    await s.exited;
    publish('remote', '1.3.0');
    const here = await cli(cwd, ['update', '--all'], env);
    assert.equal(here.code, 0, `${here.stdout}${here.stderr}`);
    assert.match(here.stdout, /^update of all \(no service running: run by this command\): remote, then core\nUpdating remote from 1\.1\.0 to 1\.3\.0 \(run \d+\)\n/m);
    assert.match(here.stdout, /^succeeded: Updated remote to 1\.3\.0\nUpdating core from 1\.1\.0 to 1\.2\.0 \(run \d+\)\n/m);
    assert.match(here.stdout, /^succeeded: Updated 2 components: remote to 1\.3\.0, core to 1\.2\.0$/m);
    assert.deepEqual([version('remote'), version('core')], ['1.3.0', '1.2.0']);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
    await gh.close();
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
  const { exitCodeForBatch } = await import('../src/cli/run-command.js');
  const batch = (state: 'succeeded' | 'stopped', results: Array<string | null>) => ({
    batch_id: 1,
    state,
    components: results.map((_, i) => `c${i}`),
    runs: results.map((result, i) => ({ component: `c${i}`, run_id: i + 1, from_version: '1.0.0', to_version: '1.1.0', result })),
    message: '',
    started_at: '',
    finished_at: '',
  });
  assert.equal(exitCodeForBatch(batch('succeeded', [])), 0, 'nothing to update');
  assert.equal(exitCodeForBatch(batch('succeeded', ['succeeded', 'up_to_date'])), 0);
  assert.equal(exitCodeForBatch(batch('stopped', ['succeeded', 'rolled_back'])), 1);
  assert.equal(exitCodeForBatch(batch('stopped', ['aborted'])), 1);
  assert.equal(exitCodeForBatch(batch('stopped', ['rollback_failed'])), 4);
  assert.equal(exitCodeForBatch(batch('stopped', ['succeeded'])), 3, 'the next run could not start');
  assert.equal(exitCodeForBatch(batch('stopped', [null])), 3, 'the updater stopped during the run');
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
