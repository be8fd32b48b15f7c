/**
 * Reads are cheap (CONTRACT.md, "Browsers, full disks and stops"): on the real `updater serve`,
 * `GET /api/components` and `system_info` start at most one status command per component per 2 s,
 * shared by concurrent requests, and what they say stays true: a service stopped by hand shows as
 * stopped within 2 s, and what a run does to the service shows at once.
 *
 * The components are `command` services whose status command appends the time (ns) to a counter
 * file before it looks, so the file lists every status command the updater ran.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import tar from 'tar-stream';
import WebSocket from 'ws';
import { startFakeGitHub, type FakeGitHub } from '../src/demo/local-github.js';
import { RunningCache } from '../src/drivers/running-cache.js';
import { cleanup, tempDir } from './support/harness.js';
import { startService, waitFor, type ServiceProcess } from './support/service-process.js';

const WINDOW_MS = 2000;
/** The status command sleeps this long before it looks, so that concurrent requests overlap it. */
const STATUS_MS = 200;

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface World {
  dir: string;
  service: ServiceProcess;
  github: FakeGitHub;
}

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
const pidFile = (dir: string, name: string) => join(dir, `${name}.pid`);
const counterFile = (dir: string, name: string) => join(dir, `${name}.count`);
/** The times (ms) at which the status command of `name` ran, oldest first. */
const probes = (dir: string, name: string) =>
  existsSync(counterFile(dir, name)) ? readFileSync(counterFile(dir, name), 'utf8').split('\n').filter(Boolean).map((ns) => Number(BigInt(ns) / 1000n) / 1000) : [];

/** A service that is a real process (`sleep`) with a pid file; "running" = that process exists and is not a zombie. */
function commandService(dir: string, name: string) {
  const pid = q(pidFile(dir, name));
  return {
    manager: 'command',
    start: `sleep 600 >/dev/null 2>&1 </dev/null & echo $! > ${pid}`,
    stop: `if [ -f ${pid} ]; then kill "$(cat ${pid})" 2>/dev/null; rm -f ${pid}; fi; true`,
    status: `date +%s%N >> ${q(counterFile(dir, name))}; sleep ${STATUS_MS / 1000}; p=$(cat ${pid} 2>/dev/null) && [ -n "$p" ] && [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status`,
  };
}

const processOf = (dir: string, name: string) => Number(readFileSync(pidFile(dir, name), 'utf8').trim());
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const startByHand = (dir: string, name: string, service: { start: string }) => execFileSync('sh', ['-c', service.start], { cwd: dir, stdio: 'ignore' });

async function tarball(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack.pipe(createGzip())) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Two app components `a` and `b` (1.0.0, both running), release 1.1.0 of `a` offered; the real service on them. */
async function world(): Promise<World> {
  const dir = tempDir('updater-reads-');
  const github = await startFakeGitHub();
  github.addRelease('acme/a', { tag: 'v1.1.0', assets: [{ name: 'a-1.1.0.tar.gz', content: await tarball({ VERSION: '1.1.0\n', 'requirements.txt': '' }) }] });
  const components = ['a', 'b'].map((name) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'VERSION'), '1.0.0\n');
    const service = commandService(dir, name);
    startByHand(dir, name, service);
    return {
      name,
      kind: 'app',
      repo: `acme/${name}`,
      installPath: join(dir, name),
      asset: `${name}-{version}.tar.gz`,
      service,
      minFreeMB: 0,
      settleSeconds: 0,
      // "Installing requirements" holds the run for 3 s with the service stopped by the run.
      pipInstall: ['sh', '-c', 'sleep 3', 'pip'],
    };
  });
  const config = { dataDir: join(dir, 'data'), checkIntervalHours: 0, github: { apiUrl: github.apiUrl, rawUrl: github.rawUrl }, components };
  writeFileSync(join(dir, 'updater.yaml'), JSON.stringify(config, null, 2));
  const service = await startService(dir);
  cleanups.push(async () => {
    if (service.child.exitCode === null && service.child.signalCode === null) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    for (const name of ['a', 'b']) execFileSync('sh', ['-c', components.find((c) => c.name === name)!.service.stop], { stdio: 'ignore' });
    await github.close();
    cleanup(dir);
  });
  return { dir, service, github };
}

type View = { name: string; running: boolean | null; active_run: number | null };
const components = async (url: string): Promise<View[]> => {
  const r = await fetch(`${url}/api/components`);
  assert.equal(r.status, 200);
  return (await r.json()) as View[];
};
const runningOf = (views: View[], name: string) => views.find((v) => v.name === name)!.running;

/** Asserts that no two status commands of a component started less than the window apart (with `slackMs` for process start-up). */
function assertOnePerWindow(dir: string, name: string, slackMs = 100) {
  const times = probes(dir, name);
  for (let i = 1; i < times.length; i++) {
    const gap = times[i]! - times[i - 1]!;
    assert.ok(gap >= WINDOW_MS - slackMs, `${name}: status commands ${i} and ${i + 1} (of ${times.length}) started ${gap.toFixed(1)} ms apart`);
  }
}

function systemInfo(url: string): Promise<Array<{ name: string; running: boolean | null }>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ subject: 'controller.system_info', body: null })));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { subject: string; body: { system_info: { dunebugger_components: Array<{ name: string; running: boolean | null }> } } };
      if (m.subject !== 'system_info') return;
      ws.close();
      resolve(m.body.system_info.dunebugger_components);
    });
  });
}

test('RunningCache: one probe for concurrent callers, kept 2 s from its start, forgotten on demand; a failing probe is null and not kept stuck', async () => {
  let clock = 0;
  const calls: string[] = [];
  const release: Array<() => void> = [];
  let answer: boolean | Error = true;
  const cache = new RunningCache(
    (name) => {
      calls.push(name);
      const value = answer;
      if (value instanceof Error) throw value; // at once, not in a promise
      return new Promise((resolve) => release.push(() => resolve(value)));
    },
    { now: () => clock },
  );
  const settle = async () => {
    await sleep(0); // the probe starts on a later tick
    for (const r of release.splice(0)) r();
    await sleep(0);
  };

  const first = Array.from({ length: 50 }, () => cache.get('a'));
  await settle();
  assert.deepEqual(await Promise.all(first), Array(50).fill(true));
  assert.deepEqual(calls, ['a'], 'one probe for 50 concurrent callers');

  clock = 1999; // 1999 ms after the probe started: still fresh
  assert.equal(await cache.get('a'), true);
  assert.deepEqual(calls, ['a']);
  const b = cache.get('b'); // per component
  await settle();
  assert.equal(await b, true);
  assert.deepEqual(calls, ['a', 'b']);

  clock = 2000; // 2 s old: asked again
  answer = false;
  const again = cache.get('a');
  await settle();
  assert.equal(await again, false);
  assert.deepEqual(calls, ['a', 'b', 'a']);

  // forget while a probe is under way: its waiters get its answer, the next caller a new probe.
  clock = 2500;
  answer = true;
  const stale = cache.get('a'); // a fresh entry was cached at 2000, so this one is fresh
  assert.equal(await stale, false);
  cache.forget('a');
  const underWay = cache.get('a');
  cache.forget('a');
  const next = cache.get('a');
  await settle();
  assert.equal(await underWay, true);
  assert.equal(await next, true);
  assert.deepEqual(calls, ['a', 'b', 'a', 'a', 'a']);
  assert.equal(await cache.get('a'), true);
  assert.equal(calls.length, 5, 'the probe that started after forget is kept');

  // A probe that throws (even at once) answers null, and a later caller is not stuck with it.
  cache.forget('a');
  answer = new Error('no manager');
  assert.equal(await cache.get('a'), null);
  assert.equal(await cache.get('a'), null, 'kept for the window like any answer');
  clock = 4600;
  answer = true;
  const recovered = cache.get('a');
  await settle();
  assert.equal(await recovered, true);
});

test('200 concurrent GET /api/components and system_info share one status command per component per 2 s; a service stopped by hand shows stopped within 2 s', async () => {
  const { dir, service } = await world();
  const url = service.url;
  const before = { a: probes(dir, 'a').length, b: probes(dir, 'b').length };

  const burst = async () => {
    const views = await Promise.all(Array.from({ length: 200 }, () => components(url)));
    for (const v of views) assert.deepEqual([runningOf(v, 'a'), runningOf(v, 'b')], [true, true]);
  };
  const t0 = performance.now();
  await burst();
  const burstMs = performance.now() - t0;
  // system_info over /ws, in the same window: the same answer, no new command.
  const infos = await Promise.all(Array.from({ length: 20 }, () => systemInfo(url)));
  for (const info of infos) assert.deepEqual(info.map((c) => [c.name, c.running]), [['a', true], ['b', true]]);
  const firstWindow = performance.now() - t0 < WINDOW_MS - 100;
  const grew = { a: probes(dir, 'a').length - before.a, b: probes(dir, 'b').length - before.b };
  assert.ok(grew.a >= 1 && grew.b >= 1, 'the status commands ran');
  if (firstWindow) assert.deepEqual(grew, { a: 1, b: 1 }, `200 requests and 20 system_info within ${Math.round(performance.now() - t0)} ms (the burst took ${Math.round(burstMs)} ms)`);
  assertOnePerWindow(dir, 'a');
  assertOnePerWindow(dir, 'b');

  // Once the window is over, the next request asks again.
  const last = probes(dir, 'a').length;
  await sleep(WINDOW_MS + 100);
  await burst();
  assert.ok(probes(dir, 'a').length > last, 'a new status command once the answer is 2 s old');

  // The service of `a` dies (killed by hand, not by the updater): within 2 s (plus the status
  // command's own time) the answer says so; `b` still runs.
  const pid = processOf(dir, 'a');
  process.kill(pid, 'SIGKILL');
  await waitFor('the process to die', async () => !alive(pid), 5000);
  const killed = performance.now();
  let seen: View[] = [];
  for (;;) {
    seen = await components(url);
    if (runningOf(seen, 'a') === false) break;
    assert.ok(performance.now() - killed < WINDOW_MS + STATUS_MS + 400, `still running: true ${Math.round(performance.now() - killed)} ms after the service died`);
    await sleep(50);
  }
  const shownAfter = performance.now() - killed;
  assert.equal(runningOf(seen, 'b'), true);
  assert.ok(shownAfter <= WINDOW_MS + STATUS_MS + 400, `stopped shown after ${Math.round(shownAfter)} ms`);
  assertOnePerWindow(dir, 'a');
  assertOnePerWindow(dir, 'b');
});

test('what a run does to the service shows at once: running false while the run has it stopped, true as soon as the run has ended', async () => {
  const { dir, service } = await world();
  const url = service.url;
  // A dashboard that keeps asking (so that an answer is always cached).
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await components(url).catch(() => undefined);
      await sleep(100);
    }
  })();
  try {
    await sleep(300);
    assert.equal(runningOf(await components(url), 'a'), true);
    const old = processOf(dir, 'a');
    const started = await fetch(`${url}/api/components/a/updates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(started.status, 202, await started.clone().text());
    const { run_id } = (await started.json()) as { run_id: number };

    // The run stops the service, then installs requirements for 3 s.
    await waitFor('the run to stop the service', async () => !alive(old), 10_000);
    await sleep(150); // the stop command has returned
    const during = (await components(url)).find((v) => v.name === 'a')!;
    assert.equal(during.active_run, run_id);
    assert.equal(during.running, false, 'the service the run stopped is shown running');

    const end = await waitFor(
      'the run to end',
      async () => {
        const r = (await (await fetch(`${url}/api/runs/${run_id}`)).json()) as { state: string; message: string };
        return ['succeeded', 'rolled_back', 'rollback_failed', 'aborted'].includes(r.state) ? r : null;
      },
      30_000,
    );
    assert.equal(end.state, 'succeeded', end.message);
    const afterRun = (await components(url)).find((v) => v.name === 'a')!;
    assert.equal(afterRun.running, true, 'the service the run started is shown stopped');
    assert.ok(alive(processOf(dir, 'a')));
  } finally {
    polling = false;
    await poller;
  }
});
