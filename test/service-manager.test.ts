/**
 * The service-manager seam against the real thing: systemd in the test bed's container (driven
 * through `docker exec C systemctl`, as the app kind is in tests) and real processes for the
 * command manager. No timed assertions: states that take a moment to settle are polled within
 * a generous bound.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UpdateError } from '../src/core/errors.js';
import { createServiceManager, type ServiceManager, type ServiceStatus } from '../src/services/service-manager.js';
import { describeUnit, parseShow, systemdUnitName } from '../src/services/systemd.js';
import { run, testbed, type Bed } from './support/testbed.js';

const { skip, need, bed: found } = await testbed();
// The manager runs `docker exec …`, which finds the bed's engine through the inherited environment.
if (found) process.env.DOCKER_HOST = found.dockerHost;

const tag = `svcmgr-${process.pid}`;
let bedDir: string | null = null;
after(() => {
  if (bedDir) rmSync(bedDir, { recursive: true, force: true });
});

/** A directory of this run under the apps dir, which is at the same path inside the systemd container. */
function unitDir(bed: Bed): string {
  if (!bedDir) {
    bedDir = join(bed.appsDir, tag);
    mkdirSync(bedDir, { recursive: true });
  }
  return bedDir;
}

async function inBed(bed: Bed, ...args: string[]) {
  const r = await run('docker', ['exec', bed.systemd, ...args], bed.env);
  assert.equal(r.code, 0, `docker exec ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** Installs NAME.service with the given [Service] (and optional [Unit]) lines; returns the unit name. */
async function installUnit(bed: Bed, name: string, service: string[], unit: string[] = []): Promise<string> {
  const file = join(unitDir(bed), `${name}.service`);
  writeFileSync(file, `[Unit]\nDescription=service-manager test ${name}\n${unit.join('\n')}\n\n[Service]\n${service.join('\n')}\n`);
  await inBed(bed, 'cp', file, `/etc/systemd/system/${name}.service`);
  await inBed(bed, 'systemctl', 'daemon-reload');
  return name;
}

async function removeUnit(bed: Bed, name: string): Promise<void> {
  const sc = (...a: string[]) => run('docker', ['exec', bed.systemd, 'systemctl', ...a], bed.env);
  await sc('stop', `${name}.service`);
  await run('docker', ['exec', bed.systemd, 'rm', '-f', `/etc/systemd/system/${name}.service`], bed.env);
  await sc('daemon-reload');
  await sc('reset-failed', `${name}.service`);
}

function systemd(bed: Bed, unit: string): ServiceManager {
  return createServiceManager({ manager: 'systemd', unit, systemctl: ['docker', 'exec', bed.systemd, 'systemctl'] });
}

/** Polls status until `done` holds (bounded); fails with the states seen. */
async function waitForStatus(m: ServiceManager, done: (s: ServiceStatus) => boolean, what: string, limitMs = 30_000): Promise<ServiceStatus> {
  const seen: string[] = [];
  const end = Date.now() + limitMs;
  for (;;) {
    const s = await m.status();
    if (done(s)) return s;
    const label = `${s.state}${s.detail ? ` (${s.detail})` : ''}`;
    if (seen.at(-1) !== label) seen.push(label);
    if (Date.now() > end) assert.fail(`${m.description}: ${what} never happened; states seen: ${seen.join(' → ')}`);
    await sleep(100);
  }
}

const isUpdateError = (code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UpdateError, `not an UpdateError: ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

test('systemd helpers: .service appended only without a unit suffix; show lines in any order; detail in systemd words', () => {
  assert.equal(systemdUnitName('dunebugger'), 'dunebugger.service');
  assert.equal(systemdUnitName('dunebugger.service'), 'dunebugger.service');
  assert.equal(systemdUnitName('app@1'), 'app@1.service');
  assert.equal(systemdUnitName('my.app'), 'my.app.service');
  assert.equal(systemdUnitName('nightly.timer'), 'nightly.timer');
  const p = parseShow('Result=exit-code\nExecMainCode=1\nExecMainStatus=3\nLoadState=loaded\nActiveState=failed\nSubState=failed\n');
  assert.equal(p.ActiveState, 'failed');
  assert.equal(describeUnit(p), 'Result=exit-code, ExecMainStatus=3');
  assert.equal(describeUnit(parseShow('LoadState=loaded\nActiveState=activating\nSubState=auto-restart\nResult=signal\nExecMainCode=2\nExecMainStatus=9')), 'SubState=auto-restart, Result=signal, ExecMainStatus=9 (SIGKILL)');
  assert.equal(describeUnit(parseShow('Result=success\nExecMainStatus=0\nLoadState=not-found\nActiveState=inactive\nSubState=dead')), 'LoadState=not-found');
});

test('systemd: a missing systemctl binary is service_manager_missing', async () => {
  const m = createServiceManager({ manager: 'systemd', unit: 'x', systemctl: ['/nonexistent/systemctl'] });
  await assert.rejects(m.exists(), isUpdateError('service_manager_missing', /\/nonexistent\/systemctl not found/));
  await assert.rejects(m.start(), isUpdateError('service_manager_missing'));
});

test('systemd: a good unit exists, starts (active), stops (inactive), and stops again without complaint', { skip }, async () => {
  const bed = need();
  const name = await installUnit(bed, `${tag}-good`, ['Type=simple', 'ExecStart=/bin/sleep infinity']);
  try {
    const m = systemd(bed, name); // no suffix: .service is appended
    assert.equal(m.description, `systemd unit ${name}.service`);
    assert.equal(await m.exists(), true);
    // Inactive with no job queued: stopped (nothing is starting it).
    assert.deepEqual(await m.status(), { active: false, state: 'inactive', detail: 'Result=success', stopped: true, restarting: false, restarts: 0 });
    await m.start();
    assert.deepEqual(await m.status(), { active: true, state: 'active', detail: null, stopped: false, restarting: false, restarts: 0 });
    await m.start(); // starting a running unit is fine too
    assert.equal((await m.status()).active, true);
    await m.stop();
    const s = await m.status();
    assert.equal(s.active, false);
    assert.equal(s.state, 'inactive');
    assert.equal(s.stopped, true);
    await m.stop();
    assert.equal((await m.status()).state, 'inactive');
  } finally {
    await removeUnit(bed, name);
  }
});

test('systemd: an unknown unit does not exist, is inactive, stops as a no-op, and cannot start', { skip }, async () => {
  const bed = need();
  const m = systemd(bed, `${tag}-nosuch.service`);
  assert.equal(await m.exists(), false);
  assert.deepEqual(await m.status(), { active: false, state: 'inactive', detail: 'LoadState=not-found', stopped: true, restarting: false, restarts: 0 });
  await m.stop();
  await assert.rejects(m.start(), isUpdateError('service_start_failed', new RegExp(`start ${tag}-nosuch\\.service failed \\(exit 5\\): .*not found`)));
  // A wrapper that cannot find systemctl in the container.
  const broken = createServiceManager({ manager: 'systemd', unit: 'x', systemctl: ['docker', 'exec', bed.systemd, 'no-such-systemctl'] });
  await assert.rejects(broken.status(), isUpdateError('service_manager_missing', /exit 12[67]/));
});

test('systemd: a unit whose process exits 3 at once: start resolves (systemctl says 0), then status is failed with the exit status', { skip }, async () => {
  const bed = need();
  const name = await installUnit(bed, `${tag}-exit3`, ['Type=simple', "ExecStart=/bin/sh -c 'exit 3'"]);
  try {
    const m = systemd(bed, `${name}.service`);
    await m.start();
    const s = await waitForStatus(m, (x) => x.state === 'failed', 'failed');
    assert.equal(s.active, false);
    assert.equal(s.detail, 'Result=exit-code, ExecMainStatus=3');
    assert.equal(s.stopped, true);
    assert.equal(s.restarting, false);
  } finally {
    await removeUnit(bed, name);
  }
});

test('systemd: a crash-looping Restart=always unit is activating (auto-restart) or failed, never reported active once it crashed; stop ends the loop', { skip }, async () => {
  const bed = need();
  const name = await installUnit(bed, `${tag}-loop`, ['Type=simple', "ExecStart=/bin/sh -c 'exit 3'", 'Restart=always', 'RestartSec=1']);
  try {
    const m = systemd(bed, name);
    await m.start();
    const s = await waitForStatus(m, (x) => x.state === 'activating' || x.state === 'failed', 'activating or failed');
    assert.equal(s.active, false);
    assert.match(s.detail!, /Result=exit-code, ExecMainStatus=3/);
    if (s.state === 'activating') {
      assert.match(s.detail!, /^SubState=auto-restart, /);
      assert.equal(s.restarting, true);
      assert.equal(s.stopped, false, 'the restart is a queued job');
    }
    await m.stop();
    const stopped = await m.status();
    assert.equal(stopped.active, false);
    assert.notEqual(stopped.state, 'activating');
  } finally {
    await removeUnit(bed, name);
  }
});

test('systemd: a unit that crashes after a moment is active again between crashes; only its restart count tells', { skip }, async () => {
  const bed = need();
  const name = await installUnit(bed, `${tag}-flap`, ['Type=simple', "ExecStart=/bin/sh -c 'sleep 0.5; exit 3'", 'Restart=always', 'RestartSec=0.2'], ['StartLimitBurst=100']);
  try {
    const m = systemd(bed, name);
    await m.start();
    assert.equal((await m.status()).restarts, 0);
    const s = await waitForStatus(m, (x) => x.active && (x.restarts ?? 0) >= 2, 'active after 2 restarts');
    assert.equal(s.detail, null);
    assert.equal(s.restarting, false);
    await m.stop();
    await m.start();
    assert.equal((await m.status()).restarts, 0, 'a start by hand counts from 0 again');
    await m.stop();
  } finally {
    await removeUnit(bed, name);
  }
});

test('systemd: a unit that hit its start limit starts again once its program is fixed (start resets the failed state)', { skip }, async () => {
  const bed = need();
  const prog = join(unitDir(bed), `${tag}-limit.sh`);
  writeFileSync(prog, '#!/bin/sh\necho "broken release" >&2\nexit 3\n');
  const name = await installUnit(
    bed,
    `${tag}-limit`,
    ['Type=simple', `ExecStart=/bin/sh ${prog}`, 'Restart=always', 'RestartSec=1'],
    ['StartLimitIntervalSec=600', 'StartLimitBurst=2'],
  );
  try {
    const m = systemd(bed, name);
    await m.start();
    const failed = await waitForStatus(m, (x) => x.state === 'failed', 'failed after the start limit');
    assert.match(failed.detail!, /ExecMainStatus=3/);
    // Plain `systemctl start` is refused now: the unit is within its start limit.
    const plain = await run('docker', ['exec', bed.systemd, 'systemctl', 'start', `${name}.service`], bed.env);
    assert.notEqual(plain.code, 0, 'systemctl start of a unit past its start limit should fail');
    // The updater installs a fixed program (the unit file is unchanged, no daemon-reload).
    writeFileSync(prog, '#!/bin/sh\nexec /bin/sleep infinity\n');
    await m.start();
    // A start by hand counts restarts from 0 again.
    assert.deepEqual(await m.status(), { active: true, state: 'active', detail: null, stopped: false, restarting: false, restarts: 0 });
    await m.stop();
    assert.equal((await m.status()).active, false);
  } finally {
    await removeUnit(bed, name);
  }
});

test('command: a real background process: start/status/stop transitions active ↔ inactive; stop twice is fine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svc-command-'));
  const pidFile = join(dir, 'pid');
  // A killed orphan can stay a zombie for a moment where no init reaps promptly: not running.
  const status = `p=$(cat '${pidFile}') && kill -0 "$p" && ! grep -q '^State:[[:space:]]*Z' /proc/"$p"/status`;
  const m = createServiceManager({ manager: 'command', start: `sleep 1000 & echo $! > '${pidFile}'`, stop: `kill $(cat '${pidFile}')`, status });
  try {
    assert.match(m.description, /^command service \(status: p=\$\(cat '.*\)$/);
    assert.equal(await m.exists(), true);
    const before = await m.status();
    assert.equal(before.active, false);
    assert.equal(before.state, 'inactive');
    assert.match(before.detail!, /^status command exited 1: .*No such file/);
    // Resolves although the backgrounded sleep inherits the command's stdout and stderr.
    await m.start();
    assert.deepEqual(await m.status(), { active: true, state: 'active', detail: null, stopped: false, restarting: false, restarts: null });
    await m.stop();
    const after = await waitForStatus(m, (s) => !s.active, 'inactive after stop');
    assert.equal(after.state, 'inactive');
    assert.equal(after.stopped, true, 'a status command that exits 1 says stopped');
    await m.stop(); // `kill` fails now, but the status command says it is not running
  } finally {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')));
    } catch {
      // gone already
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command: a failing start command is service_start_failed with its stderr; a failing stop of a running service is service_stop_failed', async () => {
  const m = createServiceManager({ manager: 'command', start: 'echo starting; echo "port 8080 already in use" >&2; exit 4', stop: 'echo "permission denied" >&2; exit 1', status: 'true' });
  await assert.rejects(m.start(), isUpdateError('service_start_failed', /exited 4: port 8080 already in use$/));
  await assert.rejects(m.stop(), isUpdateError('service_stop_failed', /exited 1: permission denied$/));
  const quiet = createServiceManager({ manager: 'command', start: 'echo only stdout; exit 2', stop: 'true', status: 'false' });
  await assert.rejects(quiet.start(), isUpdateError('service_start_failed', /exited 2: only stdout$/));
});

test('command: a status command that does not exist → exists false, status inactive (exit 127)', async () => {
  const m = createServiceManager({ manager: 'command', start: 'true', stop: 'true', status: '/nonexistent/dune-status' });
  assert.equal(await m.exists(), false);
  const s = await m.status();
  assert.equal(s.active, false);
  assert.equal(s.state, 'inactive');
  assert.match(s.detail!, /^status command exited 127: .*not found/);
  assert.equal(s.stopped, false, 'a status command that cannot run proves nothing');
  // Its stop command succeeds, so stop is fine; a failing stop would not be excused by a status that cannot run.
  await m.stop();
  const blind = createServiceManager({ manager: 'command', start: 'true', stop: 'exit 1', status: '/nonexistent/dune-status' });
  await assert.rejects(blind.stop(), isUpdateError('service_stop_failed'));
});

test('command: an abort ends a hanging command at once with the abort reason; a timeout is a failure', async () => {
  const m = createServiceManager({ manager: 'command', start: 'exec sleep 30', stop: 'true', status: 'true' }, { timeoutMs: 300 });
  const ac = new AbortController();
  const started = m.start(ac.signal);
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(started, { name: 'AbortError' });
  await assert.rejects(m.start(), isUpdateError('service_start_failed', /\(exec sleep 30\) did not finish within 300 ms$/));
});
