/**
 * The DuneBugger web frontend drives the real updater (`updater serve`, the demo) through a hub:
 * the local stand-in for Azure Web PubSub (src/demo/local-webpubsub.ts, the only fake), with the
 * real `@azure/web-pubsub-client` in the frontend's role, as dunebugger-fe uses it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebPubSubClient, WebPubSubJsonReliableProtocol } from '@azure/web-pubsub-client';
import { startLocalWebPubSub, type LocalWebPubSub } from '../src/demo/local-webpubsub.js';
import { cleanup, openComponents, tempDir, testLogger } from './support/harness.js';
import { startWebPubSub } from '../src/webpubsub/adapter.js';
import { LAUNCHER, prepareDemoDir, startService, waitFor, type ServiceProcess } from './support/service-process.js';
import { freePort } from './support/testbed.js';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const GROUP = 'dune-demo-device';
const KEY = 'k3y-' + 'A'.repeat(40);

interface Heard {
  subject: string;
  body: unknown;
  source?: string;
  /** When it was received (Date.now()). */
  at: number;
}

/** The frontend: joins the device's group and sends `{subject, body, connectionId}` there, as dunebugger-fe does. */
class Frontend {
  readonly heard: Heard[] = [];
  private client!: WebPubSubClient;

  constructor(
    private readonly hub: LocalWebPubSub,
    private readonly group = GROUP,
    private readonly userId = 'frontend-user',
  ) {}

  async open(): Promise<void> {
    const url = await this.hub.clientUrl({ userId: this.userId, roles: [`webpubsub.joinLeaveGroup.${this.group}`, `webpubsub.sendToGroup.${this.group}`] });
    this.client = new WebPubSubClient(url, { protocol: WebPubSubJsonReliableProtocol(), messageRetryOptions: { maxRetries: 0 } });
    this.client.on('group-message', (e) => {
      const d = e.message.data as Heard;
      if (d && typeof d === 'object' && d.source === 'controller') this.heard.push({ ...d, at: Date.now() });
    });
    await this.client.start();
    await this.client.joinGroup(this.group);
  }

  /** Sends `{subject, body, connectionId}` (and `extra`); answers where the replies to it start in `heard`. */
  async send(subject: string, body: unknown, extra: Record<string, unknown> = {}): Promise<number> {
    const from = this.heard.length;
    await this.client.sendToGroup(this.group, { subject, body, connectionId: 'fe-conn', ...extra }, 'json', { noEcho: true });
    return from;
  }

  /** The first message of `subject` heard after index `from` that satisfies `ok`. */
  async next(subject: string, from: number, ok: (body: any) => boolean = () => true, timeoutMs = 30_000): Promise<any> {
    return waitFor(`${subject} in the group`, async () => this.heard.slice(from).find((m) => m.subject === subject && ok(m.body))?.body, timeoutMs);
  }

  stop(): void {
    this.client.stop();
  }
}

let hub: LocalWebPubSub;
let dir: string;
let svc: ServiceProcess;
let fe: Frontend;

before(async () => {
  hub = await startLocalWebPubSub({ hub: 'dunebugger', accessKey: KEY });
  dir = tempDir('updater-wps-');
  await prepareDemoDir(dir);
  svc = await startService(dir, {
    UPDATER_LOG_LEVEL: 'debug',
    UPDATER_WEBPUBSUB: JSON.stringify({ connectionString: hub.connectionString, hub: 'dunebugger', group: GROUP }),
  });
  fe = new Frontend(hub);
  await fe.open();
  await waitFor('/healthz webpubsub connected', async () => ((await (await fetch(`${svc.url}/healthz`)).json()) as { webpubsub?: string }).webpubsub === 'connected');
});

after(async () => {
  fe?.stop();
  svc?.child.kill('SIGTERM');
  await svc?.exited;
  await hub?.close();
  cleanup(dir);
});

test('heartbeat: "I am alive" at once, from the device, to the group', async () => {
  const from = await fe.send('controller.heartbeat', null);
  assert.equal(await fe.next('heartbeat', from), 'I am alive');
  const updater = hub.connections().find((c) => c.userId === GROUP);
  assert.ok(updater, 'the updater is connected as the device (userId = group)');
  assert.deepEqual(updater.groups, [GROUP]);
});

test('system_info in the frontend shape: device_id, timestamp, components with state, version, last_available_version', async () => {
  const from = await fe.send('controller.get_system_info', 'null');
  const body = await fe.next('system_info', from);
  assert.equal(body.system_info.device_id, GROUP);
  assert.match(body.system_info.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  const [c] = body.system_info.dunebugger_components;
  assert.equal(c.name, 'sample-app');
  assert.equal(c.state, 'running');
  assert.equal(c.version, '1.0.0');
  assert.ok('last_available_version' in c);
  for (const key of ['running', 'current_version', 'latest_version', 'update_available', 'last_checked', 'release_notes', 'release_url']) assert.ok(key in c, key);
});

test('check → update_check_result and a refreshed system_info naming the newest release', async () => {
  const from = await fe.send('updater.check_updates', 'refresh');
  const result = await fe.next('update_check_result', from);
  assert.equal(result.components['sample-app'].current, '1.0.0');
  assert.equal(result.components['sample-app'].update_available, true);
  const info = await fe.next('system_info', from, (b) => b.system_info.dunebugger_components[0].last_checked !== null);
  assert.equal(info.system_info.dunebugger_components[0].last_available_version, result.components['sample-app'].latest);
});

test('unknown component: one log line, success false, nothing started', async () => {
  const from = await fe.send('updater.update', 'dunebugger-nonesuch');
  const log = await fe.next('log', from);
  assert.deepEqual(log, { success: false, message: 'Unknown component: dunebugger-nonesuch', level: 'error' });
  const runs = (await (await fetch(`${svc.url}/api/runs`)).json()) as unknown[];
  assert.equal(runs.length, 0);
});

test('a single update: start log, progress per transition, update_result, final log, fresh system_info', async () => {
  const from = await fe.send('updater.update', 'sample-app');
  const start = await fe.next('log', from, (b) => b.success === true);
  assert.match(start.message, /^Updating sample-app from 1\.0\.0 to \d+\.\d+\.\d+/);
  assert.equal(start.level, 'info');
  const result = await fe.next('update_result', from, () => true, 60_000);
  const states = fe.heard.slice(from).filter((m) => m.subject === 'updater_progress' && !(m.body as { transient?: boolean }).transient).map((m) => (m.body as { state: string }).state);
  assert.deepEqual(states.slice(0, 2), ['discover', 'validate']);
  assert.ok(states.includes(result.state), `the progress ends in ${result.state}: ${states.join(' → ')}`);
  const end = await fe.next('log', from, (b) => b.message === result.message);
  assert.equal(end.success, result.success);
  assert.equal(end.level, result.success ? 'info' : result.state === 'rolled_back' ? 'warning' : 'error');
  const resultAt = fe.heard.findIndex((m, i) => i >= from && m.subject === 'update_result');
  await fe.next('system_info', resultAt + 1);
});

test('a dropped connection is resumed, a lost session is rejoined: the device answers again', async () => {
  const updater = () => hub.connections().find((c) => c.userId === GROUP);
  const before = updater()!.connectionId;
  assert.equal(hub.dropConnection(before), 1);
  let from = await fe.send('updater.heartbeat', null);
  assert.equal(await fe.next('heartbeat', from, () => true, 35_000), 'I am alive');
  assert.equal(updater()!.connectionId, before, 'resumed: the same connection');

  assert.equal(hub.dropSession(before), 1);
  await waitFor('a new connection of the device, in its group', async () => {
    const c = updater();
    return c && c.connectionId !== before && c.groups.includes(GROUP);
  }, 35_000);
  from = await fe.send('updater.heartbeat', null);
  assert.equal(await fe.next('heartbeat', from, () => true, 35_000), 'I am alive');
});

test('no key, token or signed URL in any log line of the service', () => {
  const out = svc.output();
  assert.ok(out.includes('Web PubSub: connected'), 'the log says it connected');
  assert.ok(!out.includes(KEY), 'the AccessKey is in the log');
  assert.doesNotMatch(out, /access_token=(?!\[redacted\])/);
  assert.doesNotMatch(out, /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./);
  assert.doesNotMatch(out, /AccessKey=(?!\[redacted\])/);
});

test('a wrong key: the service runs, /healthz says disconnected, REST answers, the log says why without the key', async () => {
  const other = tempDir('updater-wps-badkey-');
  await prepareDemoDir(other);
  const wrong = 'wrong-' + 'B'.repeat(40);
  const bad = await startService(other, {
    UPDATER_WEBPUBSUB: JSON.stringify({ connectionString: `Endpoint=${hub.endpoint};AccessKey=${wrong};Version=1.0;`, hub: 'dunebugger', group: 'other-device' }),
  });
  try {
    await waitFor('the refusal in the log', async () => /Web PubSub: cannot connect: .*401/.test(bad.output()), 20_000);
    const health = (await (await fetch(`${bad.url}/healthz`)).json()) as { status: string; webpubsub: string };
    assert.equal(health.status, 'ok');
    assert.equal(health.webpubsub, 'disconnected');
    assert.equal((await fetch(`${bad.url}/api/components`)).status, 200);
    assert.ok(!bad.output().includes(wrong));
    assert.equal(bad.child.exitCode, null, 'still running');
  } finally {
    bad.child.kill('SIGTERM');
    await bad.exited;
    cleanup(other);
  }
});

// ---- update-first and "Update Components", on a real core with two components (remote first)

test('the update-first rule and "manual_confirmation": remote, then core, in order; a single core update is refused first', async () => {
  const root = tempDir('updater-wps-all-');
  const h = openComponents(root, [{ name: 'core' }, { name: 'remote', updateFirst: true }], { stepDelayMs: 20 });
  const group = 'two-components';
  const transport = startWebPubSub(h.core.app, { connectionString: hub.connectionString, hub: 'dunebugger', group, controller: true }, testLogger(), { link: { retryDelayMs: 100 } });
  const client = new Frontend(hub, group, 'fe-2');
  const { heard } = client;
  const send = (subject: string, body: unknown) => client.send(subject, body);
  const next = (subject: string, from: number) => client.next(subject, from);
  try {
    await client.open();
    await waitFor('the transport in its group', async () => transport.link.status === 'connected');
    let from = await send('updater.check_updates', 'null');
    await next('update_check_result', from);

    from = await send('updater.update', 'dunebugger-core');
    assert.deepEqual(await next('log', from), { success: false, message: 'Cannot update core before remote. Remote has an available update and must be updated first.', level: 'warning' });
    assert.equal(h.installed('core'), '1.0.0');

    from = await send('updater.update', 'manual_confirmation');
    const starts: string[] = [];
    await waitFor('two results', async () => heard.slice(from).filter((m) => m.subject === 'update_result').length === 2, 60_000);
    for (const m of heard.slice(from)) if (m.subject === 'log' && (m.body as { success: boolean }).success && /^Updating/.test((m.body as { message: string }).message)) starts.push((m.body as { message: string }).message);
    assert.deepEqual(starts, ['Updating remote from 1.0.0 to 1.1.0', 'Updating core from 1.0.0 to 1.1.0']);
    const results = heard.slice(from).filter((m) => m.subject === 'update_result').map((m) => [(m.body as { component: string }).component, (m.body as { state: string }).state]);
    assert.deepEqual(results, [['remote', 'succeeded'], ['core', 'succeeded']]);
    assert.equal(h.installed('remote'), '1.1.0');
    assert.equal(h.installed('core'), '1.1.0');

    from = await send('updater.update', 'core');
    assert.deepEqual(await next('log', from), { success: false, message: 'No update available for core', level: 'info' });
  } finally {
    client.stop();
    await transport.close();
    await h.close();
    cleanup(root);
  }
});

test('the demo with its own hub (UPDATER_DEMO_HUB=1), driven by `updater frontend` as a newcomer would', async () => {
  const demoDir = tempDir('updater-wps-demo-');
  await prepareDemoDir(demoDir);
  writeFileSync(join(demoDir, 'data', 'demo', 'hub.port'), `${await freePort()}\n`);
  const demo = await startService(demoDir, { UPDATER_DEMO_HUB: '1' });
  try {
    await waitFor('the demo in its hub', async () => ((await (await fetch(`${demo.url}/healthz`)).json()) as { webpubsub?: string }).webpubsub === 'connected');
    const beat = await execFileP(LAUNCHER, ['frontend', 'controller.heartbeat', '--wait', '2'], { cwd: demoDir });
    assert.deepEqual(JSON.parse(beat.stdout.trim().split('\n')[0]!), { subject: 'heartbeat', body: 'I am alive' });
    const nope = await execFileP(LAUNCHER, ['frontend', 'updater.update', 'nonesuch'], { cwd: demoDir });
    assert.deepEqual(JSON.parse(nope.stdout.trim().split('\n').at(-1)!), { subject: 'log', body: { success: false, message: 'Unknown component: nonesuch', level: 'error' } });
  } finally {
    demo.child.kill('SIGTERM');
    await demo.exited;
    cleanup(demoDir);
  }
});

test('heartbeats repeat until the requests stop; controller: false leaves controller.* to dunebugger-remote; replies of devices are ignored', async () => {
  const root = tempDir('updater-wps-beat-');
  const h = openComponents(root, [{ name: 'core' }]);
  const group = 'beats';
  const transport = startWebPubSub(h.core.app, { connectionString: hub.connectionString, hub: 'dunebugger', group, controller: false }, testLogger(), { heartbeatEveryMs: 200, heartbeatForMs: 700, link: { retryDelayMs: 100 } });
  const client = new Frontend(hub, group, 'fe-3');
  const { heard } = client;
  try {
    await client.open();
    await waitFor('the transport in its group', async () => transport.link.status === 'connected');
    await new Promise((r) => setTimeout(r, 300));
    heard.length = 0;
    await client.send('controller.heartbeat', null);
    await client.send('controller.system_info', null);
    await client.send('updater.system_info', null, { source: 'controller' });
    await new Promise((r) => setTimeout(r, 500));
    // Not deepEqual(heard, []): that would narrow `heard` to never[] for the lines below.
    assert.equal(heard.length, 0, `controller.* with controller: false, and a device's own reply, get no answer (got ${JSON.stringify(heard)})`);

    const t0 = Date.now();
    await client.send('updater.heartbeat', 'null');
    await new Promise((r) => setTimeout(r, 1500));
    const beats = heard.filter((m) => m.subject === 'heartbeat').map((m) => m.at - t0);
    assert.ok(beats.length >= 3 && beats.length <= 5, `heartbeats at ${beats.join(', ')} ms: at once, then every 200 ms until 700 ms after the request`);
    assert.ok(beats[0]! < 200, `the first at once (${beats[0]} ms)`);
    assert.ok(beats.at(-1)! <= 1000, `none after the requests stopped (the last at ${beats.at(-1)} ms)`);
  } finally {
    client.stop();
    await transport.close();
    await h.close();
    cleanup(root);
  }
});

test('while the device\'s connection is away, its messages wait and arrive in order once it is resumed', async () => {
  const root = tempDir('updater-wps-away-');
  const h = openComponents(root, [{ name: 'core' }], { stepDelayMs: 50 });
  const group = 'away';
  const transport = startWebPubSub(h.core.app, { connectionString: hub.connectionString, hub: 'dunebugger', group, controller: true }, testLogger(), { link: { retryDelayMs: 100 } });
  const client = new Frontend(hub, group, 'fe-4');
  const { heard } = client;
  try {
    await client.open();
    await waitFor('the transport in its group', async () => transport.link.status === 'connected');
    const device = hub.connections().find((c) => c.userId === group)!;
    hub.holdResumptions(true);
    hub.dropConnection(device.connectionId);
    const { runId } = await h.core.app.commands.startRun('core', {});
    await h.core.app.queries.runEnded(runId);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(heard.filter((m) => m.subject === 'update_result').length, 0, 'nothing arrives while the device is away');
    hub.holdResumptions(false);
    await waitFor('the run\'s result after the resumption', async () => heard.some((m) => m.subject === 'update_result'), 20_000);
    const seqs = heard.filter((m) => m.subject === 'updater_progress' && !(m.body as { transient?: boolean }).transient).map((m) => (m.body as { seq: number }).seq);
    const journaled = h.core.app.queries.run(runId)!.transitions!.map((t) => t.seq);
    assert.deepEqual(seqs, journaled, 'every transition, once, in order');
    assert.equal(hub.connections().find((c) => c.userId === group)?.connectionId, device.connectionId, 'the same connection, resumed');
  } finally {
    hub.holdResumptions(false);
    client.stop();
    await transport.close();
    await h.close();
    cleanup(root);
  }
});
