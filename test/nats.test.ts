/**
 * The device on NATS, against a real nats-server with JetStream (test/support/nats-server.ts) and
 * the real `nats` client in the fleet console's role: the replies to each request subject, the
 * events of a run, the device's record in `dune_devices`, one run per rollout, refusals, a bus that
 * is down at start or goes away and comes back, /api/fleet, and no secret in any log line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { connect, type KV, type NatsConnection, type Subscription } from 'nats';
import { cleanup, openComponents, tempDir, type ComponentsHarness } from './support/harness.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';
import { freePort } from './support/testbed.js';
import { startHttp } from '../src/server/server.js';
import { startNats, type NatsTransport } from '../src/nats/adapter.js';
import { DEVICES_BUCKET, ROLLOUTS_BUCKET, requestSubject, eventSubject, type DeviceRecord, type FleetView, type RolloutRecord } from '../src/contract/index.js';
import type { NatsConfig } from '../src/config/index.js';

const USER = 'dev-user';
const PASSWORD = 'Pw-' + 'x7'.repeat(12);
const DEVICE = 'dev-03';

/** Polls `fn` until it answers something truthy (errors count as not yet). */
async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A logger whose lines the test reads (every level: debug lines must not leak either). */
function capturingLogger(): { logger: Logger; lines: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines: () => out };
}

interface Device {
  h: ComponentsHarness;
  nats: NatsTransport;
  http: { url: string; close(): Promise<void> };
  lines: () => string;
  close(): Promise<void>;
}

async function startDevice(config: NatsConfig, options: { stepDelayMs?: number } = {}): Promise<Device> {
  const root = tempDir('updater-nats-');
  const h = openComponents(root, [{ name: 'core' }, { name: 'remote' }], { stepDelayMs: options.stepDelayMs ?? 0 });
  const { logger, lines } = capturingLogger();
  const http = await startHttp(h.core.app, { host: '127.0.0.1', port: 0, token: null, allowedHosts: [], allowedOrigins: [] }, logger);
  const nats = startNats(h.core.app, config, logger, { link: { reconnectWaitMs: 200, retryDelayMs: 100, maxRetryDelayMs: 1000, pingIntervalMs: 1000 }, refreshMs: 60_000, timeoutMs: 2000, retryMs: 300 });
  return {
    h,
    nats,
    http,
    lines,
    async close() {
      await h.core.close([http.close(), nats.close()]);
      cleanup(root);
    },
  };
}

/** The console: request/reply with the /ws envelope, JSON both ways. */
class Console {
  constructor(readonly nc: NatsConnection) {}

  async request(subject: string, body?: unknown, raw?: string): Promise<{ subject: string; body: any }> {
    const payload = raw !== undefined ? new TextEncoder().encode(raw) : body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
    const reply = await this.nc.request(requestSubject(DEVICE, subject), payload, { timeout: 10_000 });
    return reply.json();
  }

  /** Everything the device publishes on its events subjects, from now on. */
  listen(): { heard: Array<{ subject: string; envelope: { subject: string; body: any } }>; sub: Subscription } {
    const heard: Array<{ subject: string; envelope: { subject: string; body: any } }> = [];
    const sub = this.nc.subscribe(eventSubject(DEVICE, '>'), { callback: (_err, msg) => heard.push({ subject: msg.subject, envelope: msg.json() }) });
    return { heard, sub };
  }

  async devices(): Promise<KV> {
    return this.nc.jetstream().views.kv(DEVICES_BUCKET, { bindOnly: true });
  }

  async record(device = DEVICE): Promise<DeviceRecord | null> {
    const e = await (await this.devices()).get(device);
    return e ? e.json<DeviceRecord>() : null;
  }
}

let server: NatsServer;
let device: Device;
let console_: Console;

before(async () => {
  server = await startNatsServer({ args: ['--user', USER, '--pass', PASSWORD] });
  device = await startDevice({ servers: [server.url], device: DEVICE, user: USER, password: PASSWORD }, { stepDelayMs: 100 });
  console_ = new Console(await connect({ servers: server.url, user: USER, pass: PASSWORD }));
  try {
    await waitFor('the device on the bus', async () => device.nats.link.status === 'connected', 20_000);
    await waitFor('the device\'s record', () => console_.record().catch(() => null), 20_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the device's log:\n${device.lines()}\nnats-server:\n${server.output()}`);
  }
});

after(async () => {
  await console_?.nc.close();
  await device?.close();
  await server?.close();
});

test('controller.system_info → system_info; updater.check_updates → update_check_result (also an event, with system_info)', async () => {
  const info = await console_.request('controller.system_info');
  assert.equal(info.subject, 'system_info');
  assert.deepEqual(info.body.system_info.dunebugger_components.map((c: { name: string }) => c.name), ['core', 'remote']);

  const { heard, sub } = console_.listen();
  await console_.nc.flush();
  const check = await console_.request('updater.check_updates');
  assert.equal(check.subject, 'update_check_result');
  assert.equal(check.body.components.core.current, '1.0.0');
  assert.equal(check.body.components.core.latest, '1.1.0');
  assert.equal(check.body.components.core.update_available, true);
  await waitFor('the check and system_info as events', async () => heard.some((m) => m.subject === eventSubject(DEVICE, 'update_check_result')) && heard.some((m) => m.subject === eventSubject(DEVICE, 'system_info')));
  const event = heard.find((m) => m.subject === eventSubject(DEVICE, 'update_check_result'))!;
  assert.deepEqual(event.envelope, { subject: 'update_check_result', body: check.body });
  sub.unsubscribe();
  // The record follows the check.
  await waitFor('the record with the latest versions', async () => (await console_.record())?.system_info.dunebugger_components.find((c) => c.name === 'core')?.latest_version === '1.1.0');
});

test('refusals are error envelopes: bad JSON, unknown subject, bad body, not_found; a subscribe is for /ws; events.* is not answered', async () => {
  const bad = await console_.request('updater.perform_update', undefined, '{"component": ');
  assert.equal(bad.subject, 'error');
  assert.equal(bad.body.code, 'bad_json');
  const unknown = await console_.request('updater.reboot', {});
  assert.deepEqual(unknown, { subject: 'error', body: { code: 'unknown_subject', message: 'unknown subject "updater.reboot"' } });
  const body = await console_.request('updater.perform_update', { component: 'core', dry_run: 'yes' });
  assert.equal(body.subject, 'error');
  assert.equal(body.body.code, 'bad_body');
  assert.match(body.body.message, /dry_run/);
  const noBody = await console_.request('updater.perform_update');
  assert.equal(noBody.body.code, 'bad_body');
  const missing = await console_.request('updater.perform_update', { component: 'nonesuch' });
  assert.deepEqual(missing.body, { code: 'not_found', message: 'no component named "nonesuch"' });
  const sub = await console_.request('updater.subscribe', {});
  assert.equal(sub.body.code, 'unknown_subject');
  // A request on an events subject is not answered (no responder: the request times out).
  await assert.rejects(console_.nc.request(eventSubject(DEVICE, 'update_result'), new Uint8Array(), { timeout: 500 }));
  // A plain publish (no reply subject) is handled and not answered; nothing crashes.
  console_.nc.publish(requestSubject(DEVICE, 'updater.perform_update'), new TextEncoder().encode('not json'));
  console_.nc.publish(requestSubject(DEVICE, 'controller.system_info'));
  await console_.nc.flush();
  assert.equal((await console_.request('controller.system_info')).subject, 'system_info');
  assert.equal(device.h.core.app.queries.runs().length, 0, 'nothing was started');
});

test('perform_update with a rollout: one run, its events (progress, result), the record\'s active_run; the same rollout again answers the same run', async () => {
  const { heard, sub } = console_.listen();
  await console_.nc.flush();
  const first = await console_.request('updater.perform_update', { component: 'remote', rollout: 'r-20261202-0001' });
  assert.equal(first.subject, 'run');
  assert.equal(first.body.component, 'remote');
  assert.equal(first.body.result, null);
  assert.deepEqual(Object.keys(first.body).sort(), ['component', 'message', 'result', 'run_id', 'state', 'to_version']);
  const runId: number = first.body.run_id;
  // While it runs: the record names it, and a repeat answers it (not busy).
  const active = await waitFor('the active run in the record', async () => {
    const r = await console_.record();
    return r?.active_run?.run_id === runId ? r.active_run : null;
  }, 10_000);
  assert.equal(active.component, 'remote');
  const repeat = await console_.request('updater.perform_update', { component: 'remote', rollout: 'r-20261202-0001' });
  assert.equal(repeat.subject, 'run');
  assert.equal(repeat.body.run_id, runId);

  await waitFor('update_result as an event', async () => heard.some((m) => m.subject === eventSubject(DEVICE, 'update_result')), 30_000);
  const progress = heard.filter((m) => m.subject === eventSubject(DEVICE, 'updater_progress')).map((m) => m.envelope);
  assert.ok(progress.length >= 3, `progress events: ${progress.length}`);
  assert.ok(progress.every((p) => p.subject === 'updater_progress' && p.body.run_id === runId));
  assert.equal(progress[0]!.body.state, 'discover');
  const result = heard.find((m) => m.subject === eventSubject(DEVICE, 'update_result'))!.envelope;
  assert.equal(result.body.run_id, runId);
  assert.equal(result.body.state, 'succeeded');
  sub.unsubscribe();

  // After the end: the same run with its result, still not another one.
  const after = await console_.request('updater.perform_update', { component: 'remote', rollout: 'r-20261202-0001' });
  assert.deepEqual(after.body, { run_id: runId, component: 'remote', state: 'succeeded', result: 'succeeded', message: after.body.message, to_version: '1.1.0' });
  assert.equal(device.h.core.app.queries.runs({ component: 'remote' }).length, 1);
  assert.equal(device.h.installed('remote'), '1.1.0');
  await waitFor('the record after the run', async () => {
    const r = await console_.record();
    return r && r.active_run === null && r.system_info.dunebugger_components.find((c) => c.name === 'remote')?.current_version === '1.1.0';
  });
});

test('updater.update all → update_batch; a single component by name → run', async () => {
  const all = await console_.request('updater.update', 'all');
  assert.equal(all.subject, 'update_batch');
  assert.deepEqual(all.body.components, ['core']);
  assert.equal(all.body.state, 'running');
  await waitFor('the batch done', async () => device.h.core.app.queries.batch()?.state === 'succeeded', 30_000);
  const busyFree = await console_.request('updater.update', 'core');
  assert.equal(busyFree.subject, 'run');
  await device.h.core.app.queries.runEnded(busyFree.body.run_id);
  const nothing = await console_.request('updater.update', 'all');
  assert.equal(nothing.subject, 'update_batch');
  assert.deepEqual(nothing.body.components, []);
});

test('GET /api/fleet: the devices of dune_devices (online) and the rollouts of dune_rollouts, newest first', async () => {
  const js = console_.nc.jetstream();
  const rollouts = await js.views.kv(ROLLOUTS_BUCKET, { history: 1 });
  const rollout = (id: string, created: string): RolloutRecord => ({
    id, component: 'remote', version: '1.1.0', state: 'done', devices: [{ device: DEVICE, group: 'canary', result: 'succeeded', run_id: 1, reason: null }],
    format: 1, canary: 1, batch: 5, max_failures: 0, group_index: 1, created_at: created, updated_at: created,
  });
  await rollouts.put('r-old', JSON.stringify(rollout('r-old', '2026-01-01T00:00:00.000Z')));
  await rollouts.put('r-new', JSON.stringify(rollout('r-new', '2026-02-01T00:00:00.000Z')));
  const stale: DeviceRecord = { ...(await console_.record())!, device: 'dev-old', updated_at: new Date(Date.now() - 600_000).toISOString() };
  await (await console_.devices()).put('dev-old', JSON.stringify(stale));
  await (await console_.devices()).put('junk', 'not a record');

  const res = await fetch(`${device.http.url}/api/fleet`);
  assert.equal(res.status, 200);
  const fleet = (await res.json()) as FleetView;
  assert.deepEqual(fleet.devices.map((d) => [d.device, d.online]), [[DEVICE, true], ['dev-old', false]]);
  const me = fleet.devices.find((d) => d.device === DEVICE)!;
  assert.deepEqual(me.components.map((c) => c.name), ['core', 'remote']);
  assert.deepEqual(me.components.find((c) => c.name === 'remote'), { name: 'remote', installed: '1.1.0', latest: '1.1.0' });
  assert.deepEqual(fleet.rollouts.map((r) => r.id), ['r-new', 'r-old']);
  await (await console_.devices()).delete('dev-old');
  await (await console_.devices()).delete('junk');
});

test('without nats: GET /api/fleet is 404 not_found, /healthz has no nats; REST\'s update takes a rollout too', async () => {
  const root = tempDir('updater-nats-off-');
  const h = openComponents(root, [{ name: 'core' }]);
  const http = await startHttp(h.core.app, { host: '127.0.0.1', port: 0, token: null, allowedHosts: [], allowedOrigins: [] }, pino({ level: 'silent' }));
  try {
    const res = await fetch(`${http.url}/api/fleet`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: 'not_found', message: 'nats is not configured' } });
    assert.equal(((await (await fetch(`${http.url}/healthz`)).json()) as { nats?: string }).nats, undefined);
    // REST takes a rollout too: the repeat answers the same run.
    const post = async () => (await (await fetch(`${http.url}/api/components/core/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rollout: 'r-rest' }) })).json()) as { run_id: number };
    const a = await post();
    const b = await post();
    assert.equal(b.run_id, a.run_id);
    await h.core.app.queries.runEnded(a.run_id);
    assert.equal((await post()).run_id, a.run_id);
    assert.equal(h.core.app.queries.runs().length, 1);
  } finally {
    await h.core.close([http.close()]);
    cleanup(root);
  }
});

test('the device starts with the bus down, connects when it comes up; the bus restarts: it reconnects, rewrites its record, /healthz follows, REST answers throughout', async () => {
  const TOKEN = 'tk-' + 'Q9'.repeat(16);
  const port = await freePort();
  const dev = await startDevice({ servers: [`nats://127.0.0.1:${port}`], device: 'dev-07', token: TOKEN });
  const health = async () => ((await (await fetch(`${dev.http.url}/healthz`)).json()) as { status: string; nats?: string });
  let bus: NatsServer | null = null;
  let nc: NatsConnection | null = null;
  try {
    // No bus: the device serves, /healthz says disconnected.
    assert.deepEqual([(await health()).status, (await health()).nats], ['ok', 'disconnected']);
    assert.equal((await fetch(`${dev.http.url}/api/components`)).status, 200);
    const fleetDown = await fetch(`${dev.http.url}/api/fleet`);
    assert.equal(fleetDown.status, 503);
    // A run is not held up by the missing bus.
    const { runId } = await dev.h.core.app.commands.startRun('core', {});
    assert.equal((await dev.h.core.app.queries.runEnded(runId)).result, 'succeeded');

    bus = await startNatsServer({ port, args: ['--auth', TOKEN] });
    await waitFor('/healthz nats connected', async () => (await health()).nats === 'connected', 20_000);
    nc = await connect({ servers: bus.url, token: TOKEN });
    const kv = () => nc!.jetstream().views.kv(DEVICES_BUCKET, { bindOnly: true });
    const record = async () => (await (await kv()).get('dev-07'))?.json<DeviceRecord>();
    const first = await waitFor('the record on connecting', record, 20_000);
    assert.equal(first.system_info.dunebugger_components.find((c) => c.name === 'core')?.current_version, '1.1.0');
    assert.equal(first.device, 'dev-07');

    // The bus goes away: disconnected, REST still answers; the record is not written meanwhile.
    await nc.close();
    nc = null;
    await bus.stop();
    await waitFor('/healthz nats disconnected', async () => (await health()).nats === 'disconnected', 20_000);
    assert.equal((await fetch(`${dev.http.url}/api/components`)).status, 200);
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 300));

    // Back (same store): reconnected, the record rewritten after the restart.
    await bus.start();
    await waitFor('/healthz nats connected again', async () => (await health()).nats === 'connected', 30_000);
    nc = await connect({ servers: bus.url, token: TOKEN });
    await waitFor('the record rewritten on reconnecting', async () => {
      const r = await record();
      return r && Date.parse(r.updated_at) > before;
    }, 20_000);
    // And it answers requests again.
    const reply = await nc.request(requestSubject('dev-07', 'controller.system_info'), new Uint8Array(), { timeout: 10_000 });
    assert.equal(reply.json<{ subject: string }>().subject, 'system_info');
    assert.ok(!dev.lines().includes(TOKEN), 'the token is in the log');
    assert.match(dev.lines(), /NATS: connected to/);
    assert.match(dev.lines(), /NATS: disconnected/);
  } finally {
    await nc?.close();
    await dev.close();
    await bus?.close();
  }
});

test('a wrong password: the device runs, /healthz says disconnected, the log says why without the password', async () => {
  const wrong = 'wrong-' + 'P'.repeat(20);
  const dev = await startDevice({ servers: [server.url], device: 'dev-08', user: USER, password: wrong });
  try {
    await waitFor('the refusal in the log', async () => /NATS: cannot connect: .*Authorization Violation/i.test(dev.lines()), 20_000);
    const health = (await (await fetch(`${dev.http.url}/healthz`)).json()) as { nats: string };
    assert.equal(health.nats, 'disconnected');
    assert.equal((await fetch(`${dev.http.url}/api/components`)).status, 200);
    assert.ok(!dev.lines().includes(wrong), 'the wrong password is in the log');
  } finally {
    await dev.close();
  }
});

test('no password or token in any log line of the device', () => {
  const out = device.lines();
  assert.match(out, /NATS: connected to/);
  assert.ok(!out.includes(PASSWORD), 'the password is in the log');
});
