/**
 * When verify stops waiting for a service: the app kind's serviceWatch and the container kind's
 * containerWatch, fed the sequences of statuses the real managers give (as seen on the test bed's
 * systemd and Docker: test/service-manager.test.ts, test/fail-fast.test.ts), one poll after another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hopeless } from '../src/services/health.js';
import { serviceWatch } from '../src/services/service-watch.js';
import type { ServiceStatus } from '../src/services/service-manager.js';
import { containerWatch } from '../src/kinds/container/container-watch.js';
import type { ContainerState } from '../src/kinds/container/engine-api.js';

const UNIT = 'systemd unit app.service';

const unit = (state: string, more: Partial<ServiceStatus> = {}): ServiceStatus => ({
  active: state === 'active' || state === 'reloading',
  state,
  detail: state === 'active' ? null : 'Result=success',
  stopped: state === 'inactive' || state === 'failed',
  restarting: false,
  restarts: 0,
  ...more,
});

/** The answers of a watch to `statuses` in turn, up to and including the first Hopeless (as `!message`). */
function feed<S>(judge: (s: S) => string | null, statuses: S[]): Array<string | null> {
  const out: Array<string | null> = [];
  for (const s of statuses) {
    try {
      out.push(judge(s));
    } catch (error) {
      assert.ok(error instanceof Hopeless, String(error));
      out.push(`!${error.code}: ${error.message}`);
      break;
    }
  }
  return out;
}

test('a unit that fails is down at once, started or not', () => {
  for (const started of [true, false]) {
    assert.deepEqual(feed(serviceWatch(UNIT, started), [unit('failed', { detail: 'Result=exit-code, ExecMainStatus=3' })]), [
      `!service_failed: ${UNIT} failed (Result=exit-code, ExecMainStatus=3)`,
    ]);
  }
});

test('a unit in systemd\'s restart back-off is down at once: its process ended', () => {
  const backoff = unit('activating', { detail: 'SubState=auto-restart, Result=exit-code, ExecMainStatus=3', stopped: false, restarting: true });
  assert.deepEqual(feed(serviceWatch(UNIT, true), [unit('active'), backoff]), [null, `!service_failed: ${UNIT} ended and its service manager is restarting it (SubState=auto-restart, Result=exit-code, ExecMainStatus=3)`]);
});

test('a unit that systemd restarted between two polls looks active: its restart count tells', () => {
  assert.deepEqual(feed(serviceWatch(UNIT, true), [unit('active'), unit('active', { restarts: 2 })]), [null, `!service_failed: ${UNIT} ended and was restarted by its service manager 2 times while the updater waited for it to be healthy`]);
  // Counted from the first look: restarts from before the wait (a rollback that did not restart the service) are not held against it.
  assert.deepEqual(feed(serviceWatch(UNIT, false), [unit('active', { restarts: 7 }), unit('active', { restarts: 7 })]), [null, null]);
  // A manager that does not count (command) never trips it.
  assert.deepEqual(feed(serviceWatch(UNIT, true), [unit('active', { restarts: null }), unit('active', { restarts: null })]), [null, null]);
});

test('stopped after the run started it (or after it was seen up) is down at once; stopped before anyone started it waits', () => {
  const stopped = unit('inactive');
  assert.deepEqual(feed(serviceWatch(UNIT, true), [stopped]), [`!service_failed: ${UNIT} is inactive: it stopped after it was started (Result=success)`]);
  assert.deepEqual(feed(serviceWatch(UNIT, false), [stopped, stopped]), [`${UNIT} is inactive (Result=success)`, `${UNIT} is inactive (Result=success)`]);
  for (const seen of [unit('active'), unit('activating', { stopped: false }), unit('deactivating', { stopped: false })]) {
    assert.match(feed(serviceWatch(UNIT, false), [seen, stopped]).at(-1)!, /^!service_failed: .* it stopped after it was started/, seen.state);
  }
});

test('inactive with a start job queued (at boot, behind its After= units) waits, then counts as up once it runs', () => {
  const queued = unit('inactive', { stopped: false });
  assert.deepEqual(feed(serviceWatch(UNIT, false), [queued, queued, unit('activating', { stopped: false }), unit('active')]), [`${UNIT} is inactive (Result=success)`, `${UNIT} is inactive (Result=success)`, `${UNIT} is activating (Result=success)`, null]);
});

test('command service: a status command that says not running after the start is down; one that hangs or cannot run waits', () => {
  const what = 'command service (status: pgrep app)';
  const cmd = (stopped: boolean, state: string, detail: string): ServiceStatus => ({ active: false, state, detail, stopped, restarting: false, restarts: null });
  assert.deepEqual(feed(serviceWatch(what, true), [cmd(true, 'inactive', 'status command exited 1')]), [`!service_failed: ${what} is inactive: it stopped after it was started (status command exited 1)`]);
  assert.deepEqual(feed(serviceWatch(what, true), [cmd(false, 'unknown', 'status command did not finish within 15 s'), cmd(false, 'inactive', 'status command exited 127: not found')]), [
    `${what} is unknown (status command did not finish within 15 s)`,
    `${what} is inactive (status command exited 127: not found)`,
  ]);
});

// ------------------------------------------------------------------------------ containers

const IMAGE = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';
const OTHER = 'sha256:2222222222222222222222222222222222222222222222222222222222222222';

const box = (more: Partial<ContainerState> = {}): ContainerState => ({
  id: 'c1',
  name: 'stack_sample_1',
  imageId: IMAGE,
  status: 'running',
  running: true,
  restarting: false,
  exitCode: 0,
  error: '',
  restartCount: 0,
  health: null,
  startedAt: '2026-01-01T00:00:00Z',
  ...more,
});

test('container: exited or dead is down at once, naming the exit code', () => {
  assert.deepEqual(feed(containerWatch(IMAGE), [box(), box({ status: 'exited', running: false, exitCode: 1 })]), [null, '!container_exited: container stack_sample_1 exited with code 1']);
  assert.deepEqual(feed(containerWatch(IMAGE), [box({ status: 'dead', running: false, exitCode: 137, error: 'OOM' })]), ['!container_exited: container stack_sample_1 exited with code 137 (OOM)']);
});

test('container: in Docker\'s restart back-off (running and restarting) is down at once; restarted between two looks too', () => {
  const backoff = box({ status: 'restarting', running: true, restarting: true, exitCode: 3, restartCount: 2 });
  assert.deepEqual(feed(containerWatch(IMAGE), [backoff]), ['!container_exited: container stack_sample_1 exited with code 3 and Docker is restarting it (restarted 2 times so far)']);
  assert.deepEqual(feed(containerWatch(IMAGE), [box(), box({ restartCount: 1 })]), [null, '!container_exited: container stack_sample_1 restarted once while the updater waited for it to be healthy']);
  // Restarts from before the first look, or of a container since replaced, are not held against it.
  assert.deepEqual(feed(containerWatch(IMAGE), [box({ restartCount: 4 }), box({ restartCount: 4 }), box({ id: 'c2', restartCount: 9 }), box({ id: 'c2', restartCount: 9 })]), [null, null, null, null]);
});

test('container: another image, created, paused, removing and a starting HEALTHCHECK wait; unhealthy is down', () => {
  assert.deepEqual(feed(containerWatch(IMAGE), [box({ imageId: OTHER }), box({ status: 'created', running: false }), box({ status: 'paused' }), box({ status: 'removing', running: false }), box({ health: 'starting' }), box({ health: 'healthy' }), box({ health: 'unhealthy' })]), [
    'container stack_sample_1 runs image 222222222222, not 111111111111',
    'container stack_sample_1 is created',
    'container stack_sample_1 is paused',
    'container stack_sample_1 is removing',
    "container stack_sample_1's HEALTHCHECK is still starting",
    null,
    '!health_failed: container stack_sample_1 is unhealthy (Docker HEALTHCHECK)',
  ]);
});
