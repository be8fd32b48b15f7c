/** The service's own faults, on the real process: second instance, bad databases, SIGTERM mid-run, SIGKILL mid-run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cleanup, tempDir } from './support/harness.js';
import { prepareDemoDir, serveUntilExit, startService, waitFor, demoAppPort, type ServiceProcess } from './support/service-process.js';

async function stop(s: ServiceProcess) {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

const json = async (url: string, init?: RequestInit) => (await fetch(url, init)).json() as Promise<any>;

test('a second instance on the same data dir is refused, naming the pid that holds it', async () => {
  const cwd = tempDir();
  await prepareDemoDir(cwd);
  const first = await startService(cwd);
  try {
    const second = await serveUntilExit(cwd);
    assert.notEqual(second.code, 0);
    assert.match(second.output, new RegExp(`another updater \\(pid ${first.child.pid}\\) is already using`));
    assert.equal((await fetch(`${first.url}/healthz`)).status, 200, 'the first one keeps serving');
  } finally {
    await stop(first);
    cleanup(cwd);
  }
});

test('a lock left by a killed updater is taken over', async () => {
  const cwd = tempDir();
  await prepareDemoDir(cwd);
  const first = await startService(cwd);
  first.child.kill('SIGKILL');
  await first.exited;
  assert.ok(existsSync(join(cwd, 'data', 'updater.lock')));
  const second = await startService(cwd);
  try {
    assert.equal((await fetch(`${second.url}/healthz`)).status, 200);
  } finally {
    await stop(second);
    cleanup(cwd);
  }
});

test('a corrupt database: refuses to start with a clear message, touches neither it nor the backups', async () => {
  const cwd = tempDir();
  try {
    mkdirSync(join(cwd, 'data', 'backups'), { recursive: true });
    writeFileSync(join(cwd, 'data', 'backups', 'sample-app.20260101_000000.tar.gz'), 'precious');
    writeFileSync(join(cwd, 'data', 'updater.db'), 'definitely not sqlite '.repeat(500));
    const before = readFileSync(join(cwd, 'data', 'updater.db'));
    const r = await serveUntilExit(cwd);
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /is not a readable SQLite database .*refusing to start/);
    assert.deepEqual(readFileSync(join(cwd, 'data', 'updater.db')), before);
    assert.equal(readFileSync(join(cwd, 'data', 'backups', 'sample-app.20260101_000000.tar.gz'), 'utf8'), 'precious');
  } finally {
    cleanup(cwd);
  }
});

test('a database from a newer updater: refuses to start, does not downgrade it', async () => {
  const cwd = tempDir();
  try {
    mkdirSync(join(cwd, 'data'), { recursive: true });
    const db = new Database(join(cwd, 'data', 'updater.db'));
    db.pragma('user_version = 42');
    db.close();
    const r = await serveUntilExit(cwd);
    assert.equal(r.code, 3, r.output);
    assert.match(r.output, /schema version 42, newer than this updater knows/);
    const again = new Database(join(cwd, 'data', 'updater.db'));
    assert.equal(again.pragma('user_version', { simple: true }), 42);
    again.close();
  } finally {
    cleanup(cwd);
  }
});

test('SIGTERM during a run: the service stops cleanly, and the run is ended consistently (at once, or on the next start)', async () => {
  const cwd = tempDir();
  await prepareDemoDir(cwd);
  let s = await startService(cwd);
  try {
    const { run_id } = await json(`${s.url}/api/components/sample-app/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":"1.2.0"}' });
    await waitFor('verify', async () => (await json(`${s.url}/api/runs/${run_id}`)).state === 'verify');
    s.child.kill('SIGTERM');
    const exit = await s.exited;
    assert.equal(exit.code, 0, s.output());
    s = await startService(cwd);
    const run = await waitFor('the run to end', async () => {
      const r = await json(`${s.url}/api/runs/${run_id}`);
      return r.result ? r : null;
    });
    assert.equal(run.state, 'rolled_back', run.message);
    const health = await json(`http://127.0.0.1:${demoAppPort(cwd)}/health`);
    assert.equal(health.version, '1.0.0');
  } finally {
    await stop(s);
    cleanup(cwd);
  }
});

test('SIGKILL during a run: the next start recovers it before accepting new updates', async () => {
  const cwd = tempDir();
  await prepareDemoDir(cwd);
  let s = await startService(cwd);
  try {
    const { run_id } = await json(`${s.url}/api/components/sample-app/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":"1.1.0"}' });
    await waitFor('verify', async () => (await json(`${s.url}/api/runs/${run_id}`)).state === 'verify');
    s.child.kill('SIGKILL');
    await s.exited;
    s = await startService(cwd);
    const run = await waitFor('the recovered run to end', async () => {
      const r = await json(`${s.url}/api/runs/${run_id}`);
      return r.result ? r : null;
    });
    assert.equal(run.state, 'succeeded', run.message);
    const recover = run.transitions.find((t: { event: string }) => t.event === 'recover');
    assert.deepEqual([recover.from, recover.to], ['verify', 'verify']);
    assert.equal((await json(`http://127.0.0.1:${demoAppPort(cwd)}/health`)).version, '1.1.0');
  } finally {
    await stop(s);
    cleanup(cwd);
  }
});
