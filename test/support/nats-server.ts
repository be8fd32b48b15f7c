/**
 * A real nats-server (Debian's, 2.9) with JetStream, for tests and benches: its own loopback port
 * and store directory, started and stopped by the caller (a test that stops and restarts the bus
 * has a server of its own). `test/env/install.sh` installs the package.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { freePort } from './testbed.js';
import { tempDir } from './harness.js';

export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? 'nats-server';

/** Whether nats-server can be run here (null), or why not. */
export function natsServerMissing(): string | null {
  const r = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : `${NATS_SERVER} not found: run test/env/install.sh (apt-get install nats-server)`;
}

export interface NatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); its store is kept for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and store (after stop). */
  start(): Promise<void>;
  /** Stops it and removes its store. */
  close(): Promise<void>;
  output(): string;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startNatsServer(options: { port?: number; args?: string[] } = {}): Promise<NatsServer> {
  const missing = natsServerMissing();
  if (missing) throw new Error(missing);
  const port = options.port ?? (await freePort());
  const dir = tempDir('updater-nats-');
  const store = join(dir, 'js');
  mkdirSync(store, { recursive: true });
  let child: ChildProcess | null = null;
  let out = '';
  const start = async () => {
    child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, ...(options.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));
    const deadline = Date.now() + 10_000;
    while (!(await listening(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
}
