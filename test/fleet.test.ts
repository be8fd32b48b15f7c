/**
 * The fleet console against a real nats-server (JetStream), the console as a real process
 * (`node --import tsx src/cli.ts fleet …`), and devices simulated here with the real `nats`
 * client, following the contract (CONTRACT.md, "Many devices"; src/contract/fleet.ts): each
 * writes its DeviceRecord to dune_devices, answers `dune.<device>.updater.perform_update` (one
 * run per rollout id and component: asked again, it answers the same run), and publishes
 * `update_result` on `dune.<device>.events.update_result` when its run ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, JSONCodec, type KV, type NatsConnection } from 'nats';
import { DEVICES_BUCKET, deviceRecord, eventSubject, requestSubject, ROLLOUTS_BUCKET, rolloutRecord, rolloutView, type DeviceRecord, type RunReply } from '../src/contract/fleet.js';
import { parseInbound } from '../src/contract/requests.js';
import { startNatsServer, type NatsServer } from './support/nats-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const codec = JSONCodec();
const ID = /^r-\d{8}-\d{6}-[0-9a-f]{4}$/;

type Behaviour = 'good' | 'bad' | 'busy' | 'offline' | 'silent';

interface Run extends RunReply {
  rollout: string | null;
}

/** One simulated device: its own connection, record and request subject. */
class FakeDevice {
  /** perform_update requests received. */
  asks = 0;
  /** Runs started (a repeated rollout id starts none). */
  starts = 0;
  startedAt: number[] = [];
  private runs: Run[] = [];
  private nextRun = 1;
  private nc!: NatsConnection;
  private kv!: KV;
  installed = '1.0.0';

  constructor(
    readonly name: string,
    readonly behaviour: Behaviour,
    readonly runMs: number,
  ) {}

  async start(url: string): Promise<this> {
    this.nc = await connect({ servers: url, name: `fake ${this.name}` });
    this.kv = await this.nc.jetstream().views.kv(DEVICES_BUCKET, { history: 1 });
    await this.writeRecord();
    // offline: an old record, nobody on its subject; silent: a fresh record, nobody on its subject.
    if (this.behaviour === 'offline' || this.behaviour === 'silent') return this;
    this.nc.subscribe(requestSubject(this.name, 'updater.perform_update'), { callback: (_err, msg) => msg.respond(codec.encode(this.performUpdate(codec.decode(msg.data)))) });
    return this;
  }

  record(): DeviceRecord {
    const age = this.behaviour === 'offline' ? 10 * 60_000 : 0;
    const active = this.runs.find((r) => r.result === null);
    return deviceRecord.parse({
      device: this.name,
      updated_at: new Date(Date.now() - age).toISOString(),
      updater_version: '0.1.0',
      system_info: {
        device_id: this.name,
        timestamp: new Date().toISOString().slice(0, 19),
        dunebugger_components: [
          { name: 'core', running: true, current_version: this.installed, latest_version: '1.2.0', update_available: this.installed !== '1.2.0', last_checked: null, release_notes: null, release_url: null, state: 'running', version: this.installed, last_available_version: '1.2.0' },
        ],
      },
      active_run: active ? { run_id: active.run_id, component: active.component, state: active.state } : null,
    });
  }

  private async writeRecord(): Promise<void> {
    await this.kv.put(this.name, codec.encode(this.record()));
  }

  private performUpdate(body: unknown): { subject: string; body: unknown } {
    this.asks++;
    const parsed = parseInbound('updater.perform_update', body);
    if (!parsed.ok) return { subject: 'error', body: { code: parsed.code, message: parsed.message } };
    const m = parsed.message;
    if (m.subject !== 'updater.perform_update') throw new Error('unreachable');
    if (m.component !== 'core') return { subject: 'error', body: { code: 'not_found', message: `no component named "${m.component}"` } };
    const same = m.rollout === null ? undefined : this.runs.find((r) => r.rollout === m.rollout && r.component === m.component);
    if (same) return { subject: 'run', body: reply(same) };
    if (this.behaviour === 'busy') return { subject: 'error', body: { code: 'busy', message: 'run 41 of core is active (apply)' } };
    const run: Run = { run_id: this.nextRun++, component: m.component, state: 'discover', result: null, message: null, to_version: m.version, rollout: m.rollout };
    this.runs.push(run);
    this.starts++;
    this.startedAt.push(Date.now());
    void this.writeRecord();
    setTimeout(() => this.end(run), this.runMs);
    return { subject: 'run', body: reply(run) };
  }

  private end(run: Run): void {
    if (this.nc.isClosed()) return;
    const ok = this.behaviour === 'good';
    run.state = ok ? 'succeeded' : 'rolled_back';
    run.result = run.state;
    run.message = ok ? `Updated core to ${run.to_version}` : `core ${run.to_version} failed its health check; back on ${this.installed}`;
    if (ok) this.installed = run.to_version ?? this.installed;
    this.nc.publish(eventSubject(this.name, 'update_result'), codec.encode({ subject: 'update_result', body: { run_id: run.run_id, component: run.component, success: ok, state: run.state, message: run.message } }));
    void this.writeRecord();
  }

  async stop(): Promise<void> {
    await this.nc.close();
  }
}

const reply = (run: Run): RunReply => ({ run_id: run.run_id, component: run.component, state: run.state, result: run.result, message: run.message, to_version: run.to_version });

interface World {
  server: NatsServer;
  devices: Map<string, FakeDevice>;
  close(): Promise<void>;
}

async function world(spec: Array<[string, Behaviour]>, runMs = 300): Promise<World> {
  const server = await startNatsServer();
  const devices = new Map<string, FakeDevice>();
  for (const [name, behaviour] of spec) devices.set(name, await new FakeDevice(name, behaviour, runMs).start(server.url));
  return {
    server,
    devices,
    async close() {
      for (const d of devices.values()) await d.stop();
      await server.close();
    },
  };
}

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function cli(args: string[], url: string | null): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'fleet', ...args, ...(url ? ['--nats', url] : [])], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (err += b));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function run(args: string[], url: string | null, timeoutMs = 60_000) {
  const c = cli(args, url);
  const timer = setTimeout(() => c.child.kill('SIGKILL'), timeoutMs);
  const code = await c.exit;
  clearTimeout(timer);
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(2, '0')}`);

async function rolloutKv(url: string): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connect({ servers: url });
  return { nc, kv: await nc.jetstream().views.kv(ROLLOUTS_BUCKET) };
}

test('fleet status lists every device in dune_devices, online or not', async () => {
  const w = await world([
    ['dev-a', 'good'],
    ['dev-b', 'busy'],
    ['dev-c', 'offline'],
  ]);
  try {
    const r = await run(['status', '--json'], w.server.url);
    assert.equal(r.code, 0, r.stderr);
    const lines = JSON.parse(r.stdout) as Array<{ device: string; online: boolean; components: unknown[]; active_run: unknown; updated_at: string }>;
    assert.deepEqual(
      lines.map((l) => [l.device, l.online]),
      [
        ['dev-a', true],
        ['dev-b', true],
        ['dev-c', false],
      ],
    );
    assert.deepEqual(lines[0]!.components, [{ name: 'core', installed: '1.0.0', latest: '1.2.0' }]);
    assert.equal(lines[0]!.active_run, null);
    const table = await run(['status'], w.server.url);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^DEVICE\s+STATUS/);
    assert.match(table.stdout, /dev-c\s+offline/);
  } finally {
    await w.close();
  }
});

test('a good rollout (canary 2, batches of 4) updates every device once, the canary before the batches', async () => {
  const all = names('good', 10);
  const w = await world(all.map((n) => [n, 'good']));
  try {
    const r = await run(['rollout', 'core', '--version', '1.2.0', '--canary', '2', '--batch', '4'], w.server.url);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [first, ...progress] = r.stdout.trim().split('\n');
    assert.match(first!, ID);
    assert.ok(progress.some((l) => /^canary: starting good-01, good-02$/.test(l)), r.stdout);
    assert.ok(progress.some((l) => /^batch-1: ended \(4 succeeded/.test(l)), r.stdout);
    for (const d of w.devices.values()) assert.equal(d.starts, 1, d.name);
    // Each group started after the previous one's runs had ended.
    const at = (n: string) => w.devices.get(n)!.startedAt[0]!;
    const canaryEnd = Math.max(at('good-01'), at('good-02')) + 300;
    assert.ok(all.slice(2).every((n) => at(n) >= canaryEnd), 'a batch started before the canary ended');
    assert.ok(all.slice(6).every((n) => at(n) >= Math.max(...all.slice(2, 6).map(at)) + 300), 'batch-2 started before batch-1 ended');

    const shown = await run(['show', first!, '--json'], w.server.url);
    assert.equal(shown.code, 0, shown.stderr);
    const view = rolloutView.parse(JSON.parse(shown.stdout));
    assert.equal(view.state, 'done');
    assert.deepEqual([...new Set(view.devices.map((d) => d.group))], ['canary', 'batch-1', 'batch-2']);
    assert.ok(view.devices.every((d) => d.result === 'succeeded' && d.run_id === 1));
    // The record in dune_rollouts is the contract's.
    const { nc, kv } = await rolloutKv(w.server.url);
    const record = rolloutRecord.parse((await kv.get(first!))!.json());
    await nc.close();
    assert.deepEqual([record.canary, record.batch, record.max_failures, record.group_index], [2, 4, 0, 3]);
  } finally {
    await w.close();
  }
});

test('a bad release halts after the canary: no other device is asked', async () => {
  const all = names('bad', 8);
  const w = await world(all.map((n) => [n, 'bad']));
  try {
    const r = await run(['rollout', 'core', '--version', '1.2.0', '--canary', '2', '--batch', '4', '--json'], w.server.url);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [id, final] = r.stdout.trim().split('\n');
    assert.match(id!, ID);
    const view = rolloutView.parse(JSON.parse(final!));
    assert.equal(view.state, 'halted');
    assert.deepEqual(view.devices.filter((d) => d.result === 'rolled_back').map((d) => d.device), ['bad-01', 'bad-02']);
    assert.ok(view.devices.slice(2).every((d) => d.result === 'pending' && d.run_id === null));
    for (const n of all.slice(2)) assert.equal(w.devices.get(n)!.asks, 0, n);
    // A halted rollout resumed: it says so and starts nothing.
    const again = await run(['resume', id!], w.server.url);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /halted/);
    assert.deepEqual(
      all.map((n) => w.devices.get(n)!.starts),
      [1, 1, 0, 0, 0, 0, 0, 0],
    );
  } finally {
    await w.close();
  }
});

test('offline, busy and silent devices (and one with no record) are skipped, not failed', async () => {
  const w = await world([
    ['mix-01', 'good'],
    ['mix-02', 'offline'],
    ['mix-03', 'busy'],
    ['mix-04', 'silent'],
    ['mix-05', 'good'],
  ]);
  try {
    const r = await run(['rollout', 'core', '--version', '1.2.0', '--canary', '2', '--batch', '2', '--devices', 'mix-01,mix-02,mix-03,mix-04,mix-05,mix-99', '--json'], w.server.url);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const view = rolloutView.parse(JSON.parse(r.stdout.trim().split('\n')[1]!));
    const by = new Map(view.devices.map((d) => [d.device, d]));
    assert.equal(view.state, 'done');
    assert.equal(by.get('mix-01')!.result, 'succeeded');
    assert.equal(by.get('mix-05')!.result, 'succeeded');
    assert.equal(by.get('mix-02')!.result, 'skipped');
    assert.match(by.get('mix-02')!.reason!, /offline: last seen/);
    assert.equal(by.get('mix-03')!.result, 'skipped');
    assert.match(by.get('mix-03')!.reason!, /^busy/);
    assert.equal(by.get('mix-04')!.result, 'skipped');
    assert.match(by.get('mix-04')!.reason!, /not answering/);
    assert.equal(by.get('mix-99')!.result, 'skipped');
    assert.match(by.get('mix-99')!.reason!, /no record/);
    assert.equal(w.devices.get('mix-02')!.asks, 0, 'an offline device is not asked');
    assert.equal(w.devices.get('mix-03')!.starts, 0);
  } finally {
    await w.close();
  }
});

test('the console SIGKILLed mid-rollout; fleet resume from another process finishes it, no device started twice', async () => {
  const all = names('kill', 9);
  const w = await world(
    all.map((n) => [n, 'good']),
    1500,
  );
  const { nc, kv } = await rolloutKv(w.server.url);
  try {
    const c = cli(['rollout', 'core', '--version', '1.2.0', '--canary', '2', '--batch', '3'], w.server.url);
    // Killed once batch-1's runs are started (on record) and not ended.
    const deadline = Date.now() + 30_000;
    let id = '';
    for (;;) {
      assert.ok(Date.now() < deadline, `no batch started: ${c.stdout()}${c.stderr()}`);
      id ||= c.stdout().split('\n')[0]!.trim();
      if (ID.test(id)) {
        const entry = await kv.get(id);
        const record = entry ? rolloutRecord.parse(entry.json()) : null;
        if (record?.state === 'batches' && record.devices.some((d) => d.group === 'batch-1' && d.run_id !== null)) break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    c.child.kill('SIGKILL');
    await c.exit;
    const midway = all.map((n) => w.devices.get(n)!.starts);
    assert.deepEqual(midway.slice(0, 5), [1, 1, 1, 1, 1]);
    assert.deepEqual(midway.slice(5), [0, 0, 0, 0]);

    const r = await run(['resume', id], w.server.url);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /resuming rollout .* in batches, group 2/);
    for (const d of w.devices.values()) assert.equal(d.starts, 1, `${d.name} was started ${d.starts} times`);
    // batch-1's devices were asked again (the same run), not started again.
    assert.ok(all.slice(2, 5).every((n) => w.devices.get(n)!.asks > 1));
    const record = rolloutRecord.parse((await kv.get(id))!.json());
    assert.equal(record.state, 'done');
    assert.ok(record.devices.every((d) => d.result === 'succeeded' && d.run_id === 1));
    // Done: resumed again, it prints and starts nothing.
    const again = await run(['resume', id], w.server.url);
    assert.equal(again.code, 0);
    assert.ok([...w.devices.values()].every((d) => d.starts === 1));
  } finally {
    await nc.close();
    await w.close();
  }
});

test('bad input and an unreachable NATS: one sentence, a non-zero exit, no stack trace', async () => {
  const server = await startNatsServer();
  try {
    const unknown = await run(['show', 'r-20200101-000000-beef'], server.url);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no rollout "r-20200101-000000-beef"/);
    const none = await run(['rollout', 'core', '--version', '1.2.0'], server.url);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no devices/);
    const version = await run(['rollout', 'core', '--version', '1.2.0 beta'], server.url);
    assert.equal(version.code, 2);
    assert.match(version.stderr, /--version/);
    const batch = await run(['rollout', 'core', '--version', '1.2.0', '--batch', '0'], server.url);
    assert.equal(batch.code, 2);
    assert.match(batch.stderr, /--batch must be a whole number/);
  } finally {
    await server.close();
  }
  const down = await run(['status'], 'nats://127.0.0.1:1');
  assert.equal(down.code, 3);
  assert.match(down.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  for (const r of [down]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});
