/**
 * The fleet (test/support/fleet-world.ts): a real nats-server, N real `updater serve` processes
 * (the embedded demo, each on the bus), the real console.
 * - rollout wall time, 8 and 16 devices (canary 2, batches of 4): `updater fleet rollout` from
 *   start to exit; baseline, in the same world: one device's update through its REST API, request
 *   to its run's end (what a rollout of one device could not beat);
 * - fan-in latency of progress: every `updater_progress` of the 16-device rollout, received by one
 *   subscriber of `dune.*.events.updater_progress`, against the transition's commit time in that
 *   device's journal (`at`; one clock, one machine); baseline: a bare NATS request/reply round trip
 *   on the same server;
 * - RSS of an idle device with NATS on and off (the same demo, 10 s after start).
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { connect, StringCodec } from 'nats';
import { fleetWorld, type FleetWorld } from '../test/support/fleet-world.js';
import { cleanup, tempDir } from '../test/support/harness.js';
import { prepareDemoDir, startService } from '../test/support/service-process.js';
import { fmt, percentile, type Section } from './util.js';

const s = (ms: number) => `${fmt(ms / 1000, 2)} s`;
const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

async function singleUpdate(w: FleetWorld, version: string): Promise<number> {
  const d = w.devices[0]!;
  const t0 = performance.now();
  const res = await fetch(`${d.svc.url}/api/components/sample-app/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
  const { run_id } = (await res.json()) as { run_id: number };
  for (;;) {
    const run = await d.get<{ result: string | null }>(`/api/runs/${run_id}`);
    if (run.result) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rolloutTime(w: FleetWorld, version: string): Promise<number> {
  const t0 = performance.now();
  const r = await w.fleet(['rollout', 'sample-app', '--version', version, '--canary', '2', '--batch', '4']);
  if (r.code !== 0) throw new Error(`rollout of ${version} ended ${r.code}: ${r.stdout}\n${r.stderr}`);
  return performance.now() - t0;
}

export async function benchFleet(): Promise<Section> {
  const load0 = loadavg()[0]!;
  const rows: string[][] = [];
  const notes: string[] = [];
  const walls: Record<number, number> = {};
  const lat: number[] = [];
  let rtt: number[] = [];
  for (const n of [8, 16]) {
    const w = await fleetWorld(n);
    try {
      while ((await w.deviceRecords()).length < n) await new Promise((r) => setTimeout(r, 200));
      // Baseline: one device alone, 1.0.0 → 1.1.0, then back to 1.0.0 by a restore (not timed).
      const one = await singleUpdate(w, '1.1.0');
      await fetch(`${w.devices[0]!.svc.url}/api/components/sample-app/rollback`, { method: 'POST' });
      await new Promise((r) => setTimeout(r, 6000));
      if (n === 16) {
        // Fan-in: every progress message of the rollout, at one subscriber.
        const nc = await connect({ servers: w.nats.url });
        const seen: Array<{ device: string; runId: number; seq: number; at: number }> = [];
        const sub = nc.subscribe('dune.*.events.updater_progress');
        void (async () => {
          for await (const m of sub) {
            const body = (JSON.parse(StringCodec().decode(m.data)) as { body: { run_id: number; seq: number; transient?: boolean } }).body;
            if (!body.transient) seen.push({ device: m.subject.split('.')[1]!, runId: body.run_id, seq: body.seq, at: Date.now() });
          }
        })();
        walls[n] = await rolloutTime(w, '1.1.0');
        await new Promise((r) => setTimeout(r, 500));
        sub.unsubscribe();
        for (const e of seen) {
          const d = w.devices.find((x) => x.name === e.device)!;
          const run = await d.get<{ transitions: Array<{ seq: number; at: string }> }>(`/api/runs/${e.runId}`);
          const t = run.transitions.find((x) => x.seq === e.seq);
          if (t) lat.push(e.at - Date.parse(t.at));
        }
        // Baseline: a bare request/reply round trip on the same server.
        const echo = nc.subscribe('bench.echo', { callback: (_e, m) => m.respond(m.data) });
        rtt = [];
        for (let i = 0; i < 200; i++) {
          const t0 = performance.now();
          await nc.request('bench.echo', StringCodec().encode('x'), { timeout: 2000 });
          rtt.push(performance.now() - t0);
        }
        echo.unsubscribe();
        await nc.close();
      } else {
        walls[n] = await rolloutTime(w, '1.1.0');
      }
      rows.push([`rollout of ${n} devices, canary 2, batches of 4: start → exit`, s(walls[n]), `${s(one)} (one device's update alone, same world)`, fmt(walls[n] / one, 2), '—', '']);
    } finally {
      await w.close();
    }
  }
  rows.push([
    'fan-in: device commits a transition → the console receives its updater_progress (p50 / p99)',
    `${fmt(percentile(lat, 50))} / ${fmt(percentile(lat, 99))} ms`,
    `${fmt(percentile(rtt, 50), 2)} / ${fmt(percentile(rtt, 99), 2)} ms (bare request/reply round trip)`,
    fmt(percentile(lat, 50) / percentile(rtt, 50), 1),
    '—',
    '',
  ]);

  // RSS of an idle device, NATS on and off.
  const rss: Record<string, number> = {};
  const nats = (await import('../test/support/nats-server.js')).startNatsServer;
  const server = await nats();
  for (const on of [false, true]) {
    const cwd = tempDir('updater-bench-rss-');
    await prepareDemoDir(cwd);
    const svc = await startService(cwd, on ? { UPDATER_NATS: `{servers: ["${server.url}"], device: rss-probe}` } : {});
    try {
      await new Promise((r) => setTimeout(r, 10_000));
      rss[on ? 'on' : 'off'] = rssMB(svc.child.pid!);
    } finally {
      svc.child.kill('SIGTERM');
      await svc.exited;
      cleanup(cwd);
    }
  }
  await server.close();
  rows.push(['RSS of an idle device (the demo) with NATS on', `${fmt(rss.on!)} MB`, `${fmt(rss.off!)} MB (NATS off)`, fmt(rss.on! / rss.off!, 2), '—', '']);
  notes.push(
    `Fan-in: ${lat.length} progress messages of the 16-device rollout, each matched with its transition's commit time in its device's journal. The devices, the console, nats-server and the bench share this machine's 2 cores.`,
    'Each rollout runs the demo\'s 1.1.0 on every device: an update there takes about 3.5 s, most of it the demo\'s `settleSeconds: 3`; the groups run one after another (canary, then batches), the devices of a group at once.',
    `Load average (1 min) ${fmt(load0, 2)} before, ${fmt(loadavg()[0]!, 2)} after.`,
  );
  return { title: 'The fleet: rollout wall time, progress fan-in, a device\'s memory with NATS (real nats-server, real devices)', rows, notes };
}
