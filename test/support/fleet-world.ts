/**
 * A fleet on one machine: a real nats-server with JetStream and N real `updater serve` processes,
 * each the embedded demo (a sample app run by the demo's commands, its releases from its own local
 * GitHub stand-in: 1.1.0 good, 1.2.0 fails its health check, 1.3.0-beta.1 good) on the bus as
 * `dev-01`…, configured only by its environment (UPDATER_NATS). The console is the real CLI
 * (`bin/updater.mjs fleet …`). Tests and the bench drive it as an owner would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from 'nats';
import { DEVICES_BUCKET, ROLLOUTS_BUCKET, type DeviceRecord, type RolloutRecord } from '../../src/contract/fleet.js';
import { cleanup, tempDir } from './harness.js';
import { LAUNCHER, prepareDemoDir, startService, type ServiceProcess } from './service-process.js';
import { startNatsServer, type NatsServer } from './nats-server.js';

export interface Device {
  name: string;
  cwd: string;
  svc: ServiceProcess;
  get<T>(path: string): Promise<T>;
}

export interface FleetWorld {
  nats: NatsServer;
  devices: Device[];
  /** Runs `updater fleet ARGS --nats URL` to its end. */
  fleet(args: string[], options?: { timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Starts `updater fleet ARGS --nats URL` and returns the process (for a test that kills it). */
  spawnFleet(args: string[]): { child: ChildProcess; output: () => string };
  /** A connection of the test's own (reads the KV buckets as they are). */
  bus(): Promise<NatsConnection>;
  deviceRecords(): Promise<DeviceRecord[]>;
  rollout(id: string): Promise<RolloutRecord | null>;
  /** The sample app's installed version on a device, from its REST API. */
  installed(d: Device): Promise<string | null>;
  close(): Promise<void>;
}

export async function fleetWorld(n: number, options: { env?: Record<string, string> } = {}): Promise<FleetWorld> {
  const nats = await startNatsServer();
  const dirs: string[] = [];
  const devices: Device[] = [];
  let nc: NatsConnection | null = null;
  try {
    const started = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const name = `dev-${String(i + 1).padStart(2, '0')}`;
        const cwd = tempDir(`updater-fleet-${name}-`);
        dirs.push(cwd);
        await prepareDemoDir(cwd);
        const svc = await startService(cwd, { UPDATER_NATS: `{servers: ["${nats.url}"], device: ${name}}`, UPDATER_LOG_LEVEL: 'info', ...options.env });
        const get = async <T>(path: string): Promise<T> => {
          const res = await fetch(`${svc.url}${path}`, { signal: AbortSignal.timeout(5000) });
          if (!res.ok) throw new Error(`${name} GET ${path}: ${res.status} ${await res.text()}`);
          return (await res.json()) as T;
        };
        return { name, cwd, svc, get };
      }),
    );
    devices.push(...started);
  } catch (error) {
    for (const d of devices) d.svc.child.kill('SIGKILL');
    await nats.close();
    for (const d of dirs) cleanup(d);
    throw error;
  }

  const run = (args: string[], timeoutMs = 180_000) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(LAUNCHER, ['fleet', ...args, '--nats', nats.url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b) => (stdout += b));
      child.stderr.on('data', (b) => (stderr += b));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });

  const world: FleetWorld = {
    nats,
    devices,
    fleet: (args, o = {}) => run(args, o.timeoutMs),
    spawnFleet(args) {
      const child = spawn(LAUNCHER, ['fleet', ...args, '--nats', nats.url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (out += b));
      return { child, output: () => out };
    },
    async bus() {
      nc ??= await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
      return nc;
    },
    async deviceRecords() {
      const kv = await (await world.bus()).jetstream().views.kv(DEVICES_BUCKET);
      // The keys first, then each record: a get() while keys() is being read ends that read early.
      const keys: string[] = [];
      for await (const key of await kv.keys()) keys.push(key);
      const out: DeviceRecord[] = [];
      for (const key of keys) {
        const e = await kv.get(key);
        if (e && e.operation === 'PUT') out.push(e.json<DeviceRecord>());
      }
      return out.sort((a, b) => a.device.localeCompare(b.device));
    },
    async rollout(id) {
      const kv = await (await world.bus()).jetstream().views.kv(ROLLOUTS_BUCKET);
      const e = await kv.get(id);
      return e && e.operation === 'PUT' ? e.json<RolloutRecord>() : null;
    },
    async installed(d) {
      const components = await d.get<Array<{ name: string; current_version: string | null }>>('/api/components');
      return components.find((c) => c.name === 'sample-app')?.current_version ?? null;
    },
    async close() {
      if (nc) await nc.close().catch(() => undefined);
      await Promise.all(
        devices.map(async (d) => {
          d.svc.child.kill('SIGTERM');
          const timer = setTimeout(() => d.svc.child.kill('SIGKILL'), 15_000);
          await d.svc.exited;
          clearTimeout(timer);
        }),
      );
      await nats.close();
      for (const dir of dirs) cleanup(dir);
    },
  };
  return world;
}
